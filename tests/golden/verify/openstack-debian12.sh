# == chrony-packages of step chrony on Controller: the guide's packages are installed: chrony (settle 0s)
# hint: 
# lab verify: one line per package, `<name> installed|missing`, from dpkg's database.
# shellcheck disable=SC2043 # (a list of one is a loop that runs once)
for p in chrony; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = 'install ok installed' ]; then
    echo "$p installed"
  else
    echo "$p missing"
  fi
done
# read by lab: Packages { packages: ["chrony"], install: "apt install chrony" }
# == chrony-packages of step chrony on Compute: the guide's packages are installed: chrony (settle 0s)
# hint: 
# lab verify: one line per package, `<name> installed|missing`, from dpkg's database.
# shellcheck disable=SC2043 # (a list of one is a loop that runs once)
for p in chrony; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = 'install ok installed' ]; then
    echo "$p installed"
  else
    echo "$p missing"
  fi
done
# read by lab: Packages { packages: ["chrony"], install: "apt install chrony" }
# == chrony-enabled of step chrony on Controller: chrony is enabled at boot and running (settle 0s)
# hint: 
# lab verify: one line per unit, `<unit> <is-enabled> <is-active>`.
# shellcheck disable=SC2043 # (a list of one is a loop that runs once)
for u in chrony; do
  echo "$u $(systemctl is-enabled "$u" 2>/dev/null) $(systemctl is-active "$u" 2>/dev/null)"
done
# read by lab: Services { units: ["chrony"] }
# == chrony-enabled of step chrony on Compute: chrony is enabled at boot and running (settle 0s)
# hint: 
# lab verify: one line per unit, `<unit> <is-enabled> <is-active>`.
# shellcheck disable=SC2043 # (a list of one is a loop that runs once)
for u in chrony; do
  echo "$u $(systemctl is-enabled "$u" 2>/dev/null) $(systemctl is-active "$u" 2>/dev/null)"
done
# read by lab: Services { units: ["chrony"] }
# == chrony-allow of step chrony on Controller: chrony on controller serves the management network (10.0.0.0/24): compute1 may ask it the time (settle 0s)
# hint: 
chronyc accheck 10.0.0.31 2>&1
# read by lab: ChronyAllows { address: "10.0.0.31", node: "compute1", cidr: "10.0.0.0/24", conf: "/etc/chrony/chrony.conf" }
# == chrony of step chrony on Compute: chrony on the compute node follows controller (10.0.0.11) (settle 90s)
# hint: the compute node's chrony does not follow controller; the guide sets `server controller iburst` in /etc/chrony/chrony.conf (and comments out the other servers) and restarts chrony
chronyc -n tracking | grep -E '^(Reference ID|Stratum|System time)'
chronyc -n tracking | grep -q "^Reference ID.*(10.0.0.11)"
# == client-packages of step client on Controller: the guide's packages are installed: python3-openstackclient (settle 0s)
# hint: 
# lab verify: one line per package, `<name> installed|missing`, from dpkg's database.
# shellcheck disable=SC2043 # (a list of one is a loop that runs once)
for p in python3-openstackclient; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = 'install ok installed' ]; then
    echo "$p installed"
  else
    echo "$p missing"
  fi
done
# read by lab: Packages { packages: ["python3-openstackclient"], install: "apt install python3-openstackclient" }
# == client-packages of step client on Compute: the guide's packages are installed: python3-openstackclient (settle 0s)
# hint: 
# lab verify: one line per package, `<name> installed|missing`, from dpkg's database.
# shellcheck disable=SC2043 # (a list of one is a loop that runs once)
for p in python3-openstackclient; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = 'install ok installed' ]; then
    echo "$p installed"
  else
    echo "$p missing"
  fi
done
# read by lab: Packages { packages: ["python3-openstackclient"], install: "apt install python3-openstackclient" }
# == client-compute of step client on Compute: the OpenStack client runs on the compute node (settle 0s)
# hint: `openstack --version` fails; the guide installs the client: `apt install python3-openstackclient`
openstack --version 2>&1
# == client-controller of step client on Controller: the OpenStack client runs on the controller (settle 0s)
# hint: `openstack --version` fails; the guide installs the client: `apt install python3-openstackclient`
openstack --version 2>&1
# == sql-packages of step sql on Controller: the guide's packages are installed: mariadb-server, python3-pymysql (settle 0s)
# hint: 
# lab verify: one line per package, `<name> installed|missing`, from dpkg's database.
# shellcheck disable=SC2043 # (a list of one is a loop that runs once)
for p in mariadb-server python3-pymysql; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = 'install ok installed' ]; then
    echo "$p installed"
  else
    echo "$p missing"
  fi
