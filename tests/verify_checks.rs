//! The checks of `lab verify`: golden probes, valid bash (bash -n, shellcheck), network
//! probes spoken by `lab` itself (no program on the guest), and the secrets they need.

mod common;

use std::process::Command;

use common::{require_tool, run};
use lab::model::{NetKind, Role};
use lab::provision::verify::{Password, Probe, checks};

fn rendered(lab: &str) -> String {
    let lab = common::lab(lab);
    checks(&lab)
        .iter()
        .map(|c| {
            format!(
                "# == {} of step {} on {:?}: {} (settle {}s)\n# hint: {}\n{}\n",
                c.name,
                c.step,
                c.on,
                c.proves,
                c.settle.as_secs(),
                c.hint,
                c.probe
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
    for c in &all {
        let spoken = !matches!(c.probe, Probe::Script(_) | Probe::Facts { .. });
        assert!(
            !spoken || c.on == Role::Compute,
            "{}: a network check runs from the compute node",
            c.name
        );
    }
    let names: Vec<&str> = all.iter().map(|c| c.name).collect();
    for n in [
        "sql-remote",
        "sql-not-external",
        "amqp-login",
        "amqp-wrong-password",
        "memcached",
        "chrony",
        "client-compute",
    ] {
        assert!(names.contains(&n), "{n}");
    }
    let amqp = |name| {
        let c = all.iter().find(|c| c.name == name).unwrap();
        match &c.probe {
            Probe::Amqp(a) => (a.host.clone(), a.user, a.password.clone(), a.accepted),
            other => panic!("{name}: {other:?}"),
        }
    };
    assert_eq!(
        amqp("amqp-login"),
        (
            "controller".into(),
            "openstack",
            Password::Secret("RABBIT_PASS"),
            true
        )
    );
    let (_, _, wrong, accepted) = amqp("amqp-wrong-password");
    assert!(!accepted);
    let Password::Wrong(wrong) = wrong else {
        panic!("{wrong:?}")
    };
    let bind = all.iter().find(|c| c.name == "sql-not-external").unwrap();
    assert_eq!(
        bind.probe,
        Probe::Closed {
            host: lab
                .nic_of(lab.controller(), NetKind::Nat)
                .address
                .to_string(),
            port: 3306,
            open: 22,
        }
    );
    let secrets = lab::secrets::LabSecrets::from_seed(&lab, &common::SEED);
    for c in &all {
        for value in secrets.passwords.values() {
            assert!(
                !c.probe.to_string().contains(value.as_str()),
                "{} holds a secret",
                c.name
            );
            assert_ne!(wrong, value, "the wrong password is wrong");
        }
    }
}

#[test]
fn every_script_check_is_valid_bash() {
    require_tool("shellcheck", "shellcheck");
    let dir = tempfile::tempdir().unwrap();
    let mut all = checks(&common::lab("openstack-ocata"));
    all.extend(checks(&common::lab("openstack-debian12")));
    let scripts: Vec<_> = all
        .iter()
        .filter_map(|c| match &c.probe {
            Probe::Script(s) | Probe::Facts { script: s, .. } => Some((c.name, s)),
            _ => None,
        })
        .collect();
    assert!(scripts.len() > 20, "{}", scripts.len());
    for (i, (name, script)) in scripts.iter().enumerate() {
        let f = common::write_temp(
            dir.path(),
            &format!("{i}.sh"),
            &format!("#!/bin/bash\nset -euo pipefail\n{script}\n"),
        );
        let (code, _, err) = run(Command::new("bash").arg("-n").arg(&f));
        assert_eq!(code, 0, "{name}: {err}");
        let (code, out, _) = run(Command::new("shellcheck").args(["-S", "warning"]).arg(&f));
        assert_eq!(code, 0, "{name}: {out}");
    }
}

/// Runs `lab reset`'s clock resync script with stub `chronyc`, `systemctl` and `date` first on
/// PATH; each logs its arguments. `chrony` says how the stub chronyc behaves. Returns the exit
/// status, stdout and the logged calls.
fn resync(follow: Option<&str>, chrony: &str) -> (i32, String, Vec<String>) {
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
    let script = lab::clock::clock_resync(follow.map(|ip| ip.parse().unwrap()));
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
    let (code, out, calls) = resync(Some("10.0.0.11"), "v4");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        calls,
        [
            "chronyc -n tracking",
            "chronyc -a reset sources",
            "chronyc -a burst 4/4",
            "chronyc -n sources",
            "chronyc waitsync 600 0 0 0.1",
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
fn clock_resync_restarts_a_chrony_without_reset_sources_and_leaves_the_clock_alone() {
    let (code, out, calls) = resync(None, "v3");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        calls,
        [
            "chronyc -n tracking",
            "chronyc -a reset sources",
            "systemctl restart chronyd.service",
        ],
        "the controller does not wait for its (maybe unreachable) upstream"
    );
}

#[test]
fn clock_resync_leaves_a_stopped_chrony_alone_and_fails_when_no_source_follows() {
    let (code, _, calls) = resync(Some("10.0.0.11"), "stopped");
    assert_eq!(code, 0);
    assert_eq!(calls, ["chronyc -n tracking"]);
    let (code, out, calls) = resync(Some("10.0.0.11"), "nosync");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("chrony follows no source 60 s after the reset"),
        "{out}"
    );
    assert!(out.contains("^? 10.0.0.11"), "the sources are shown: {out}");
    assert_eq!(calls.last().unwrap(), "chronyc -n sources");
    // A node not provisioned yet: its chrony runs, with other sources than the controller.
    let (code, out, calls) = resync(Some("10.0.0.12"), "nosync");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        calls.last().unwrap(),
        "chronyc -n sources",
        "no wait for a source chrony does not have"
    );
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
            lab::clock::clock_resync(Some([10, 0, 0, 11].into()))
        ),
    );
    let (code, out, _) = run(Command::new("shellcheck").args(["-S", "warning"]).arg(&f));
    assert_eq!(code, 0, "{out}");
}

