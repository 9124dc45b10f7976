//! The check list of `lab verify`: what each check proves on this lab, the step of the guide
//! it belongs to, where it runs, its probe and, for a plain script, what the guide says to do
//! when it fails.

use std::time::Duration;

use super::judge::{Judge, SQL_SETTINGS};
use super::{Amqp, Check, MYSQL_PORT, Password, Probe};
use crate::model::{Lab, NetKind, Role};
use crate::provision::centos7::{NetworkCheck, SelinuxCheck};
use crate::provision::common::{Guest, Pm};
use crate::provision::step::{quote, quote_all, secret_path};
use crate::provision::template::context;

context! {
    /// One `<name> installed|missing` line per package (dpkg).
    struct PackagesDpkg = "src/provision/scripts/verify-packages-dpkg.sh" { packages: Text }
}

context! {
    /// One `<name> installed|missing` line per package (rpm).
    struct PackagesRpm = "src/provision/scripts/verify-packages-rpm.sh" { packages: Text }
}

context! {
    /// One `<unit> <is-enabled> <is-active>` line per unit.
    struct Services = "src/provision/scripts/verify-services.sh" { units: Text }
}

context! {
    /// Defines `sql`: mysql as root, with DB_ROOT_PASS once it is set.
    struct SqlLogin = "src/provision/scripts/verify-sql-login.sh" { secret: Word }
}

context! {
    /// The server variables behind the guide's openstack.cnf, `<name>\t<value>`.
    struct SqlSettings = "src/provision/scripts/verify-sql-settings.sh" { login: Text, variables: Text }
}

context! {
    /// The secure installation's facts, `<fact>\t<value>`.
    struct SqlSecure = "src/provision/scripts/verify-sql-secure.sh" { login: Text, local_root: Text }
}

/// The checks of a lab's steps (those of its profile's step list), in the guide's order.
pub fn checks(lab: &Lab) -> Vec<Check> {
    let guest = crate::provision::guest_of(lab.image.profile);
    let mut all = centos7_checks();
    all.extend(chrony(lab, guest));
    all.extend(client(guest));
    all.extend(sql(lab, guest));
    all.extend(mq(lab, guest));
    all.extend(memcached(lab, guest));
    let order = crate::provision::order(lab);
    all.retain(|c| order.contains(&c.step));
    all.sort_by_key(|c| order.iter().position(|s| *s == c.step));
    all
}

/// A check with no settle time, no secrets and no hint of its own (a judge gives one).
fn check(step: &'static str, name: &'static str, on: Role, proves: String, probe: Probe) -> Check {
    Check {
        step,
        name,
        on,
        proves,
        probe,
        settle: Duration::ZERO,
        hint: String::new(),
        secrets: Vec::new(),
    }
}

/// The guide's command that installs `packages`.
fn install_command(pm: Pm, packages: &[&str]) -> String {
    match pm {
        Pm::Yum => format!("yum install {}", quote_all(packages)),
        Pm::Apt => format!("apt install {}", quote_all(packages)),
    }
}

/// `<step>-packages` on each role: the step's packages in the package database.
fn packages(
    step: &'static str,
    guest: &Guest,
    pkgs: &[&'static str],
    roles: &[Role],
) -> Vec<Check> {
    let list = quote_all(pkgs);
    let script = match guest.pm {
        Pm::Apt => PackagesDpkg { packages: &list }.render(),
        Pm::Yum => PackagesRpm { packages: &list }.render(),
    };
    let judge = Judge::Packages {
        packages: pkgs.to_vec(),
        install: install_command(guest.pm, pkgs),
    };
    roles
        .iter()
        .map(|&on| {
            let probe = Probe::Facts {
                script: script.clone(),
                judge: judge.clone(),
            };
            let proves = format!("the guide's packages are installed: {}", pkgs.join(", "));
            check(step, name_of(step, "packages"), on, proves, probe)
        })
        .collect()
}

/// `<step>-enabled` on each role: the service enabled at boot and running.
fn enabled(step: &'static str, unit: &'static str, roles: &[Role]) -> Vec<Check> {
    roles
        .iter()
        .map(|&on| {
            let probe = Probe::Facts {
                script: Services {
                    units: &quote(unit),
                }
                .render(),
                judge: Judge::Services { units: vec![unit] },
            };
            let proves = format!("{unit} is enabled at boot and running");
            check(step, name_of(step, "enabled"), on, proves, probe)
        })
        .collect()
}

/// The names of the checks every step with packages or a service has.
const STEP_CHECK_NAMES: &[&str] = &[
    "chrony-packages",
    "chrony-enabled",
    "client-packages",
    "sql-packages",
    "sql-enabled",
    "mq-packages",
    "mq-enabled",
    "memcached-packages",
    "memcached-enabled",
];

/// `<step>-<what>`, one of [`STEP_CHECK_NAMES`].
fn name_of(step: &str, what: &str) -> &'static str {
    let name = format!("{step}-{what}");
    STEP_CHECK_NAMES
        .iter()
        .find(|n| **n == name)
        .copied()
        .unwrap_or_else(|| panic!("{name} is not in STEP_CHECK_NAMES"))
}

