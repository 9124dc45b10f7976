yum -q check-update >/dev/null