/// How the stub `date` of [`clock_line`] takes a `-s`.
#[derive(Clone, Copy, PartialEq)]
enum SetDate {
    /// Any date: relative seconds too.
    Works,
    /// No fractional relative seconds (older coreutils); `@SECONDS` works.
    NoRelative,
    /// Never (not root).
    Refused,
}

/// Runs the clock line's script with a stub `date` first on PATH: it prints `clock` for
/// `+%s.%N` and logs every `-s`. Returns stdout and the logged calls.
fn clock_line(requests: &str, clock: &str, set: SetDate) -> (String, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls");
    let date = common::write_temp(
        dir.path(),
        "date",
        &format!(
            "#!/bin/bash\ncase \"$1\" in\n  +%s.%N) echo {clock} ;;\n  *) echo \"date $*\" >> \"$CALLS\"; {} ;;\nesac\n",
            match set {
                SetDate::Works => "true",
                SetDate::NoRelative =>
                    "[[ \"$*\" != *seconds ]] || { echo 'date: invalid date' >&2; exit 1; }",
                SetDate::Refused =>
                    "echo 'date: cannot set date: Operation not permitted' >&2; exit 1",
            }
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&date, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", dir.path().display());
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(lab::clock::CLOCK_LINE)
        .env("PATH", path)
        .env("CALLS", &log)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(requests.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        calls.lines().map(String::from).collect(),
    )
}

#[test]
fn the_clock_line_answers_each_request_with_one_line_and_steps_relative_to_the_node() {
    let (out, calls) = clock_line(
        "read\nstep -0.25\nstep 60.000001\nwhat\n",
        "1795769509.500000000",
        SetDate::Works,
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "1795769509.500000000",
            "1795769509.500000000",
            "1795769509.500000000",
            "error: unknown request: what",
        ]
    );
    assert_eq!(
        calls,
        ["date -u -s -0.25 seconds", "date -u -s 60.000001 seconds"],
        "date itself moves the clock it reads: no fork's delay in between"
    );
    // An older date: the sum, to the microsecond.
    let (out, calls) = clock_line(
        "step -0.25\nstep 60.000001\n",
        "1795769509.500000000",
        SetDate::NoRelative,
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    assert_eq!(
        calls,
        [
            "date -u -s -0.25 seconds",
            "date -u -s @1795769509.250000",
            "date -u -s 60.000001 seconds",
            "date -u -s @1795769569.500001",
        ]
    );
}

#[test]
fn a_step_the_node_refuses_answers_an_error_line_with_its_cause() {
    let (out, _) = clock_line("step 1\nread\n", "100.000000000", SetDate::Refused);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("error: date -s @101.000000 failed: date: cannot set date"),
        "{out}"
    );
    assert_eq!(lines[1], "100.000000000", "the line goes on after an error");
}

#[test]
fn the_clock_line_is_valid_bash() {
    require_tool("shellcheck", "shellcheck");
    let dir = tempfile::tempdir().unwrap();
    let f = common::write_temp(
        dir.path(),
        "clock-line.sh",
        &format!("#!/bin/bash\n{}", lab::clock::CLOCK_LINE),
    );
    let (code, out, _) = run(Command::new("shellcheck").args(["-S", "warning"]).arg(&f));
    assert_eq!(code, 0, "{out}");
}