const BOTH: &[Role] = &[Role::Controller, Role::Compute];
const CONTROLLER: &[Role] = &[Role::Controller];

fn chrony(lab: &Lab, guest: &Guest) -> Vec<Check> {
    let c = lab.controller();
    let (name, ip) = (c.name.as_str(), lab.internal_address(c).to_string());
    let compute = lab.nodes.iter().find(|n| n.role == Role::Compute);
    let mut out = packages("chrony", guest, &[guest.chrony_package], BOTH);
    out.extend(enabled("chrony", guest.chrony_service, BOTH));
    if let Some(compute) = compute {
        let address = lab.internal_address(compute).to_string();
        let cidr = lab.network_of(NetKind::Isolated).cidr.to_string();
        out.push(check(
            "chrony",
            "chrony-allow",
            Role::Controller,
            format!(
                "chrony on {name} serves the management network ({cidr}): {} may ask it the time",
                compute.name
            ),
            Probe::Facts {
                script: format!("chronyc accheck {} 2>&1", quote(&address)),
                judge: Judge::ChronyAllows {
                    address,
                    node: compute.name.clone(),
                    cidr,
                    conf: guest.chrony_conf,
                },
            },
        ));
    }
    let mut follows = check(
        "chrony",
        "chrony",
        Role::Compute,
        format!("chrony on the compute node follows {name} ({ip})"),
        Probe::Script(format!(
            "chronyc -n tracking | grep -E '^(Reference ID|Stratum|System time)'\nchronyc -n tracking | grep -q \"^Reference ID.*({ip})\""
        )),
    );
    follows.settle = Duration::from_secs(90);
    follows.hint = format!(
        "the compute node's chrony does not follow {name}; the guide sets `server {name} iburst` in {} (and comments out the other servers) and restarts chrony",
        guest.chrony_conf
    );
    out.push(follows);
    out
}

fn client(guest: &Guest) -> Vec<Check> {
    let mut out = packages("client", guest, guest.client_packages, BOTH);
    let runs = |name, on, proves: &str| {
        let mut c = check(
            "client",
            name,
            on,
            proves.into(),
            Probe::Script("openstack --version 2>&1".into()),
        );
        c.hint = format!(
            "`openstack --version` fails; the guide installs the client: `{}`",
            install_command(guest.pm, guest.client_packages)
        );
        c
    };
    out.push(runs(
        "client-compute",
        Role::Compute,
        "the OpenStack client runs on the compute node",
    ));
    out.push(runs(
        "client-controller",
        Role::Controller,
        "the OpenStack client runs on the controller",
    ));
    out
}

fn sql_login() -> String {
    SqlLogin {
        secret: &secret_path("DB_ROOT_PASS"),
    }
    .render()
}

