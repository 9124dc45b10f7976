//! The line formats of progress, as pure functions: plain lines (without their time stamp),
//! JSON lines, the UTC stamp, and when a transfer's plain line is due.

use std::time::{Duration, Instant, SystemTime};

use crate::progress::{Action, CheckEvent, Event, Outcome, StepEvent, Verdict, Work};

/// The word of an action in lines.
pub fn action_word(a: Action) -> &'static str {
    match a {
        Action::Created => "created",
        Action::Started => "started",
        Action::Unchanged => "ok",
        Action::Removed => "removed",
        Action::Paused => "paused",
        Action::Resumed => "resumed",
        Action::Saved => "saved",
        Action::Restored => "restored",
        Action::ShutDown => "shut down",
        Action::PoweredOff => "powered off",
        Action::Reverted => "reverted",
        Action::ClockSet => "set",
        Action::Copied => "copied",
        Action::Ready => "ready",
        Action::Deleted => "deleted",
        Action::RolledBack => "rolled back",
        Action::Running => "...",
        Action::Moved { .. } => "moved",
        Action::Done => "done",
        Action::Failed => "FAILED",
    }
}

/// The plain line of an event (without the time stamp):
/// `domain   lab-ocata-controller             created    0.12s`, `... ` for work that
/// starts, `12% (1.0 MiB of 8.0 MiB)` for bytes moved.
pub fn line(e: &Work) -> String {
    let head = format!("{:<8} {:<32}", e.kind, e.name);
    match e.action {
        Action::Running => format!("{head} ..."),
        Action::Moved { done, total } => match total.filter(|t| *t > 0) {
            Some(t) => format!("{head} {}% ({} of {})", done * 100 / t, mib(done), mib(t)),
            None => format!("{head} {}", mib(done)),
        },
        a => {
            let secs = e.elapsed.as_secs_f64();
            format!("{head} {:<10} {secs:.2}s", action_word(a))
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// The plain line of a finished step (`controller   sql   changed  3.1s`); `None` for a start.
pub fn step_line(e: &StepEvent) -> Option<String> {
    let word = match e.outcome {
        Outcome::Running => return None,
        Outcome::Ok => "ok",
        Outcome::Changed => "changed",
        Outcome::Failed => "FAILED",
    };
    let secs = e.elapsed.as_secs_f64();
    Some(format!(
        "{:<12} {:<20} {word:<8} {secs:.1}s",
        e.node, e.step
    ))
}

/// The plain line of a finished check (`compute1     sql-bind             pass     0.1s`);
/// `None` for a start.
pub fn check_line(e: &CheckEvent) -> Option<String> {
    let word = match e.verdict {
        Verdict::Running => return None,
        Verdict::Pass => "pass",
        Verdict::Fail => "FAIL",
    };
    let secs = e.elapsed.as_secs_f64();
    Some(format!(
        "{:<12} {:<20} {word:<8} {secs:.1}s",
        e.node, e.check
    ))
}

/// The line of a note, live or plain (without the time stamp): `note: TEXT`.
pub fn note_line(text: &str) -> String {
    format!("note: {text}")
}

/// An event as one JSON line: work as `{"kind":..,"name":..,"action":..,"elapsed":..}`,
/// steps, checks and notes with `"kind":"step"`, `"check"`, `"note"`.
pub fn json_line(e: &Event) -> String {
    serde_json::to_string(e).expect("events serialize")
}

/// A command's final report as one JSON line: `{"kind":"result","command":COMMAND,...}`,
/// then the fields of `fields` (an object).
pub fn result_line(command: &str, fields: &serde_json::Value) -> String {
    #[derive(serde::Serialize)]
    struct Result<'a> {
        kind: &'static str,
        command: &'a str,
        #[serde(flatten)]
        fields: &'a serde_json::Value,
    }
    let kind = "result";
    serde_json::to_string(&Result {
        kind,
        command,
        fields,
    })
    .expect("a result serializes")
}

/// A command's error as one JSON line: `{"kind":"error","message":..,"exit":N}`, with the
/// hint when there is one.
pub fn error_line(message: &str, exit: u8, hint: Option<&str>) -> String {
    let mut v = serde_json::json!({ "kind": "error", "message": message, "exit": exit });
    if let Some(hint) = hint {
        v["hint"] = hint.into();
    }
    v.to_string()
}

/// `HH:MM:SS` (UTC) of `t`.
pub fn stamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// When a plain line of a transfer is due: the first, then at most one per 5% or per 5 s,
/// and the last.
#[derive(Debug, Default)]
pub struct Throttle {
    last: Option<(u64, Instant)>,
}

impl Throttle {
    /// Whether `done` of `total` bytes at `now` deserves a line (and if so, remembers it).
    pub fn due(&mut self, done: u64, total: Option<u64>, now: Instant) -> bool {
        let pct = |d: u64| total.filter(|t| *t > 0).map(|t| d * 100 / t);
        let due = match self.last {
            None => true,
            Some((last, at)) => {
                let step = matches!((pct(done), pct(last)), (Some(p), Some(q)) if p >= q + 5);
                let finished = total == Some(done) && last != done;
                step || finished || now.duration_since(at) >= Duration::from_secs(5)
            }
        };
        if due {
            self.last = Some((done, now));
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &'static str, name: &str, action: Action) -> Work {
        Work {
            kind,
            name: name.into(),
            action,
            elapsed: Duration::from_millis(2570),
        }
    }

    /// 12:34:56 UTC on some day.
    fn noon() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(20_000 * 86_400 + 12 * 3600 + 34 * 60 + 56)
    }

    #[test]
    fn lines_of_finished_work_starts_and_bytes() {
        assert_eq!(
            line(&ev("domain", "lab-ocata-controller", Action::Created)),
            "domain   lab-ocata-controller             created    2.57s"
        );
        assert_eq!(
            line(&ev("probe", "qemu capabilities", Action::Running)),
            "probe    qemu capabilities                ..."
        );
        let moved = |done, total| Action::Moved { done, total };
        assert_eq!(
            line(&ev(
                "volume",
                "image-debian12.qcow2",
                moved(1 << 20, Some(8 << 20))
            )),
            "volume   image-debian12.qcow2             12% (1.0 MiB of 8.0 MiB)"
        );
        assert_eq!(
            line(&ev("download", "centos7", moved(3 << 19, None))),
            "download centos7                          1.5 MiB"
        );
        assert_eq!(
            line(&ev("volume", "v", Action::RolledBack)),
            "volume   v                                rolled back 2.57s"
        );
        assert_eq!(stamp(noon()), "12:34:56");
    }

    #[test]
    fn results_and_errors_are_one_json_line_tagged_by_kind() {
        let fields = serde_json::json!({"lab": "ocata", "state": "up", "steps": []});
        let line = result_line("up", &fields);
        assert!(!line.contains('\n'));
        assert_eq!(
            line,
            r#"{"kind":"result","command":"up","lab":"ocata","state":"up","steps":[]}"#
        );
        assert_eq!(
            error_line("lab x is not up", 3, None),
            r#"{"exit":3,"kind":"error","message":"lab x is not up"}"#
        );
        let v: serde_json::Value =
            serde_json::from_str(&error_line("ssh failed", 4, Some("the nodes stay up"))).unwrap();
        assert_eq!(
            (v["exit"].as_u64(), v["hint"].as_str()),
            (Some(4), Some("the nodes stay up"))
        );
    }

    #[test]
    fn throttle_prints_at_most_every_five_percent_or_five_seconds() {
        let t0 = Instant::now();
        let total = Some(100);
        let mut t = Throttle::default();
        let due: Vec<u64> = (0..=100).filter(|&d| t.due(d, total, t0)).collect();
        assert_eq!(due, (0..=100).step_by(5).collect::<Vec<_>>());
        assert!(!t.due(100, total, t0 + Duration::from_secs(1)), "no repeat");

        let mut t = Throttle::default();
        assert!(t.due(1, None, t0));
        assert!(!t.due(2, None, t0 + Duration::from_secs(4)));
        assert!(t.due(3, None, t0 + Duration::from_secs(5)));
    }

    #[test]
    fn lines_of_finished_steps_and_checks_only() {
        let step = |outcome| StepEvent {
            node: "controller".into(),
            step: "sql",
            outcome,
            elapsed: Duration::from_millis(3100),
        };
        assert_eq!(step_line(&step(Outcome::Running)), None);
        assert_eq!(
            step_line(&step(Outcome::Changed)).unwrap(),
            "controller   sql                  changed  3.1s"
        );
        let check = |verdict| CheckEvent {
            node: "compute1".into(),
            check: "sql-bind",
            verdict,
            elapsed: Duration::from_millis(120),
        };
        assert_eq!(check_line(&check(Verdict::Running)), None);
        assert_eq!(
            check_line(&check(Verdict::Fail)).unwrap(),
            "compute1     sql-bind             FAIL     0.1s"
        );
    }
}
