//! The checks of `lab verify`: golden scripts, valid bash (bash -n, shellcheck), a Python
//! AMQP login that compiles, and the secrets they need.

mod common;

use std::process::Command;

use common::{require_tool, run};
use lab::model::Role;
use lab::provision::verify::checks;

fn rendered(lab: &str) -> String {
    let lab = common::lab(lab);
    let all = checks(&lab);
    let mut out: String = all
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
        .collect();
    let mut files: Vec<_> = all.iter().flat_map(|c| c.files.iter()).collect();
    files.dedup();
    for f in files {
        out.push_str(&format!(
            "# == uploaded {} (mode {:04o})\n{}",
            f.path, f.mode, f.content
        ));
    }
    out
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
    let wrong = all
        .iter()
        .find(|c| c.name == "amqp-wrong-password")
        .unwrap();
    assert_eq!(amqp.files, wrong.files, "one AMQP login program for both");
    assert_eq!(amqp.files.len(), 1);
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
        for (j, file) in c.files.iter().enumerate() {
            assert!(
                c.script.contains(&file.path),
                "{} runs the file it uploads",
                c.name
            );
            let p = common::write_temp(dir.path(), &format!("{i}-{j}.py"), &file.content);
            let (code, _, err) = run(Command::new("python3").args(["-m", "py_compile"]).arg(&p));
            assert_eq!(code, 0, "{}: {err}", c.name);
        }
    }
}
