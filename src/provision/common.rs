//! The steps both guest profiles share (`profiles/common/steps/`), built from a [`Guest`]: the
//! data in which profiles differ (package manager, package names, paths, service names), read
//! from each profile's `profile.toml`.

use super::step::{self, COMPUTE, CONTROLLER, Step, quote_all, secret_path};
use super::template::{context, guest, lines};
use crate::model::{Lab, NetKind, Node};

/// The package manager of a guest (`package_manager` in a profile.toml: `yum` or `apt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pm {
    /// rpm + yum (CentOS 7).
    Yum,
    /// dpkg + apt-get (Debian).
    Apt,
}

context! {
    /// dpkg's condition: every package installed.
    struct AptInstalled = "profiles/common/pm/apt/installed.sh" { packages: Text, count: Word }
}

context! {
    /// apt's command: the packages installed, once the lists are fresh.
    struct AptInstall = "profiles/common/pm/apt/install.sh" { packages: Text }
}

context! {
    /// rpm's condition: every package (or what provides it) installed.
    struct YumInstalled = "profiles/common/pm/yum/installed.sh" { packages: Text }
}

context! {
    /// yum's command: the packages installed.
    struct YumInstall = "profiles/common/pm/yum/install.sh" { packages: Text }
}

context! {
    /// The install command, run only when the condition fails.
    struct Ensure = "profiles/common/pm/ensure.sh" { installed: Text, install: Text }
}

impl Pm {
    /// Condition: every package is installed. Precise (rpm / dpkg status), needs no network.
    pub fn installed(self, packages: &[&str]) -> String {
        let list = &quote_all(packages);
        match self {
            Pm::Yum => YumInstalled { packages: list }.render(),
            Pm::Apt => AptInstalled {
                packages: list,
                count: &packages.len().to_string(),
            }
            .render(),
        }
    }

    /// Command: installs the packages. Waits for the package manager's lock (yum does by
    /// itself): a run cut off from the node (a lost link) leaves its install running there,
    /// and the next run's must wait for it, not fail.
    pub fn install(self, packages: &[&str]) -> String {
        let list = &quote_all(packages);
        match self {
            Pm::Yum => YumInstall { packages: list }.render(),
            Pm::Apt => AptInstall { packages: list }.render(),
        }
    }

