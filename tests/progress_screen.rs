//! The CLI's progress renderer ([`lab::cli::output::Screen`]) as a person sees it: the test
//! runs itself again as a child whose stderr is a pseudo-terminal (live bars, redrawn in
//! place) or a pipe (plain stamped lines), feeding the screen a scripted `lab up`: the
//! QEMU probe, an image upload, provisioning steps on two nodes.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use lab::cli::output::Screen;
use lab::progress::{Action, CheckEvent, Event, Outcome, Progress, StepEvent, Verdict, Work};

/// Set in the child: render the script instead of testing.
const CHILD: &str = "LAB_TEST_SCREEN_CHILD";
const TEST: &str = "a_terminal_gets_live_bars_and_a_pipe_gets_plain_stamped_lines";

fn ev(kind: &'static str, name: &str, action: Action) -> Event {
    Event::Work(Work {
        kind,
        name: name.into(),
        action,
        elapsed: Duration::from_millis(2600),
    })
}

fn step(node: &str, step: &'static str, outcome: Outcome) -> Event {
    Event::Step(StepEvent {
        node: node.into(),
        step,
        outcome,
        elapsed: Duration::from_millis(3100),
    })
}

fn check(node: &str, check: &'static str, verdict: Verdict) -> Event {
    Event::Check(CheckEvent {
        node: node.into(),
        check,
        verdict,
        elapsed: Duration::from_millis(400),
    })
}

/// What the child shows: `lab up`'s progress, in its order.
fn script() {
    let screen = Screen::new(false);
    let p: &dyn Progress = &screen;
    let mib = 1u64 << 20;
    p.event(ev("probe", "qemu capabilities", Action::Running));
    p.event(ev("pool", "lab-ocata-deb", Action::Created));
    let moved = |done| Action::Moved {
        done,
        total: Some(8 * mib),
    };
    for done in [0, 2 * mib, 4 * mib] {
        p.event(ev("volume", "image-debian12.qcow2", moved(done)));
    }
    // The probe ends during the upload: its line goes above the upload's bar.
    p.event(ev("probe", "qemu capabilities", Action::Done));
    p.event(ev("volume", "image-debian12.qcow2", moved(8 * mib)));
    p.event(ev("volume", "image-debian12.qcow2", Action::Created));
    p.event(step("controller", "chrony", Outcome::Running));
    p.event(step("compute1", "chrony", Outcome::Running));
    p.event(step("controller", "chrony", Outcome::Changed));
    p.event(step("controller", "sql", Outcome::Running));
    p.event(step("compute1", "chrony", Outcome::Ok));
    p.event(step("controller", "sql", Outcome::Changed));
    p.event(Event::Note("debian12: resuming after 2.0 MiB".into()));
    p.event(check("compute1", "amqp-login", Verdict::Running));
    std::thread::sleep(Duration::from_millis(300)); // a redraw shows the running check
    p.event(check("compute1", "amqp-login", Verdict::Pass));
}

/// Runs this test again as the child, its stderr on `stderr`; returns what it wrote there
/// as read by `read`.
fn child(stderr: Stdio, term: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", TEST, "--test-threads=1"])
        .env(CHILD, "1")
        .env("TERM", term)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    cmd
}

/// The child's stderr on a new pseudo-terminal of 100 columns.
fn on_a_terminal() -> String {
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize {
        ws_row: 30,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two new descriptors into the integers it is given.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are new and owned here only.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut cmd = child(Stdio::from(slave), "xterm-256color");
    let mut proc = cmd.spawn().unwrap();
    drop(cmd); // our copy of the slave: reads end (EIO) when the child has exited
    let mut out = Vec::new();
    let mut master = std::fs::File::from(master);
    let mut buf = [0u8; 4096];
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert!(proc.wait().unwrap().success());
    String::from_utf8_lossy(&out).into_owned()
}

fn on_a_pipe() -> String {
    let out = child(Stdio::piped(), "xterm-256color").output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn a_terminal_gets_live_bars_and_a_pipe_gets_plain_stamped_lines() {
    if std::env::var_os(CHILD).is_some() {
        script();
        return;
    }

    let tty = on_a_terminal();
    assert!(
        tty.contains("\x1b[") && tty.contains('\r'),
        "redrawn in place: {tty:?}"
    );
    assert!(tty.contains("/8.00 MiB"), "a bar of bytes: {tty:?}");
    assert!(
        tty.contains("probe    qemu capabilities                0s"),
        "a spinner with its elapsed time: {tty:?}"
    );
    for finished in [
        "pool     lab-ocata-deb                    created    2.60s",
        "volume   image-debian12.qcow2             created    2.60s",
        "probe    qemu capabilities                done       2.60s",
        "controller   chrony               changed  3.1s",
        "compute1     chrony               ok       3.1s",
        "controller   sql                  changed  3.1s",
        "note: debian12: resuming after 2.0 MiB",
    ] {
        assert!(tty.contains(finished), "{finished}: {tty:?}");
    }
    assert!(
        tty.contains("compute1     amqp-login"),
        "a running check on its node's line: {tty:?}"
    );
    assert!(
        !tty.contains("pass"),
        "a finished check leaves no line (the report follows on stdout): {tty:?}"
    );

    let plain = on_a_pipe();
    assert!(
        !plain.contains('\x1b') && !plain.contains('\r'),
        "no escape codes on a pipe: {plain:?}"
    );
    let lines: Vec<&str> = plain.lines().collect();
    let stamped = |l: &&str| {
        let b = l.as_bytes();
        b.len() > 9
            && b[..8].iter().enumerate().all(|(i, c)| {
                if i % 3 == 2 {
                    *c == b':'
                } else {
                    c.is_ascii_digit()
                }
            })
            && b[8] == b' '
    };
    assert!(lines.iter().all(stamped), "{plain}");
    let bodies: Vec<&str> = lines.iter().map(|l| &l[9..]).collect();
    assert_eq!(
        bodies,
        [
            "probe    qemu capabilities                ...",
            "pool     lab-ocata-deb                    created    2.60s",
            "volume   image-debian12.qcow2             0% (0.0 MiB of 8.0 MiB)",
            "volume   image-debian12.qcow2             25% (2.0 MiB of 8.0 MiB)",
            "volume   image-debian12.qcow2             50% (4.0 MiB of 8.0 MiB)",
            "probe    qemu capabilities                done       2.60s",
            "volume   image-debian12.qcow2             100% (8.0 MiB of 8.0 MiB)",
            "volume   image-debian12.qcow2             created    2.60s",
            "controller   chrony               changed  3.1s",
            "compute1     chrony               ok       3.1s",
            "controller   sql                  changed  3.1s",
            "note: debian12: resuming after 2.0 MiB",
            "compute1     amqp-login           pass     0.4s",
        ]
    );
}