fn sql(lab: &Lab, guest: &Guest) -> Vec<Check> {
    let c = lab.controller();
    let ip = lab.internal_address(c).to_string();
    let external = lab.nic_of(c, NetKind::Nat).address.to_string();
    let name = c.name.as_str();
    let conf = guest.sql_conf;
    let mut out = packages("sql", guest, guest.sql_packages, CONTROLLER);
    out.extend(enabled("sql", guest.sql_service, CONTROLLER));
    out.push(check(
        "sql",
        "sql-bind",
        Role::Controller,
        format!("MariaDB listens on the internal address {ip} only (its listening sockets)"),
        Probe::Facts {
            script: "ss -ltn".into(),
            judge: Judge::Listens {
                port: MYSQL_PORT,
                want: vec![ip.clone()],
                service: "MariaDB",
                setting: format!("bind-address = {ip} in {conf}"),
            },
        },
    ));
    let variables: Vec<String> = SQL_SETTINGS
        .iter()
        .map(|s| format!("'{}'", s.variable))
        .collect();
    let mut settings = check(
        "sql",
        "sql-config",
        Role::Controller,
        format!(
            "MariaDB runs with the guide's openstack.cnf ({conf}): InnoDB, a file per table, 4096 connections, utf8"
        ),
        Probe::Facts {
            script: SqlSettings {
                login: &sql_login(),
                variables: &variables.join(", "),
            }
            .render(),
            judge: Judge::SqlSettings { conf },
        },
    );
    settings.secrets = vec!["DB_ROOT_PASS"];
    out.push(settings);
    let mut remote = check(
        "sql",
        "sql-remote",
        Role::Compute,
        format!(
            "MariaDB answers on {ip}:3306 from the compute node (a greeting, or its refusal of a host with no account yet)"
        ),
        Probe::MysqlAnswers {
            host: ip.clone(),
            port: MYSQL_PORT,
        },
    );
    remote.hint = format!(
        "the compute node gets no answer from MariaDB on {ip}:3306; the guide sets bind-address = {ip} in {conf} and starts mariadb"
    );
    out.push(remote);
    let mut closed = check(
        "sql",
        "sql-not-external",
        Role::Compute,
        format!("MariaDB does not answer on {name}'s external address {external}:3306"),
        Probe::Closed {
            host: external,
            port: MYSQL_PORT,
            open: 22,
        },
    );
    closed.hint = format!(
        "MariaDB answers on the external address; the guide binds it to {ip} only (bind-address in {conf})"
    );
    out.push(closed);
    let mut secure = check(
        "sql-secure",
        "sql-secure",
        Role::Controller,
        "mysql_secure_installation's result: root's password is DB_ROOT_PASS, no anonymous or remote root account, no test database".into(),
        Probe::Facts {
            script: SqlSecure {
                login: &sql_login(),
                local_root: "('localhost', '127.0.0.1', '::1')",
            }
            .render(),
            judge: Judge::SqlSecure,
        },
    );
    secure.secrets = vec!["DB_ROOT_PASS"];
    out.push(secure);
    out
}

fn mq(lab: &Lab, guest: &Guest) -> Vec<Check> {
    let name = lab.controller().name.as_str();
    let amqp = |password, accepted| {
        Probe::Amqp(Amqp {
            host: name.to_string(),
            user: "openstack",
            password,
            accepted,
        })
    };
    let mut out = packages("mq", guest, guest.mq_packages, CONTROLLER);
    out.extend(enabled("mq", guest.mq_service, CONTROLLER));
    let mut login = check(
        "mq-user",
        "amqp-login",
        Role::Compute,
        format!("RabbitMQ on {name}:5672 accepts user openstack with RABBIT_PASS"),
        amqp(Password::Secret("RABBIT_PASS"), true),
    );
    login.hint = "user openstack cannot log in with RABBIT_PASS (`lab creds`); the guide runs `rabbitmqctl add_user openstack RABBIT_PASS`".into();
    out.push(login);
    let mut wrong = check(
        "mq-user",
        "amqp-wrong-password",
        Role::Compute,
        format!("RabbitMQ on {name}:5672 refuses a wrong password"),
        amqp(Password::Wrong("not-the-password"), false),
    );
    wrong.hint = "RabbitMQ must answer and refuse a wrong password; the guide installs and starts rabbitmq-server".into();
    out.push(wrong);
    out.push(check(
        "mq-user",
        "amqp-permissions",
        Role::Compute,
        format!("user openstack may configure, write and read on vhost / of {name}:5672 (a queue declared, a message published and got back)"),
        Probe::AmqpRights {
            host: name.to_string(),
            user: "openstack",
            vhost: "/".into(),
        },
    ));
    out
}

