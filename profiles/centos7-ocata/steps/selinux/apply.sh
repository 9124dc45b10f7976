yum install -y openstack-selinux
