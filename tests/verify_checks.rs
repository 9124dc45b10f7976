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

/// Runs `lab reset`'s clock resync script with stub `chronyc`, `systemctl` and `date` first on
/// PATH; each logs its arguments. `chrony` says how the stub chronyc behaves. Returns the exit
/// status, stdout and the logged calls.
fn resync(
    set_time: Option<std::time::SystemTime>,
    follow: bool,
    chrony: &str,
) -> (i32, String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls");
    let stub = |name: &str, body: &str| {
        let p = common::write_temp(
            dir.path(),
            name,
            &format!("#!/bin/bash\necho \"{name} $*\" >> \"$CALLS\"\n{body}\n"),
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    stub(
        "chronyc",
        r#"case "$CHRONY:$*" in
  stopped:*) echo '506 Cannot talk to daemon' >&2; exit 1 ;;
  *:'-n tracking') echo 'Reference ID    : 0A00000B (10.0.0.11)'; echo 'Stratum         : 11'; echo 'Leap status     : Normal' ;;
  v3:'-a reset sources') echo 'Unrecognized command' >&2; exit 1 ;;
  nosync:waitsync*) echo 'try: 60, refid: 00000000'; exit 1 ;;
  *:'-n sources') echo '^? 10.0.0.11   0   6   0   -   +0ns[   +0ns] +/-    0ns' ;;
esac"#,
    );
    stub("systemctl", "");
    stub("date", "");
    let script = lab::provision::verify::clock_resync(set_time, follow);
    let path = format!("{}:/usr/bin:/bin", dir.path().display());
    let (code, out, err) = run(Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("PATH", path)
        .env("CALLS", &log)
        .env("CHRONY", chrony));
    assert!(err.is_empty() || code != 0, "{err}");
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    (code, out, calls.lines().map(String::from).collect())
}

#[test]
fn clock_resync_drops_chronys_samples_and_waits_for_its_source_on_a_follower() {
    let (code, out, calls) = resync(None, true, "v4");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        calls,
        [
            "chronyc -n tracking",
            "chronyc -a reset sources",
            "chronyc -a burst 4/4",
            "chronyc waitsync 60 0 0 1",
            "chronyc -a makestep",
            "chronyc -n tracking",
        ],
        "the clock stays as the guest agent set it, chronyd keeps running"
    );
    assert!(
        out.contains("Reference ID    : 0A00000B (10.0.0.11)"),
        "{out}"
    );
}

#[test]
fn clock_resync_restarts_a_chrony_without_reset_sources_and_sets_the_clock_when_asked() {
    let now = std::time::UNIX_EPOCH + std::time::Duration::new(1_795_769_509, 42);
    let (code, out, calls) = resync(Some(now), false, "v3");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        calls,
        [
            "date -u -s @1795769509.000000042",
            "chronyc -n tracking",
            "chronyc -a reset sources",
            "systemctl restart chronyd.service",
        ],
        "the controller does not wait for its (maybe unreachable) upstream"
    );
}

#[test]
fn clock_resync_leaves_a_stopped_chrony_alone_and_fails_when_no_source_follows() {
    let (code, _, calls) = resync(None, true, "stopped");
    assert_eq!(code, 0);
    assert_eq!(calls, ["chronyc -n tracking"]);
    let (code, out, calls) = resync(None, true, "nosync");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("chrony follows no source 60 s after the reset"),
        "{out}"
    );
    assert!(out.contains("^? 10.0.0.11"), "the sources are shown: {out}");
    assert_eq!(calls.last().unwrap(), "chronyc -n sources");
}

#[test]
fn clock_resync_is_valid_bash() {
    require_tool("shellcheck", "shellcheck");
    let dir = tempfile::tempdir().unwrap();
    let f = common::write_temp(
        dir.path(),
        "resync.sh",
        &format!(
            "#!/bin/bash\n{}",
            lab::provision::verify::clock_resync(None, true)
        ),
    );
    let (code, out, _) = run(Command::new("shellcheck").args(["-S", "warning"]).arg(&f));
    assert_eq!(code, 0, "{out}");
}
