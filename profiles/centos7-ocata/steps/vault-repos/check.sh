cmp -s {{staged}} {{base}} &&
! grep -q '^mirrorlist=' /etc/yum.repos.d/CentOS-*.repo
