//! The steps both guest profiles share, built from a [`Guest`]: the data in which profiles
//! differ (package manager, package names, paths, service names).

use super::step::{
    self, COMPUTE, CONTROLLER, Step, all, file_installed, install_file, quote, quote_all,
    secret_path, service_up,
};
use crate::model::{Lab, NetKind, Node};

/// The package manager of a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pm {
    /// rpm + yum (CentOS 7).
    Yum,
    /// dpkg + apt-get (Debian).
    Apt,
}

impl Pm {
    /// Condition: every package is installed. Precise (rpm / dpkg status), needs no network.
    pub fn installed(self, packages: &[&str]) -> String {
        match self {
            Pm::Yum => format!("rpm -q --whatprovides {} >/dev/null", quote_all(packages)),
            Pm::Apt => format!(
                "[ \"$(dpkg-query -W -f='${{Status}}\\n' {} 2>/dev/null | grep -cx 'install ok installed')\" = {} ]",
                quote_all(packages),
                packages.len()
            ),
        }
    }

    /// Command: installs the packages.
    pub fn install(self, packages: &[&str]) -> String {
        match self {
            Pm::Yum => format!("yum install -y {}", quote_all(packages)),
            Pm::Apt => format!(
                "apt-get update\nDEBIAN_FRONTEND=noninteractive apt-get install -y {}",
                quote_all(packages)
            ),
        }
    }

    /// Command: installs the packages unless they already are (an offline re-run stays offline).
    pub fn ensure(self, packages: &[&str]) -> String {
        let install = self.install(packages).replace('\n', "\n  ");
        format!("if ! {}; then\n  {install}\nfi", self.installed(packages))
    }
}

/// A one-line setting in a distribution's config file: every line matching `pattern` is
/// replaced by `line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSetting {
    pub path: &'static str,
    /// A basic regular expression (grep/sed), anchored with `^`.
    pub pattern: &'static str,
    /// The line, with `{controller}` standing for the controller's name.
    pub line: &'static str,
}

/// What differs between guest profiles for the shared steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guest {
    pub pm: Pm,
    pub chrony_package: &'static str,
    pub chrony_conf: &'static str,
    pub chrony_service: &'static str,
    /// The distribution's chrony.conf lines kept after ours (drift file, rtc, logs).
    pub chrony_defaults: &'static str,
    pub client_packages: &'static [&'static str],
    pub sql_packages: &'static [&'static str],
    pub sql_conf: &'static str,
    pub sql_service: &'static str,
    pub mq_packages: &'static [&'static str],
    pub mq_service: &'static str,
    /// rabbitmqctl (3.7+) reads the password from stdin when the argument is left out.
    pub mq_password_on_stdin: bool,
    pub memcached_packages: &'static [&'static str],
    pub memcached_setting: LineSetting,
    pub memcached_service: &'static str,
}

/// The chrony.conf of a node: the controller follows the NTP server and serves the internal
/// network (also with no upstream: `local stratum 10`), the others follow the controller.
fn chrony_conf(lab: &Lab, node: &Node, guest: &Guest) -> String {
    let head = "# Written by lab, step chrony: the install guide's NTP setup.\n";
    let ours = if node.role == crate::model::Role::Controller {
        let cidr = lab.network_of(NetKind::Isolated).cidr;
        let ntp = &lab.provision.ntp_server;
        format!("server {ntp} iburst\nallow {cidr}\nlocal stratum 10\n")
    } else {
        format!("server {} iburst\n", lab.controller().name)
    };
    format!("{head}{ours}{}", guest.chrony_defaults)
}

/// chrony: the node's time source (compute waits for the controller's).
pub fn chrony(lab: &Lab, node: &Node, guest: &Guest) -> Step {
    let roles = if node.role == crate::model::Role::Controller {
        CONTROLLER
    } else {
        COMPUTE
    };
    let reason = "Install chrony so the nodes agree on time: the controller follows an NTP server, the others the controller.";
    let svc = quote(guest.chrony_service);
    let step = Step::new("chrony", reason, roles)
        .file("chrony.conf", 0o644, chrony_conf(lab, node, guest))
        .check(all(&[
            guest.pm.installed(&[guest.chrony_package]),
            file_installed("chrony", "chrony.conf", guest.chrony_conf),
            service_up(guest.chrony_service),
        ]))
        .apply(format!(
            "{}\n{}\nsystemctl enable {svc}\nsystemctl restart {svc}",
            guest.pm.ensure(&[guest.chrony_package]),
            install_file("chrony", "chrony.conf", guest.chrony_conf, 0o644),
        ));
    match node.role {
        crate::model::Role::Controller => step,
        crate::model::Role::Compute => step.after(&lab.controller().name, "chrony"),
    }
}

