//! The check list of `lab verify`: what each check proves on this lab, where it runs and
//! its probe.

use std::time::Duration;

use super::{Amqp, Check, MYSQL_PORT, Password, Probe};
use crate::model::{Lab, NetKind, Role};
use crate::provision::step::quote;

/// The checks of a lab, in the order they are shown.
pub fn checks(lab: &Lab) -> Vec<Check> {
    let c = lab.controller();
    let ip = lab.internal_address(c).to_string();
    let external = lab.nic_of(c, NetKind::Nat).address.to_string();
    let name = c.name.as_str();
    let check = |name, on, proves: String, probe| Check {
        name,
        on,
        proves,
        probe,
        settle: Duration::ZERO,
    };
    let amqp = |password, accepted| {
        Probe::Amqp(Amqp {
            host: name.to_string(),
            user: "openstack",
            password,
            accepted,
        })
    };
    let mut chrony = check(
        "chrony",
        Role::Compute,
        format!("chrony on the compute node follows {name} ({ip})"),
        Probe::Script(format!(
            "chronyc -n tracking | grep -E '^(Reference ID|Stratum|System time)'\nchronyc -n tracking | grep -q \"^Reference ID.*({ip})\""
        )),
    );
    chrony.settle = Duration::from_secs(90);
    let client = |name, on, proves: &str| {
        check(
            name,
            on,
            proves.into(),
            Probe::Script("openstack --version 2>&1".into()),
        )
    };
    vec![
        check(
            "sql-bind",
            Role::Controller,
            format!("MariaDB listens on the internal address {ip} only (its listening sockets)"),
            Probe::Script(sql_bind(&ip)),
        ),
        check(
            "sql-remote",
            Role::Compute,
            format!(
                "MariaDB answers on {ip}:3306 from the compute node (a greeting, or its refusal of a host with no account yet)"
            ),
            Probe::MysqlAnswers {
                host: ip.clone(),
                port: MYSQL_PORT,
            },
        ),
        check(
            "sql-not-external",
            Role::Compute,
            format!("MariaDB does not answer on {name}'s external address {external}:3306"),
            Probe::Closed {
                host: external,
                port: MYSQL_PORT,
                open: 22,
            },
        ),
        check(
            "amqp-login",
            Role::Compute,
            format!("RabbitMQ on {name}:5672 accepts user openstack with RABBIT_PASS"),
            amqp(Password::Secret("RABBIT_PASS"), true),
        ),
        check(
            "amqp-wrong-password",
            Role::Compute,
            format!("RabbitMQ on {name}:5672 refuses a wrong password"),
            amqp(Password::Wrong("not-the-password"), false),
        ),
        check(
            "memcached",
            Role::Compute,
            format!("memcached answers `stats` on {name}:11211 (by name)"),
            Probe::MemcachedStats {
                host: name.to_string(),
            },
        ),
        chrony,
        client(
            "client-compute",
            Role::Compute,
            "the OpenStack client runs on the compute node",
        ),
        client(
            "client-controller",
            Role::Controller,
            "the OpenStack client runs on the controller",
        ),
    ]
}

/// The controller's TCP listening sockets on the MySQL port must be exactly `ip:3306`
/// (`ss` is in iproute on CentOS 7 and iproute2 on Debian; no SQL variable needed: MariaDB
/// 10.1 has no `bind_address`).
fn sql_bind(ip: &str) -> String {
    format!(
        "socks=$(ss -ltn | awk '$4 ~ /:3306$/ {{print $4}}')\necho \"listening on port 3306: ${{socks:-nothing}}\"\n[ \"$socks\" = {} ]",
        quote(&format!("{ip}:3306"))
    )
}
