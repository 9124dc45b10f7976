//! The steps both guest profiles share, built from a [`Guest`]: the data in which profiles
//! differ (package manager, package names, paths, service names).

use super::step::{
    self, COMPUTE, CONTROLLER, Step, all, file_installed, install_file, quote_all, secret_path,
    service_up,
};
use super::template::{context, guest, lines};
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

    /// Command: installs the packages. Waits for the package manager's lock (yum does by
    /// itself): a run cut off from the node (a lost link) leaves its install running there,
    /// and the next run's must wait for it, not fail.
    pub fn install(self, packages: &[&str]) -> String {
        match self {
            Pm::Yum => format!("yum install -y {}", quote_all(packages)),
            Pm::Apt => format!(
                "apt-get -o DPkg::Lock::Timeout=600 update\nDEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y {}",
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
    /// The distribution's chrony.conf lines kept after ours (drift file, rtc, logs): the
    /// profile's `guest/<profile>/chrony-defaults.conf`.
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

context! {
    /// chrony.conf of the controller.
    struct ChronyController = "common/chrony-controller.conf" { ntp_server: Word, cidr: Word, defaults: Text }
}

context! {
    /// chrony.conf of a compute node.
    struct ChronyCompute = "common/chrony-compute.conf" { controller: Word, defaults: Text }
}

context! {
    /// Installs a service's packages (and files), enables it and (re)starts it.
    struct Service = "common/service.sh" { install: Text, service: Word, verb: Word }
}

/// The chrony.conf of a node: the controller follows the NTP server and serves the internal
/// network (also with no upstream: `local stratum 10`), the others follow the controller.
pub fn chrony_conf(lab: &Lab, node: &Node, guest: &Guest) -> String {
    let defaults = lines(guest.chrony_defaults);
    if node.role == crate::model::Role::Controller {
        ChronyController {
            ntp_server: &lab.provision.ntp_server,
            cidr: &lab.network_of(NetKind::Isolated).cidr.to_string(),
            defaults,
        }
        .render()
    } else {
        ChronyCompute {
            controller: &lab.controller().name,
            defaults,
        }
        .render()
    }
}

/// chrony: the node's time source (compute waits for the controller's).
pub fn chrony(lab: &Lab, node: &Node, guest: &Guest) -> Step {
    let roles = if node.role == crate::model::Role::Controller {
        CONTROLLER
    } else {
        COMPUTE
    };
    let reason = "Install chrony so the nodes agree on time: the controller follows an NTP server, the others the controller.";
    let step = Step::new("chrony", reason, roles)
        .file("chrony.conf", 0o644, chrony_conf(lab, node, guest))
        .check(all(&[
            guest.pm.installed(&[guest.chrony_package]),
            file_installed("chrony", "chrony.conf", guest.chrony_conf),
            service_up(guest.chrony_service),
        ]))
        .apply(
            Service {
                install: &format!(
                    "{}\n{}",
                    guest.pm.ensure(&[guest.chrony_package]),
                    install_file("chrony", "chrony.conf", guest.chrony_conf, 0o644)
                ),
                service: guest.chrony_service,
                verb: "restart",
            }
            .render(),
        );
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

context! {
    /// The guide's openstack.cnf.
    struct OpenstackCnf = "common/openstack.cnf" { address: Word }
}

/// The guide's openstack.cnf, exactly.
pub fn openstack_cnf(lab: &Lab) -> String {
    let address = lab.internal_address(lab.controller()).to_string();
    OpenstackCnf { address: &address }.render()
}

/// sql: MariaDB listening on the controller's internal address.
pub fn sql(lab: &Lab, guest: &Guest) -> Step {
    let reason = "Install MariaDB, the database most OpenStack services use, listening on the management address.";
    Step::new("sql", reason, CONTROLLER)
        .file("openstack.cnf", 0o644, openstack_cnf(lab))
        .check(all(&[
            guest.pm.installed(guest.sql_packages),
            file_installed("sql", "openstack.cnf", guest.sql_conf),
            service_up(guest.sql_service),
        ]))
        .apply(
            Service {
                install: &format!(
                    "{}\n{}",
                    guest.pm.ensure(guest.sql_packages),
                    install_file("sql", "openstack.cnf", guest.sql_conf, 0o644)
                ),
                service: guest.sql_service,
                verb: "restart",
            }
            .render(),
        )
}

/// The root accounts the secure installation keeps.
const LOCAL_ROOT: &str = "('localhost', '127.0.0.1', '::1')";

context! {
    /// Prints 0 when the secure installation is complete (`@pw` holds the root password).
    struct SecureCheckSql = "common/sql-secure-check.sql" { local_root: Text }
}

context! {
    /// Prints a DROP USER statement per anonymous or non-local root account.
    struct SecureDropsSql = "common/sql-secure-drops.sql" { local_root: Text }
}

/// The rest of the secure installation once the root password is set and users dropped.
const SECURE_APPLY_SQL: &str = guest!("common/sql-secure-apply.sql").text;

context! {
    /// Bash: `pw` := the database root password, refused unless letters and digits (it is
    /// spliced into SQL; the secrets module makes hex).
    struct ReadDbRootPass = "common/read-db-root-pass.sh" { secret: Word }
}

context! {
    /// Condition: the staged check.sql prints 0 (after [`ReadDbRootPass`]).
    struct SecureCheck = "common/sql-secure-check.sh" { check: Word }
}

context! {
    /// The secure installation: root password, dropped accounts, the rest as SQL.
    struct SecureApply = "common/sql-secure-apply.sh" { read: Text, local_root: Text, drops: Word, apply: Word }
}

fn read_db_root_pass() -> String {
    ReadDbRootPass {
        secret: &secret_path("DB_ROOT_PASS"),
    }
    .render()
}

fn sql_secure_apply() -> String {
    SecureApply {
        read: &read_db_root_pass(),
        local_root: LOCAL_ROOT,
        drops: &step::staged("sql-secure", "drops.sql"),
        apply: &step::staged("sql-secure", "apply.sql"),
    }
    .render()
}

/// sql-secure: mysql_secure_installation as SQL, checked first so a re-run never locks out.
pub fn sql_secure() -> Step {
    let reason = "Secure the database service: set the root password, remove anonymous users, remote root and the test database.";
    // Root logs in with DB_ROOT_PASS itself (not lab's /root/.my.cnf): a secure
    // installation a student did by hand with that password is done.
    let check = all(&[
        read_db_root_pass(),
        SecureCheck {
            check: &step::staged("sql-secure", "check.sql"),
        }
        .render(),
    ]);
    Step::new("sql-secure", reason, CONTROLLER)
        .secret("DB_ROOT_PASS")
        .file(
            "check.sql",
            0o600,
            SecureCheckSql {
                local_root: LOCAL_ROOT,
            }
            .render(),
        )
        .file(
            "drops.sql",
            0o600,
            SecureDropsSql {
                local_root: LOCAL_ROOT,
            }
            .render(),
        )
        .file("apply.sql", 0o600, SECURE_APPLY_SQL)
        .check(check)
        .apply(sql_secure_apply())
}

/// mq: RabbitMQ, the message queue.
pub fn mq(guest: &Guest) -> Step {
    let reason =
        "Install RabbitMQ, the message queue services use to coordinate operations and status.";
    Step::new("mq", reason, CONTROLLER)
        .check(all(&[
            guest.pm.installed(guest.mq_packages),
            service_up(guest.mq_service),
        ]))
        .apply(
            Service {
                install: &guest.pm.ensure(guest.mq_packages),
                service: guest.mq_service,
                verb: "start",
            }
            .render(),
        )
}

/// Condition: the `openstack` RabbitMQ user exists.
const MQ_USER_EXISTS: &str = guest!("common/mq-user-exists.sh").text;
/// Condition: the `openstack` user exists and may configure, write and read everything on
/// `/`. One rabbitmqctl call (each boots an Erlang VM: seconds under emulation); it fails
/// for a user that does not exist.
const MQ_PERMISSIONS_SET: &str = guest!("common/mq-permissions-set.sh").text;

context! {
    /// Adds the `openstack` user unless it exists, then sets its permissions.
    struct MqUser = "common/mq-user.sh" { user_exists: Text, add: Text }
}

context! {
    /// rabbitmqctl 3.7+: the password on stdin.
    struct MqAddStdin = "common/mq-add-user-stdin.sh" { secret: Word }
}

context! {
    /// rabbitmqctl 3.6: the password as an argument.
    struct MqAddArgument = "common/mq-add-user-argument.sh" { secret: Word }
}

/// mq-user: the `openstack` user with RABBIT_PASS, added only when absent.
pub fn mq_user(guest: &Guest) -> Step {
    let reason =
        "Add the openstack user to RabbitMQ and let it configure, write and read everything.";
    let secret = &secret_path("RABBIT_PASS");
    let add = if guest.mq_password_on_stdin {
        MqAddStdin { secret }.render()
    } else {
        MqAddArgument { secret }.render()
    };
    Step::new("mq-user", reason, CONTROLLER)
        .secret("RABBIT_PASS")
        .check(lines(MQ_PERMISSIONS_SET))
        .lab_check(crate::provision::step::LabCheck::AmqpRights {
            user: "openstack",
            secret: "RABBIT_PASS",
            vhost: "/",
        })
        .apply(
            MqUser {
                user_exists: lines(MQ_USER_EXISTS),
                add: &add,
            }
            .render(),
        )
}

context! {
    /// Condition: the setting's line is there, once.
    struct MemcachedCheck = "common/memcached-check.sh" { pattern: Word, path: Word, line: Word }
}

context! {
    /// Replaces the setting's lines by the lab's and restarts memcached.
    struct Memcached = "common/memcached.sh" { ensure: Text, delete: Word, path: Word, line: Word, service: Word }
}

/// memcached: the identity service's token cache, reachable on the management network.
pub fn memcached(lab: &Lab, guest: &Guest) -> Step {
    let reason = "Install memcached, the identity service's token cache, listening on the controller's name.";
    let s = guest.memcached_setting;
    let line = s.line.replace("{controller}", &lab.controller().name);
    Step::new("memcached", reason, CONTROLLER)
        .check(all(&[
            guest.pm.installed(guest.memcached_packages),
            MemcachedCheck {
                pattern: s.pattern,
                path: s.path,
                line: &line,
            }
            .render(),
            service_up(guest.memcached_service),
        ]))
        .apply(
            Memcached {
                ensure: &guest.pm.ensure(guest.memcached_packages),
                delete: &format!("/{}/d", s.pattern.replace('/', "\\/")),
                path: s.path,
                line: &line,
                service: guest.memcached_service,
            }
            .render(),
        )
}
