# == sql-bind on Controller: MariaDB listens on the internal address 10.0.0.11 only (its listening sockets) (settle 0s)
socks=$(ss -ltn | awk '$4 ~ /:3306$/ {print $4}')
echo "listening on port 3306: ${socks:-nothing}"
[ "$socks" = 10.0.0.11:3306 ]
# == sql-remote on Compute: MariaDB answers on 10.0.0.11:3306 from the compute node (a greeting, or its refusal of a host with no account yet) (settle 0s)
tcp 10.0.0.11:3306 from the node: mysql greeting
# == sql-not-external on Compute: MariaDB does not answer on controller's external address 203.0.113.11:3306 (settle 0s)
tcp 203.0.113.11:22 from the node opens, tcp 203.0.113.11:3306 does not
# == amqp-login on Compute: RabbitMQ on controller:5672 accepts user openstack with RABBIT_PASS (settle 0s)
tcp controller:5672 from the node: amqp 0-9-1 plain login openstack / secret RABBIT_PASS accepted
# == amqp-wrong-password on Compute: RabbitMQ on controller:5672 refuses a wrong password (settle 0s)
tcp controller:5672 from the node: amqp 0-9-1 plain login openstack / "not-the-password" refused
# == memcached on Compute: memcached answers `stats` on controller:11211 (by name) (settle 0s)
tcp controller:11211 from the node: memcached stats
# == chrony on Compute: chrony on the compute node follows controller (10.0.0.11) (settle 90s)
chronyc -n tracking | grep -E '^(Reference ID|Stratum|System time)'
chronyc -n tracking | grep -q "^Reference ID.*(10.0.0.11)"
# == client-compute on Compute: the OpenStack client runs on the compute node (settle 0s)
openstack --version 2>&1
# == client-controller on Controller: the OpenStack client runs on the controller (settle 0s)
openstack --version 2>&1