/// A step that only installs packages.
pub fn packages(id: &'static str, reason: &'static str, guest: &Guest, pkgs: &[&str]) -> Step {
    Step::new(id, reason, step::ALL)
        .check(guest.pm.installed(pkgs))
        .apply(guest.pm.install(pkgs))
}

/// client: the OpenStack command line client.
pub fn client(guest: &Guest) -> Step {
    let reason = "Install the OpenStack client.";
    packages("client", reason, guest, guest.client_packages)
}

/// The guide's openstack.cnf, exactly.
pub fn openstack_cnf(lab: &Lab) -> String {
    let address = lab.internal_address(lab.controller());
    format!(
        "[mysqld]\nbind-address = {address}\n\ndefault-storage-engine = innodb\ninnodb_file_per_table = on\nmax_connections = 4096\ncollation-server = utf8_general_ci\ncharacter-set-server = utf8\n"
    )
}

/// sql: MariaDB listening on the controller's internal address.
pub fn sql(lab: &Lab, guest: &Guest) -> Step {
    let reason = "Install MariaDB, the database most OpenStack services use, listening on the management address.";
    let svc = quote(guest.sql_service);
    Step::new("sql", reason, CONTROLLER)
        .file("openstack.cnf", 0o644, openstack_cnf(lab))
        .check(all(&[
            guest.pm.installed(guest.sql_packages),
            file_installed("sql", "openstack.cnf", guest.sql_conf),
            service_up(guest.sql_service),
        ]))
        .apply(format!(
            "{}\n{}\nsystemctl enable {svc}\nsystemctl restart {svc}",
            guest.pm.ensure(guest.sql_packages),
            install_file("sql", "openstack.cnf", guest.sql_conf, 0o644),
        ))
}

/// The root accounts the secure installation keeps.
const LOCAL_ROOT: &str = "('localhost', '127.0.0.1', '::1')";

/// Prints 0 when the secure installation is complete (`@pw` holds the root password).
fn secure_check_sql() -> String {
    format!(
        "-- lab, step sql-secure: prints 0 when the secure installation is complete.
SELECT
  (SELECT COUNT(*) FROM mysql.user WHERE User = '')
+ (SELECT COUNT(*) FROM mysql.user WHERE User = 'root' AND Host NOT IN {LOCAL_ROOT})
+ (SELECT COUNT(*) FROM mysql.user WHERE User = 'root' AND Password <> PASSWORD(@pw))
+ (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'test')
+ (SELECT COUNT(*) FROM mysql.db WHERE Db = 'test' OR Db LIKE 'test\\\\_%');
"
    )
}

/// Prints a DROP USER statement per anonymous or non-local root account.
fn secure_drops_sql() -> String {
    format!(
        "-- lab, step sql-secure: the accounts mysql_secure_installation removes, as DROP USER statements.
SELECT CONCAT('DROP USER ', QUOTE(User), '@', QUOTE(Host), ';') FROM mysql.user
WHERE User = '' OR (User = 'root' AND Host NOT IN {LOCAL_ROOT});
"
    )
}

/// The rest of the secure installation once the root password is set and users dropped.
const SECURE_APPLY_SQL: &str = "-- lab, step sql-secure: remove the test database and its grants.
DROP DATABASE IF EXISTS test;
DELETE FROM mysql.db WHERE Db = 'test' OR Db LIKE 'test\\\\_%';
FLUSH PRIVILEGES;
";

/// Bash: `pw` := the database root password, refused unless letters and digits (it is
/// spliced into SQL; the secrets module makes hex).
fn read_db_root_pass() -> String {
    format!(
        "pw=$(cat {}) &&\n[[ $pw =~ ^[A-Za-z0-9]+$ ]]",
        secret_path("DB_ROOT_PASS")
    )
}

fn sql_secure_apply() -> String {
    let files = |name| quote(&step::staged("sql-secure", name));
    format!(
        r#"{read} || {{ echo 'lab: DB_ROOT_PASS must be letters and digits' >&2; exit 1; }}
(umask 077 && printf '[client]\nuser=root\npassword=%s\n' "$pw" > /root/.my.cnf.lab)
# Log in with the password if a previous run set it, else as a fresh server allows.
if mysql --defaults-file=/root/.my.cnf.lab -e 'SELECT 1' >/dev/null 2>&1; then
  login=(--defaults-file=/root/.my.cnf.lab)
else
  login=(--no-defaults --user=root)
fi
hosts=$(mysql "${{login[@]}}" -NB -e "SELECT Host FROM mysql.user WHERE User = 'root' AND Host IN {LOCAL_ROOT}")
drops=$(mysql "${{login[@]}}" -NBr < {drops})
{{
  while read -r host; do
    [ -z "$host" ] || printf "SET PASSWORD FOR 'root'@'%s' = PASSWORD('%s');\n" "$host" "$pw"
  done <<< "$hosts"
  printf '%s\n' "$drops"
  cat {apply}
}} | mysql "${{login[@]}}"
mv /root/.my.cnf.lab /root/.my.cnf"#,
        read = read_db_root_pass(),
        drops = files("drops.sql"),
        apply = files("apply.sql"),
    )
}