    /// Command: installs the packages unless they already are (an offline re-run stays offline).
    pub fn ensure(self, packages: &[&str]) -> String {
        Ensure {
            installed: &self.installed(packages),
            install: &self.install(packages).replace('\n', "\n  "),
        }
        .render()
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
    /// profile's `profiles/<profile>/chrony-defaults.conf`.
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
    struct ChronyController = "profiles/common/steps/chrony/chrony-controller.conf" { ntp_server: Word, cidr: Word, defaults: Text }
}

context! {
    /// chrony.conf of a compute node.
    struct ChronyCompute = "profiles/common/steps/chrony/chrony-compute.conf" { controller: Word, defaults: Text }
}

context! {
    /// chrony's check: the package, the lab's chrony.conf in place, the service up.
    struct ChronyCheck = "profiles/common/steps/chrony/check.sh" { installed: Text, staged: Word, conf: Word, service: Word }
}

context! {
    /// chrony's apply: the package, the lab's chrony.conf, the service (re)started.
    struct ChronyApply = "profiles/common/steps/chrony/apply.sh" { ensure: Text, staged: Word, conf: Word, service: Word }
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
    let staged = &step::staged("chrony", "chrony.conf");
    let step = Step::new("chrony", reason, roles)
        .file("chrony.conf", 0o644, chrony_conf(lab, node, guest))
        .check(
            ChronyCheck {
                installed: &guest.pm.installed(&[guest.chrony_package]),
                staged,
                conf: guest.chrony_conf,
                service: guest.chrony_service,
            }
            .render(),
        )
        .apply(
            ChronyApply {
                ensure: &guest.pm.ensure(&[guest.chrony_package]),
                staged,
                conf: guest.chrony_conf,
                service: guest.chrony_service,
            }
            .render(),
        );
    match node.role {
        crate::model::Role::Controller => step,
        crate::model::Role::Compute => step.after(&lab.controller().name, "chrony"),
    }
}

context! {
    /// The client's check: its packages installed.
    struct ClientCheck = "profiles/common/steps/client/check.sh" { installed: Text }
}

context! {
    /// The client's apply: its packages installed.
    struct ClientApply = "profiles/common/steps/client/apply.sh" { install: Text }
}

/// client: the OpenStack command line client.
pub fn client(guest: &Guest) -> Step {
    let reason = "Install the OpenStack client.";
    let pkgs = guest.client_packages;
    Step::new("client", reason, step::ALL)
        .check(
            ClientCheck {
                installed: &guest.pm.installed(pkgs),
            }
            .render(),
        )
        .apply(
            ClientApply {
                install: &guest.pm.install(pkgs),
            }
            .render(),
        )
}

context! {
    /// The guide's openstack.cnf.
    struct OpenstackCnf = "profiles/common/steps/sql/openstack.cnf" { address: Word }
}

context! {
    /// sql's check: the packages, the guide's openstack.cnf in place, MariaDB up.
    struct SqlCheck = "profiles/common/steps/sql/check.sh" { installed: Text, staged: Word, conf: Word, service: Word }
}

context! {
    /// sql's apply: the packages, the guide's openstack.cnf, MariaDB restarted.
    struct SqlApply = "profiles/common/steps/sql/apply.sh" { ensure: Text, staged: Word, conf: Word, service: Word }
}

/// The guide's openstack.cnf, exactly.
pub fn openstack_cnf(lab: &Lab) -> String {
    let address = lab.internal_address(lab.controller()).to_string();
    OpenstackCnf { address: &address }.render()
}

/// sql: MariaDB listening on the controller's internal address.
pub fn sql(lab: &Lab, guest: &Guest) -> Step {
    let reason = "Install MariaDB, the database most OpenStack services use, listening on the management address.";
    let staged = &step::staged("sql", "openstack.cnf");
    Step::new("sql", reason, CONTROLLER)
        .file("openstack.cnf", 0o644, openstack_cnf(lab))
        .check(
            SqlCheck {
                installed: &guest.pm.installed(guest.sql_packages),
                staged,
                conf: guest.sql_conf,
                service: guest.sql_service,
            }
            .render(),
        )
        .apply(
            SqlApply {
                ensure: &guest.pm.ensure(guest.sql_packages),
                staged,
                conf: guest.sql_conf,
                service: guest.sql_service,
            }
            .render(),
        )
}

/// The root accounts the secure installation keeps.
const LOCAL_ROOT: &str = "('localhost', '127.0.0.1', '::1')";

context! {
    /// Prints 0 when the secure installation is complete (`@pw` holds the root password).
    struct SecureCheckSql = "profiles/common/steps/sql-secure/check.sql" { local_root: Text }
}

context! {
    /// Prints a DROP USER statement per anonymous or non-local root account.
    struct SecureDropsSql = "profiles/common/steps/sql-secure/drops.sql" { local_root: Text }
}

/// The rest of the secure installation once the root password is set and users dropped.
const SECURE_APPLY_SQL: &str = guest!("profiles/common/steps/sql-secure/apply.sql").text;

context! {
    /// The secure installation's check: root logs in with DB_ROOT_PASS (letters and digits:
    /// it is spliced into SQL; the secrets module makes hex) and check.sql prints 0.
    struct SecureCheck = "profiles/common/steps/sql-secure/check.sh" { secret: Word, check: Word }
}

context! {
    /// The secure installation: root password, dropped accounts, the rest as SQL.
    struct SecureApply = "profiles/common/steps/sql-secure/apply.sh" { secret: Word, local_root: Text, drops: Word, apply: Word }
}

/// sql-secure: mysql_secure_installation as SQL, checked first so a re-run never locks out.
pub fn sql_secure() -> Step {
    let reason = "Secure the database service: set the root password, remove anonymous users, remote root and the test database.";
    let secret = &secret_path("DB_ROOT_PASS");
    // Root logs in with DB_ROOT_PASS itself (not lab's /root/.my.cnf): a secure
    // installation a student did by hand with that password is done.
    let check = SecureCheck {
        secret,
        check: &step::staged("sql-secure", "check.sql"),
    };
    let apply = SecureApply {
        secret,
        local_root: LOCAL_ROOT,
        drops: &step::staged("sql-secure", "drops.sql"),
        apply: &step::staged("sql-secure", "apply.sql"),
    };
    let local_root = LOCAL_ROOT;
    Step::new("sql-secure", reason, CONTROLLER)
        .secret("DB_ROOT_PASS")
        .file("check.sql", 0o600, SecureCheckSql { local_root }.render())
        .file("drops.sql", 0o600, SecureDropsSql { local_root }.render())
        .file("apply.sql", 0o600, SECURE_APPLY_SQL)
        .check(check.render())
        .apply(apply.render())
}

context! {
    /// mq's check: the packages, RabbitMQ up.
    struct MqCheck = "profiles/common/steps/mq/check.sh" { installed: Text, service: Word }
}

context! {
    /// mq's apply: the packages, RabbitMQ enabled and started.
    struct MqApply = "profiles/common/steps/mq/apply.sh" { ensure: Text, service: Word }
}

/// mq: RabbitMQ, the message queue.
pub fn mq(guest: &Guest) -> Step {
    let reason =
        "Install RabbitMQ, the message queue services use to coordinate operations and status.";
    Step::new("mq", reason, CONTROLLER)
        .check(
            MqCheck {
                installed: &guest.pm.installed(guest.mq_packages),
                service: guest.mq_service,
            }
            .render(),
        )
        .apply(
            MqApply {
                ensure: &guest.pm.ensure(guest.mq_packages),
                service: guest.mq_service,
            }
            .render(),
        )
}

/// mq-user's check: the `openstack` user exists and may configure, write and read
/// everything on `/`. One rabbitmqctl call (each boots an Erlang VM: seconds under
/// emulation); it fails for a user that does not exist.
const MQ_USER_CHECK: crate::provision::template::Template =
    guest!("profiles/common/steps/mq-user/check.sh");

context! {
    /// Adds the `openstack` user unless it exists, then sets its permissions.
    struct MqUser = "profiles/common/steps/mq-user/apply.sh" { add: Text }
}

context! {
    /// rabbitmqctl 3.7+: the password on stdin.
    struct MqAddStdin = "profiles/common/steps/mq-user/add-user-stdin.sh" { secret: Word }
}

context! {
    /// rabbitmqctl 3.6: the password as an argument.
    struct MqAddArgument = "profiles/common/steps/mq-user/add-user-argument.sh" { secret: Word }
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
        .check(MQ_USER_CHECK.text())
        .lab_check(crate::provision::step::LabCheck::AmqpRights {
            user: "openstack",
            secret: "RABBIT_PASS",
            vhost: "/",
        })
        .apply(MqUser { add: &add }.render())
}

context! {
    /// memcached's check: the packages, the setting's line there once, memcached up and
    /// taking connections on `host:port` (the controller's name).
    struct MemcachedCheck = "profiles/common/steps/memcached/check.sh" { installed: Text, pattern: Word, path: Word, line: Word, service: Word, host: Word, port: Word }
}

context! {
    /// Replaces the setting's lines by the lab's, restarts memcached and waits until it takes
    /// connections on `host:port`.
    struct Memcached = "profiles/common/steps/memcached/apply.sh" { ensure: Text, delete: Word, path: Word, line: Word, service: Word, host: Word, port: Word }
}

/// memcached: the identity service's token cache, reachable on the management network.
pub fn memcached(lab: &Lab, guest: &Guest) -> Step {
    let reason = "Install memcached, the identity service's token cache, listening on the controller's name.";
    let s = guest.memcached_setting;
    let host = &lab.controller().name;
    let line = s.line.replace("{controller}", host);
    let port = &crate::provision::verify::MEMCACHED_PORT.to_string();
    Step::new("memcached", reason, CONTROLLER)
        .check(
            MemcachedCheck {
                installed: &guest.pm.installed(guest.memcached_packages),
                pattern: s.pattern,
                path: s.path,
                line: &line,
                service: guest.memcached_service,
                host,
                port,
            }
            .render(),
        )
        .apply(
            Memcached {
                ensure: &guest.pm.ensure(guest.memcached_packages),
                delete: &format!("/{}/d", s.pattern.replace('/', "\\/")),
                path: s.path,
                line: &line,
                service: guest.memcached_service,
                host,
                port,
            }
            .render(),
        )
}
