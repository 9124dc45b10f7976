//! Every fact-gathering check of `lab verify`, judged on recorded good and bad outputs of
//! both profiles (tests/recorded/README.md says where each comes from): the verdict, and the
//! hint naming what is missing and which file or command of the guide sets it.

mod common;

use lab::provision::amqp::{AmqpAccess, Right};
use lab::provision::verify::judge::{Judge, Judged};
use lab::provision::verify::{Probe, checks};

/// The judge of check `name` (on `node`'s role) in the shipped lab `lab`.
fn judge(lab: &str, name: &str) -> Judge {
    let lab = common::lab(lab);
    let all = checks(&lab);
    let check = all
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}"));
    match &check.probe {
        Probe::Facts { judge, .. } => judge.clone(),
        other => panic!("{name} is not judged: {other:?}"),
    }
}

fn recorded(profile: &str, file: &str) -> String {
    let path = common::root()
        .join("tests/recorded")
        .join(profile)
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Judges recorded output `file` of `profile` with check `name` of `lab`.
fn on(lab: &str, profile: &str, name: &str, file: &str, status: u32) -> Judged {
    judge(lab, name).judge(&recorded(profile, file), status)
}

const CENTOS: (&str, &str) = ("openstack-ocata", "centos7");
const DEBIAN: (&str, &str) = ("openstack-debian12", "debian12");

fn hint(j: &Judged) -> String {
    assert!(!j.passed, "passed: {j:?}");
    j.hint.clone().expect("a failure has a hint")
}

#[test]
fn sql_bind_reads_the_sockets_of_both_ss_formats() {
    for (lab, profile) in [CENTOS, DEBIAN] {
        let good = on(lab, profile, "sql-bind", "ss-good.txt", 0);
        assert!(good.passed, "{profile}: {good:?}");
        assert_eq!(good.measured, "listening on port 3306: 10.0.0.11:3306");
        let wide = on(lab, profile, "sql-bind", "ss-defaults.txt", 0);
        let h = hint(&wide);
        assert!(h.starts_with("MariaDB listens on "), "{profile}: {h}");
        assert!(h.contains("not 10.0.0.11:3306"), "{profile}: {h}");
        assert!(
            h.contains("bind-address = 10.0.0.11 in /etc/"),
            "{profile}: {h}"
        );
    }
    let h = hint(&on(
        "openstack-ocata",
        "centos7",
        "sql-bind",
        "ss-defaults.txt",
        0,
    ));
    assert!(h.contains("/etc/my.cnf.d/openstack.cnf"), "{h}");
    let h = hint(&on(
        "openstack-debian12",
        "debian12",
        "sql-bind",
        "ss-defaults.txt",
        0,
    ));
    assert!(
        h.contains("/etc/mysql/mariadb.conf.d/99-openstack.cnf"),
        "{h}"
    );
}

#[test]
fn memcached_listens_on_exactly_the_guides_three_addresses() {
    for (lab, profile) in [CENTOS, DEBIAN] {
        let good = on(lab, profile, "memcached-listen", "ss-good.txt", 0);
        assert!(good.passed, "{profile}: {good:?}");
        assert_eq!(
            good.measured, "listening on port 11211: 10.0.0.11:11211, 127.0.0.1:11211, [::1]:11211",
            "{profile}"
        );
        // memcached as the distribution configures it: 127.0.0.1 only (Debian), every
        // address (CentOS).
        let h = hint(&on(
            lab,
            profile,
            "memcached-listen",
            "ss-memcached-default.txt",
            0,
        ));
        assert!(h.starts_with("memcached listens on "), "{profile}: {h}");
        assert!(h.contains("127.0.0.1,::1,controller"), "{profile}: {h}");
    }
    let h = hint(&on(
        "openstack-debian12",
        "debian12",
        "memcached-listen",
        "ss-defaults.txt",
        0,
    ));
    assert!(
        h.starts_with("memcached does not listen on port 11211; is it running?"),
        "{h}"
    );
    let h = hint(&on(
        "openstack-ocata",
        "centos7",
        "memcached-listen",
        "ss-memcached-default.txt",
        0,
    ));
    assert!(
        h.contains(r#"`OPTIONS="-l 127.0.0.1,::1,controller"` in /etc/sysconfig/memcached"#),
        "{h}"
    );
}

#[test]
fn sql_config_names_each_setting_the_guide_sets_and_its_file() {
    for (lab, profile) in [CENTOS, DEBIAN] {
        let good = on(lab, profile, "sql-config", "sql-config-good.txt", 0);
        assert!(good.passed, "{profile}: {good:?}");
        let h = hint(&on(
            lab,
            profile,
            "sql-config",
            "sql-config-defaults.txt",
            0,
        ));
        assert!(
            h.contains("max_connections is 151; the guide sets max_connections = 4096 in /etc/"),
            "{profile}: {h}"
        );
        assert!(
            h.contains("collation-server = utf8_general_ci"),
            "{profile}: {h}"
        );
        assert!(h.contains("character-set-server = utf8 "), "{profile}: {h}");
        let down = on(lab, profile, "sql-config", "sql-down.txt", 1);
        assert!(
            hint(&down).starts_with("cannot query MariaDB as root (ERROR 2002"),
            "{down:?}"
        );
    }
    let h = hint(&on(
        "openstack-ocata",
        "centos7",
        "sql-config",
        "sql-config-defaults.txt",
        0,
    ));
    assert!(h.contains("innodb_file_per_table is OFF; the guide sets innodb_file_per_table = on in /etc/my.cnf.d/openstack.cnf"), "{h}");
}

#[test]
fn sql_secure_names_what_mysql_secure_installation_leaves_undone() {
    for (lab, profile) in [CENTOS, DEBIAN] {
        let good = on(lab, profile, "sql-secure", "sql-secure-good.txt", 0);
        assert!(good.passed, "{profile}: {good:?}");
        let h = hint(&on(lab, profile, "sql-secure", "sql-secure-fresh.txt", 0));
        assert!(
            h.contains("root's password is not DB_ROOT_PASS"),
            "{profile}: {h}"
        );
        assert!(h.contains("mysql_secure_installation"), "{profile}: {h}");
    }
    let h = hint(&on(
        "openstack-ocata",
        "centos7",
        "sql-secure",
        "sql-secure-fresh.txt",
        0,
    ));
    for part in [
        "2 anonymous accounts are left",
        "root may log in from controller",
        "the test database or its grants are left",
    ] {
        assert!(h.contains(part), "{part}: {h}");
    }
}

#[test]
fn services_must_be_enabled_at_boot_and_running() {
    for (lab, profile) in [CENTOS, DEBIAN] {
        let good = on(lab, profile, "sql-enabled", "services-good.txt", 0);
        assert!(good.passed, "{profile}: {good:?}");
        let h = hint(&on(lab, profile, "mq-enabled", "services-disabled.txt", 0));
        assert_eq!(
            h,
            "rabbitmq-server is disabled and inactive; the guide runs `systemctl enable rabbitmq-server` and `systemctl start rabbitmq-server`",
            "{profile}"
        );
    }
    let h = hint(&on(
        "openstack-ocata",
        "centos7",
        "memcached-enabled",
        "services-missing.txt",
        0,
    ));
    assert!(h.starts_with("memcached is unknown and unknown"), "{h}");
    // Running but not enabled: the guide's `enable` line was skipped.
    let j = judge("openstack-debian12", "mq-enabled").judge("rabbitmq-server disabled active\n", 0);
    assert_eq!(
        hint(&j),
        "rabbitmq-server runs but is disabled at boot; the guide runs `systemctl enable rabbitmq-server`"
    );
}

#[test]
fn packages_name_the_missing_ones_and_the_guides_install_command() {
    let good = on(
        "openstack-ocata",
        "centos7",
        "sql-packages",
        "packages-good.txt",
        0,
    );
    assert!(good.passed, "{good:?}");
    let h = hint(&on(
        "openstack-ocata",
        "centos7",
        "sql-packages",
        "packages-missing.txt",
        0,
    ));
    assert_eq!(
        h,
        "packages mariadb-server, python2-PyMySQL are not installed; the guide installs them: `yum install mariadb mariadb-server python2-PyMySQL`"
    );
    let good = on(
        "openstack-debian12",
        "debian12",
        "sql-packages",
        "packages-good.txt",
        0,
    );
    assert!(good.passed, "{good:?}");
    let h = hint(&on(
        "openstack-debian12",
        "debian12",
        "sql-packages",
        "packages-missing.txt",
        0,
    ));
    assert!(
        h.contains("the guide installs it: `apt install mariadb-server python3-pymysql`"),
        "{h}"
    );
}

#[test]
fn chrony_allow_proves_the_controller_serves_the_compute_node() {
    for (lab, profile) in [CENTOS, DEBIAN] {
        let good = on(lab, profile, "chrony-allow", "accheck-allowed.txt", 0);
        assert!(good.passed, "{profile}: {good:?}");
        let h = hint(&on(lab, profile, "chrony-allow", "accheck-denied.txt", 1));
        assert!(
            h.starts_with("chrony does not serve 10.0.0.31 (compute1); the guide sets `allow 10.0.0.0/24` in /etc/chrony"),
            "{profile}: {h}"
        );
    }
}

#[test]
fn amqp_rights_name_set_permissions_when_a_right_is_missing() {
    use lab::provision::verify::judge::amqp_rights;
    let at = "controller:5672";
    let allowed = |s: &str| Right::Allowed(s.into());
    let all = AmqpAccess::Opened {
        configure: allowed("declare-ok"),
        write: allowed("basic.ack"),
        read: allowed("get-ok"),
    };
    assert!(amqp_rights("openstack", "/", at, Ok(all)).passed);
    let no_vhost = AmqpAccess::VhostRefused(
        "530 NOT_ALLOWED - access to vhost '/' refused for user 'openstack'".into(),
    );
    let j = amqp_rights("openstack", "/", at, Ok(no_vhost));
    assert_eq!(
        hint(&j),
        r#"user openstack has no permissions on vhost /; the guide runs `rabbitmqctl set_permissions openstack ".*" ".*" ".*"`"#
    );
    let no_read = AmqpAccess::Opened {
        configure: allowed("declare-ok"),
        write: allowed("basic.ack"),
        read: Right::Refused("403 ACCESS_REFUSED".into()),
    };
    let j = amqp_rights("openstack", "/", at, Ok(no_read));
    assert!(
        hint(&j).starts_with("user openstack may not read on vhost /"),
        "{j:?}"
    );
    assert!(
        j.measured.contains("read: REFUSED (403 ACCESS_REFUSED)"),
        "{j:?}"
    );
    let login = AmqpAccess::LoginRefused("403 ACCESS_REFUSED - Login was refused".into());
    let j = amqp_rights("openstack", "/", at, Ok(login));
    assert!(
        hint(&j).contains("rabbitmqctl add_user openstack RABBIT_PASS"),
        "{j:?}"
    );
    let j = amqp_rights("openstack", "/", at, Err("connection refused".into()));
    assert!(
        hint(&j).starts_with("RabbitMQ does not answer on controller:5672"),
        "{j:?}"
    );
}

#[test]
fn every_check_belongs_to_a_step_of_its_lab_and_every_step_has_a_check() {
    for lab in ["openstack-ocata", "openstack-debian12"] {
        let lab = common::lab(lab);
        let order = lab::provision::order(&lab);
        let all = checks(&lab);
        for c in &all {
            assert!(order.contains(&c.step), "{}: step {}", c.name, c.step);
        }
        for step in &order {
            assert!(
                all.iter().any(|c| c.step == *step),
                "{}: no check of {step}",
                lab.name
            );
        }
    }
}

/// Runs check `name`'s script (an exit-status check) with stub commands first on PATH: each
/// `(command, body)` is a bash script body.
fn script_check(lab: &str, name: &str, stubs: &[(&str, String)]) -> (i32, String) {
    use std::os::unix::fs::PermissionsExt;
    let lab = common::lab(lab);
    let all = checks(&lab);
    let check = all.iter().find(|c| c.name == name).unwrap();
    let Probe::Script(script) = &check.probe else {
        panic!("{name} is not a script")
    };
    let dir = tempfile::tempdir().unwrap();
    for (cmd, body) in stubs {
        let p = common::write_temp(dir.path(), cmd, &format!("#!/bin/bash\n{body}\n"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:/usr/bin:/bin", dir.path().display());
    let (code, out, err) = common::run(
        std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("PATH", path),
    );
    (code, format!("{out}{err}"))
}

#[test]
fn the_compute_nodes_chrony_must_follow_the_controller() {
    for (file, follows) in [
        ("tracking-follows.txt", true),
        ("tracking-other.txt", false),
    ] {
        let tracking = common::root().join("tests/recorded/debian12").join(file);
        let stub = format!("[ \"$*\" = '-n tracking' ] && cat {}", tracking.display());
        for lab in ["openstack-ocata", "openstack-debian12"] {
            let (code, out) = script_check(lab, "chrony", &[("chronyc", stub.clone())]);
            assert_eq!(code == 0, follows, "{lab} {file}: {out}");
            assert!(out.contains("Reference ID"), "{out}");
        }
    }
}

#[test]
fn the_client_must_run_on_each_node() {
    let version = (
        "openstack",
        "[ \"$*\" = --version ] && echo 'openstack 6.0.0'".to_string(),
    );
    for name in ["client-controller", "client-compute"] {
        let (code, out) = script_check("openstack-debian12", name, std::slice::from_ref(&version));
        assert_eq!((code, out.trim()), (0, "openstack 6.0.0"));
        let broken = (
            "openstack",
            "echo 'ImportError: No module named cliff' >&2; exit 1".to_string(),
        );
        let (code, out) = script_check("openstack-ocata", name, &[broken]);
        assert_ne!(code, 0, "{out}");
    }
}

#[test]
fn selinux_needs_openstack_selinux_only_when_it_is_on() {
    let rpm_missing = (
        "rpm",
        "echo 'no package provides openstack-selinux'; exit 1".to_string(),
    );
    let enforcing = ("getenforce", "echo Enforcing".to_string());
    let disabled = ("getenforce", "echo Disabled".to_string());
    let (code, _) = script_check(
        "openstack-ocata",
        "selinux",
        &[enforcing.clone(), rpm_missing.clone()],
    );
    assert_ne!(code, 0);
    let (code, out) = script_check("openstack-ocata", "selinux", &[disabled, rpm_missing]);
    assert_eq!(code, 0, "{out}");
    let rpm_there = (
        "rpm",
        "echo openstack-selinux-0.8.14-1.el7.noarch".to_string(),
    );
    let (code, out) = script_check("openstack-ocata", "selinux", &[enforcing, rpm_there]);
    assert_eq!(code, 0, "{out}");
}
