//! The debian12 profile: the same environment with Debian's own packages. No repository,
//! upgrade, SELinux or NetworkManager steps: the image carries what the lab needs.

use super::common::{self, Guest, LineSetting, Pm};
use super::step::Step;
use super::template::guest;
use crate::model::{Lab, Node};

/// Debian 12 package names, paths and services.
pub const GUEST: Guest = Guest {
    pm: Pm::Apt,
    chrony_package: "chrony",
    chrony_conf: "/etc/chrony/chrony.conf",
    chrony_service: "chrony",
    chrony_defaults: guest!("profiles/debian12/chrony-defaults.conf").text,
    client_packages: &["python3-openstackclient"],
    sql_packages: &["mariadb-server", "python3-pymysql"],
    sql_conf: "/etc/mysql/mariadb.conf.d/99-openstack.cnf",
    sql_service: "mariadb",
    mq_packages: &["rabbitmq-server"],
    mq_service: "rabbitmq-server",
    mq_password_on_stdin: true,
    memcached_packages: &["memcached", "python3-memcache"],
    memcached_setting: LineSetting {
        path: "/etc/memcached.conf",
        pattern: "^-l ",
        line: "-l 127.0.0.1,::1,{controller}",
    },
    memcached_service: "memcached",
};

/// The steps of a debian12 lab, in the guide's order, for every role.
pub fn steps(lab: &Lab, node: &Node) -> Vec<Step> {
    vec![
        common::chrony(lab, node, &GUEST),
        common::client(&GUEST),
        common::sql(lab, &GUEST),
        common::sql_secure(),
        common::mq(&GUEST),
        common::mq_user(&GUEST),
        common::memcached(lab, &GUEST),
    ]
}