done
# read by lab: Packages { packages: ["mariadb-server", "python3-pymysql"], install: "apt install mariadb-server python3-pymysql" }
# == sql-enabled of step sql on Controller: mariadb is enabled at boot and running (settle 0s)
# hint: 
# lab verify: one line per unit, `<unit> <is-enabled> <is-active>`.
# shellcheck disable=SC2043 # (a list of one is a loop that runs once)
for u in mariadb; do
  echo "$u $(systemctl is-enabled "$u" 2>/dev/null) $(systemctl is-active "$u" 2>/dev/null)"
done
# read by lab: Services { units: ["mariadb"] }
# == sql-bind of step sql on Controller: MariaDB listens on the internal address 10.0.0.11 only (its listening sockets) (settle 0s)
# hint: 
ss -ltn
# read by lab: Listens { port: 3306, want: ["10.0.0.11"], service: "MariaDB", setting: "bind-address = 10.0.0.11 in /etc/mysql/mariadb.conf.d/99-openstack.cnf" }
# == sql-config of step sql on Controller: MariaDB runs with the guide's openstack.cnf (/etc/mysql/mariadb.conf.d/99-openstack.cnf): InnoDB, a file per table, 4096 connections, utf8 (settle 0s)
# hint: 
# Root logs in with DB_ROOT_PASS once the secure installation set it, else as a fresh
# server lets it (no password on MariaDB 10.1, the unix socket on 10.4 and later).
pw=$(cat /root/.lab/secrets/DB_ROOT_PASS 2>/dev/null) || pw=
[[ $pw =~ ^[A-Za-z0-9]*$ ]] || pw=
if [ -n "$pw" ] && MYSQL_PWD=$pw mysql --no-defaults --user=root -e 'SELECT 1' >/dev/null 2>&1; then
  export MYSQL_PWD=$pw
fi
sql() { mysql --no-defaults --user=root -NB "$@" 2>&1; }
sql -e "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('default_storage_engine', 'innodb_file_per_table', 'max_connections', 'collation_server', 'character_set_server')"
# read by lab: SqlSettings { conf: "/etc/mysql/mariadb.conf.d/99-openstack.cnf" }
# == sql-remote of step sql on Compute: MariaDB answers on 10.0.0.11:3306 from the compute node (a greeting, or its refusal of a host with no account yet) (settle 0s)
# hint: the compute node gets no answer from MariaDB on 10.0.0.11:3306; the guide sets bind-address = 10.0.0.11 in /etc/mysql/mariadb.conf.d/99-openstack.cnf and starts mariadb
tcp 10.0.0.11:3306 from the node: mysql greeting
# == sql-not-external of step sql on Compute: MariaDB does not answer on controller's external address 203.0.113.11:3306 (settle 0s)
# hint: MariaDB answers on the external address; the guide binds it to 10.0.0.11 only (bind-address in /etc/mysql/mariadb.conf.d/99-openstack.cnf)
tcp 203.0.113.11:22 from the node opens, tcp 203.0.113.11:3306 does not
# == sql-secure of step sql-secure on Controller: mysql_secure_installation's result: root's password is DB_ROOT_PASS, no anonymous or remote root account, no test database (settle 0s)
# hint: 
# Root logs in with DB_ROOT_PASS once the secure installation set it, else as a fresh
# server lets it (no password on MariaDB 10.1, the unix socket on 10.4 and later).
pw=$(cat /root/.lab/secrets/DB_ROOT_PASS 2>/dev/null) || pw=
[[ $pw =~ ^[A-Za-z0-9]*$ ]] || pw=
if [ -n "$pw" ] && MYSQL_PWD=$pw mysql --no-defaults --user=root -e 'SELECT 1' >/dev/null 2>&1; then
  export MYSQL_PWD=$pw
