install -m 0644 {{staged}} {{base}}
sed -i -e 's/^mirrorlist=/#mirrorlist=/' /etc/yum.repos.d/CentOS-*.repo
yum clean all