fn memcached(lab: &Lab, guest: &Guest) -> Vec<Check> {
    let c = lab.controller();
    let (name, ip) = (c.name.as_str(), lab.internal_address(c).to_string());
    let setting = guest.memcached_setting;
    let line = setting.line.replace("{controller}", name);
    let mut out = packages("memcached", guest, guest.memcached_packages, CONTROLLER);
    out.extend(enabled("memcached", guest.memcached_service, CONTROLLER));
    out.push(check(
        "memcached",
        "memcached-listen",
        Role::Controller,
        format!("memcached listens on 127.0.0.1, ::1 and {name} ({ip}) only"),
        Probe::Facts {
            script: "ss -ltn".into(),
            judge: Judge::Listens {
                port: super::MEMCACHED_PORT,
                want: vec!["127.0.0.1".into(), "::1".into(), ip],
                service: "memcached",
                setting: format!("`{line}` in {}", setting.path),
            },
        },
    ));
    let mut stats = check(
        "memcached",
        "memcached",
        Role::Compute,
        format!("memcached answers `stats` on {name}:11211 (by name)"),
        Probe::MemcachedStats {
            host: name.to_string(),
        },
    );
    stats.hint = format!(
        "the compute node gets no `stats` from memcached on {name}:11211; the guide sets `{line}` in {} and restarts memcached",
        setting.path
    );
    out.push(stats);
    out
}

/// The CentOS 7 steps' checks: each a read of the node (the steps' own checks where they
/// read only what is there).
fn centos7_checks() -> Vec<Check> {
    let script = |step, name, on, proves: &str, script: String, hint: &str| {
        let mut c = check(step, name, on, proves.into(), Probe::Script(script));
        c.hint = hint.into();
        c
    };
    let mut out = Vec::new();
    for on in [Role::Controller, Role::Compute] {
        out.push(script(
            "network",
            "network",
            on,
            "NetworkManager is off and the network service brings up the static addresses",
            NetworkCheck {
                ifcfg: "/etc/sysconfig/network-scripts/ifcfg-*",
            }
            .render(),
            "NetworkManager still manages the network; the guide runs `systemctl disable --now NetworkManager`, `systemctl enable network` and sets NM_CONTROLLED=no in each ifcfg file",
        ));
        out.push(script(
            "vault-repos",
            "vault-repos",
            on,
            "no CentOS repository uses the dead mirrorlist: all point at the vault",
            "! grep -H '^mirrorlist=' /etc/yum.repos.d/CentOS-*.repo".into(),
            "a CentOS repository still uses mirrorlist= (gone since CentOS 7's end of life); comment it out and set baseurl= to the vault in /etc/yum.repos.d/CentOS-Base.repo",
        ));
        out.push(script(
            "openstack-repo",
            "openstack-repo",
            on,
            "the Ocata repository is configured and its Cloud SIG key imported",
            format!(
                "grep -l '^\\[centos-openstack-ocata\\]' /etc/yum.repos.d/*.repo &&\nrpm -q {}",
                "gpg-pubkey-764429e6"
            ),
            "no [centos-openstack-ocata] repository or its key; the guide installs centos-release-openstack-ocata (here: the repository file at the vault and `rpm --import /etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-SIG-Cloud`)",
        ));
        out.push(script(
            "upgrade",
            "upgrade",
            on,
            "no package has an update left (`yum check-update`)",
            "yum -q check-update".into(),
            "packages have updates; the guide runs `yum upgrade` (and a reboot for a new kernel)",
        ));
        out.push(script(
            "selinux",
            "selinux",
            on,
            "SELinux is disabled or openstack-selinux is installed",
            SelinuxCheck {
                installed: &Pm::Yum.installed(&["openstack-selinux"]),
            }
            .render(),
            "SELinux is on without openstack-selinux; the guide runs `yum install openstack-selinux`",
        ));
    }
    out
}