fi
sql() { mysql --no-defaults --user=root -NB "$@" 2>&1; }
sql -e "SET @pw = '$pw';
SELECT 'anonymous', COUNT(*) FROM mysql.user WHERE User = '';
SELECT 'remote-root', IFNULL(GROUP_CONCAT(Host), '-') FROM mysql.user WHERE User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1');
SELECT 'root-not-db-root-pass', COUNT(*) FROM mysql.user WHERE User = 'root' AND Password <> PASSWORD(@pw);
SELECT 'test-database', COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'test';
SELECT 'test-grants', COUNT(*) FROM mysql.db WHERE Db = 'test' OR Db LIKE 'test\\\\_%';"
# read by lab: SqlSecure
# == mq-packages of step mq on Controller: the guide's packages are installed: rabbitmq-server (settle 0s)
# hint: 
# lab verify: one line per package, `<name> installed|missing`, from dpkg's database.
# shellcheck disable=SC2043 # (a list of one is a loop that runs once)
for p in rabbitmq-server; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = 'install ok installed' ]; then
    echo "$p installed"
  else
    echo "$p missing"
  fi
done
# read by lab: Packages { packages: ["rabbitmq-server"], install: "apt install rabbitmq-server" }
# == mq-enabled of step mq on Controller: rabbitmq-server is enabled at boot and running (settle 0s)
# hint: 
# lab verify: one line per unit, `<unit> <is-enabled> <is-active>`.
# shellcheck disable=SC2043 # (a list of one is a loop that runs once)
for u in rabbitmq-server; do
  echo "$u $(systemctl is-enabled "$u" 2>/dev/null) $(systemctl is-active "$u" 2>/dev/null)"
done
# read by lab: Services { units: ["rabbitmq-server"] }
# == amqp-login of step mq-user on Compute: RabbitMQ on controller:5672 accepts user openstack with RABBIT_PASS (settle 0s)
# hint: user openstack cannot log in with RABBIT_PASS (`lab creds`); the guide runs `rabbitmqctl add_user openstack RABBIT_PASS`
tcp controller:5672 from the node: amqp 0-9-1 plain login openstack / secret RABBIT_PASS accepted
# == amqp-wrong-password of step mq-user on Compute: RabbitMQ on controller:5672 refuses a wrong password (settle 0s)
# hint: RabbitMQ must answer and refuse a wrong password; the guide installs and starts rabbitmq-server
tcp controller:5672 from the node: amqp 0-9-1 plain login openstack / "not-the-password" refused
# == amqp-permissions of step mq-user on Compute: user openstack may configure, write and read on vhost / of controller:5672 (a queue declared, a message published and got back) (settle 0s)
# hint: 
tcp controller:5672 from the node: amqp 0-9-1 as openstack / secret RABBIT_PASS on vhost /: queue.declare, basic.publish, basic.get
# == memcached-packages of step memcached on Controller: the guide's packages are installed: memcached, python3-memcache (settle 0s)
# hint: 
# lab verify: one line per package, `<name> installed|missing`, from dpkg's database.
# shellcheck disable=SC2043 # (a list of one is a loop that runs once)
for p in memcached python3-memcache; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = 'install ok installed' ]; then
    echo "$p installed"
  else
    echo "$p missing"
  fi
done
# read by lab: Packages { packages: ["memcached", "python3-memcache"], install: "apt install memcached python3-memcache" }
# == memcached-enabled of step memcached on Controller: memcached is enabled at boot and running (settle 0s)
# hint: 
# lab verify: one line per unit, `<unit> <is-enabled> <is-active>`.
# shellcheck disable=SC2043 # (a list of one is a loop that runs once)
for u in memcached; do
  echo "$u $(systemctl is-enabled "$u" 2>/dev/null) $(systemctl is-active "$u" 2>/dev/null)"
done
# read by lab: Services { units: ["memcached"] }
# == memcached-listen of step memcached on Controller: memcached listens on 127.0.0.1, ::1 and controller (10.0.0.11) only (settle 0s)
# hint: 
ss -ltn
# read by lab: Listens { port: 11211, want: ["127.0.0.1", "::1", "10.0.0.11"], service: "memcached", setting: "`-l 127.0.0.1,::1,controller` in /etc/memcached.conf" }
# == memcached of step memcached on Compute: memcached answers `stats` on controller:11211 (by name) (settle 0s)
# hint: the compute node gets no `stats` from memcached on controller:11211; the guide sets `-l 127.0.0.1,::1,controller` in /etc/memcached.conf and restarts memcached
tcp controller:11211 from the node: memcached stats