/// sql-secure: mysql_secure_installation as SQL, checked first so a re-run never locks out.
pub fn sql_secure() -> Step {
    let reason = "Secure the database service: set the root password, remove anonymous users, remote root and the test database.";
    let check = all(&[
        "test -f /root/.my.cnf".to_string(),
        read_db_root_pass(),
        format!(
            "[ \"$({{ printf \"SET @pw = '%s';\\n\" \"$pw\"; cat {}; }} | mysql --defaults-file=/root/.my.cnf -NB)\" = 0 ]",
            quote(&step::staged("sql-secure", "check.sql"))
        ),
    ]);
    Step::new("sql-secure", reason, CONTROLLER)
        .secret("DB_ROOT_PASS")
        .file("check.sql", 0o600, secure_check_sql())
        .file("drops.sql", 0o600, secure_drops_sql())
        .file("apply.sql", 0o600, SECURE_APPLY_SQL)
        .check(check)
        .apply(sql_secure_apply())
}

/// mq: RabbitMQ, the message queue.
pub fn mq(guest: &Guest) -> Step {
    let reason =
        "Install RabbitMQ, the message queue services use to coordinate operations and status.";
    let svc = quote(guest.mq_service);
    Step::new("mq", reason, CONTROLLER)
        .check(all(&[
            guest.pm.installed(guest.mq_packages),
            service_up(guest.mq_service),
        ]))
        .apply(format!(
            "{}\nsystemctl enable {svc}\nsystemctl start {svc}",
            guest.pm.ensure(guest.mq_packages)
        ))
}

/// Condition: the `openstack` RabbitMQ user exists.
const MQ_USER_EXISTS: &str =
    "rabbitmqctl -q list_users | awk '$1 == \"openstack\" {found = 1} END {exit !found}'";
/// Condition: the `openstack` user exists and may configure, write and read everything on
/// `/`. One rabbitmqctl call (each boots an Erlang VM: seconds under emulation); it fails
/// for a user that does not exist.
const MQ_PERMISSIONS_SET: &str = "rabbitmqctl -q list_user_permissions openstack 2>/dev/null | awk '$1 == \"/\" && $2 == \".*\" && $3 == \".*\" && $4 == \".*\" {found = 1} END {exit !found}'";

/// mq-user: the `openstack` user with RABBIT_PASS, added only when absent.
pub fn mq_user(guest: &Guest) -> Step {
    let reason =
        "Add the openstack user to RabbitMQ and let it configure, write and read everything.";
    let secret = quote(&secret_path("RABBIT_PASS"));
    let add = if guest.mq_password_on_stdin {
        format!(
            "  # The password goes on stdin, out of the process list.\n  rabbitmqctl -q add_user openstack < {secret}"
        )
    } else {
        format!(
            "  # rabbitmqctl 3.6 takes the password only as an argument: visible in ps while it runs.\n  rabbitmqctl add_user openstack \"$(cat {secret})\""
        )
    };
    Step::new("mq-user", reason, CONTROLLER)
        .secret("RABBIT_PASS")
        .check(MQ_PERMISSIONS_SET)
        .apply(format!(
            "if ! {MQ_USER_EXISTS}; then\n{add}\nfi\nrabbitmqctl set_permissions openstack \".*\" \".*\" \".*\""
        ))
}

/// memcached: the identity service's token cache, reachable on the management network.
pub fn memcached(lab: &Lab, guest: &Guest) -> Step {
    let reason = "Install memcached, the identity service's token cache, listening on the controller's name.";
    let s = guest.memcached_setting;
    let line = s.line.replace("{controller}", &lab.controller().name);
    let (path, pattern, line_q) = (quote(s.path), quote(s.pattern), quote(&line));
    let svc = quote(guest.memcached_service);
    Step::new("memcached", reason, CONTROLLER)
        .check(all(&[
            guest.pm.installed(guest.memcached_packages),
            format!("[ \"$(grep -c -e {pattern} {path})\" = 1 ]"),
            format!("grep -qxF -- {line_q} {path}"),
            service_up(guest.memcached_service),
        ]))
        .apply(format!(
            "{}\nsed -i -e {} {path}\nprintf '%s\\n' {line_q} >> {path}\nsystemctl enable {svc}\nsystemctl restart {svc}",
            guest.pm.ensure(guest.memcached_packages),
            quote(&format!("/{}/d", s.pattern.replace('/', "\\/"))),
        ))
}
