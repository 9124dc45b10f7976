//! The checks of `lab verify`: golden scripts, valid bash (bash -n, shellcheck), a Python
//! AMQP login that compiles, and the secrets they need.

mod common;

use std::process::Command;

use common::{require_tool, run};
use lab::model::Role;
use lab::provision::verify::checks;

fn rendered(lab: &str) -> String {
    let lab = common::lab(lab);
    checks(&lab)
        .iter()
        .map(|c| {
            format!(
                "# == {} on {:?}: {} (settle {}s)\n{}\n",
                c.name,
                c.on,
                c.proves,
                c.settle.as_secs(),
                c.script
            )
        })
        .collect()
}

#[test]
fn checks_are_pinned_by_golden_files() {
    for lab in ["openstack-ocata", "openstack-debian12"] {
        common::assert_golden(&format!("verify/{lab}.sh"), &rendered(lab));
    }
}

#[test]
fn checks_run_from_the_compute_node_except_the_controller_local_ones() {
    let lab = common::lab("openstack-debian12");
    let all = checks(&lab);
    let on_controller: Vec<&str> = all
        .iter()
        .filter(|c| c.on == Role::Controller)
        .map(|c| c.name)
        .collect();
    assert_eq!(on_controller, ["sql-bind", "client-controller"]);
    let names: Vec<&str> = all.iter().map(|c| c.name).collect();
    for n in [
        "sql-remote",
        "amqp-login",
        "amqp-wrong-password",
        "memcached",
        "chrony",
        "client-compute",
    ] {
        assert!(names.contains(&n), "{n}");
    }
    let amqp = all.iter().find(|c| c.name == "amqp-login").unwrap();
    assert_eq!(amqp.secrets, ["RABBIT_PASS"]);
    let secrets = lab::secrets::LabSecrets::from_seed(&lab, &common::SEED);
    for c in &all {
        for value in secrets.passwords.values() {
            assert!(
                !c.script.contains(value.as_str()),
                "{} holds a secret",
                c.name
            );
        }
    }
}

#[test]
fn every_check_is_valid_bash_and_the_amqp_login_compiles() {
    require_tool("shellcheck", "shellcheck");
    let dir = tempfile::tempdir().unwrap();
    for (i, c) in checks(&common::lab("openstack-ocata")).iter().enumerate() {
        let f = common::write_temp(
            dir.path(),
            &format!("{i}.sh"),
            &format!("#!/bin/bash\nset -euo pipefail\n{}\n", c.script),
        );
        let (code, _, err) = run(Command::new("bash").arg("-n").arg(&f));
        assert_eq!(code, 0, "{}: {err}", c.name);
        let (code, out, _) = run(Command::new("shellcheck").args(["-S", "warning"]).arg(&f));
        assert_eq!(code, 0, "{}: {out}", c.name);
        if let Some((_, py)) = c.script.split_once("<<'PY'\n") {
            let py = py.trim_end_matches("PY").trim_end_matches("PY\n}");
            let p = common::write_temp(
                dir.path(),
                &format!("{i}.py"),
                py.split("\nPY").next().unwrap(),
            );
            let (code, _, err) = run(Command::new("python3").args(["-m", "py_compile"]).arg(&p));
            assert_eq!(code, 0, "{}: {err}", c.name);
        }
    }
}
