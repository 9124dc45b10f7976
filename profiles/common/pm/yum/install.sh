yum install -y {{packages}}
