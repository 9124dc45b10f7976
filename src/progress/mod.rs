//! Progress: the one event stream the library emits while it works, and the [`Progress`]
//! sink it goes to. An [`Event`] is work on an object or a phase ([`Work`]: libvirt objects,
//! the QEMU capabilities probe, uploads and downloads, build phases, nodes becoming ready), a
//! provisioning step ([`StepEvent`]), a check of `lab verify` ([`CheckEvent`]) or a note. The
//! command line renders events (bars on a terminal, plain lines in CI, JSON lines); the
//! library only says what happened.

use std::time::{Duration, Instant};

mod counting;

pub use counting::{Counting, MIN_STEP};

/// One thing the library reports while it works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Work on an object or a phase: created, started, bytes moved, done...
    Work(Work),
    /// A provisioning step on a node started or ended.
    Step(StepEvent),
    /// A check of `lab verify` started or ended.
    Check(CheckEvent),
    /// A line of text for the user (a resumed download).
    Note(String),
}

impl From<Work> for Event {
    fn from(w: Work) -> Event {
        Event::Work(w)
    }
}

impl From<StepEvent> for Event {
    fn from(s: StepEvent) -> Event {
        Event::Step(s)
    }
}

impl From<CheckEvent> for Event {
    fn from(c: CheckEvent) -> Event {
        Event::Check(c)
    }
}

/// Events as JSON objects: work flat (`{"kind":"volume","name":..,"action":..}`), the others
/// tagged `"kind":"step"`, `"check"` or `"note"`.
impl serde::Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        enum Tagged<'a> {
            Step(&'a StepEvent),
            Check(&'a CheckEvent),
            Note { text: &'a str },
        }
        match self {
            Event::Work(w) => w.serialize(s),
            Event::Step(e) => Tagged::Step(e).serialize(s),
            Event::Check(e) => Tagged::Check(e).serialize(s),
            Event::Note(text) => Tagged::Note { text }.serialize(s),
        }
    }
}

/// What happened to one object or piece of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Created,
    Started,
    Unchanged,
    Removed,
    Paused,
    Resumed,
    Saved,
    /// A domain started from its managed save (`lab start`).
    Restored,
    /// A guest powered itself off when asked (`lab stop --shutdown`).
    ShutDown,
    /// A domain powered off by force (its guest did not shut down in time).
    PoweredOff,
    Reverted,
    ClockSet,
    /// A volume made on the hypervisor host as a copy of another one (no byte crossed the
    /// connection).
    Copied,
    /// A node answers SSH with cloud-init finished.
    Ready,
    Deleted,
    RolledBack,
    /// Work began that may take a while; a live display shows it with its elapsed time
    /// until an event with another action ends it.
    Running,
    /// Bytes moved so far (`total` when known); more events follow until an event with
    /// another action ends it.
    Moved {
        done: u64,
        total: Option<u64>,
    },
    /// A phase or a probe finished.
    Done,
    /// A phase or a probe failed (its error is reported where it is handled).
    Failed,
}

impl Action {
    /// Whether the event ends its work (a live display stops showing it).
    pub fn is_final(self) -> bool {
        !matches!(self, Action::Running | Action::Moved { .. })
    }
}

/// Work on one object: `network lab-ocata-internal created 0.1s`. Events of one piece of
/// work share `kind` and `name`: zero or more [`Action::Running`] and [`Action::Moved`],
/// then one final action.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Work {
    pub kind: &'static str,
    pub name: String,
    #[serde(flatten)]
    pub action: Action,
    /// Time since the work began.
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

impl Work {
    /// The start of `kind name`.
    pub fn running(kind: &'static str, name: &str) -> Work {
        Work::now(kind, name, Action::Running)
    }

    /// `action` on `kind name`, found or done at once (no elapsed time).
    pub fn now(kind: &'static str, name: &str, action: Action) -> Work {
        Work::since(kind, name, action, Instant::now())
    }

    /// `action` on `kind name`, whose work began at `start`.
    pub fn since(kind: &'static str, name: &str, action: Action, start: Instant) -> Work {
        Work {
            kind,
            name: name.to_string(),
            action,
            elapsed: start.elapsed(),
        }
    }
}

/// How a provisioning step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Started (for live displays).
    Running,
    /// The check passed: nothing to do.
    Ok,
    /// Applied, and the check passes now.
    Changed,
    Failed,
}

/// A provisioning step of a node: `controller sql changed 3.1s`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepEvent {
    pub node: String,
    pub step: &'static str,
    pub outcome: Outcome,
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
}

/// Where a check of `lab verify` stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Started (for live displays).
    Running,
    Pass,
    Fail,
}

/// A check of `lab verify` on the node it runs on: `compute1 sql-bind pass 0.1s`. The
/// check's full result (what it proves, what it measured) is the command's output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckEvent {
    pub node: String,
    pub check: &'static str,
    pub verdict: Verdict,
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
}

/// Where progress goes (a terminal, plain CI lines, JSON lines, or a test's vector).
pub trait Progress: Sync {
    fn event(&self, event: Event);
}

/// Progress that goes nowhere.
pub struct Quiet;

impl Progress for Quiet {
    fn event(&self, _: Event) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_running_and_moved_leave_work_open() {
        assert!(!Action::Running.is_final());
        assert!(
            !Action::Moved {
                done: 1,
                total: None
            }
            .is_final()
        );
        assert!(Action::Done.is_final() && Action::Created.is_final());
    }

    #[test]
    fn events_serialize_flat_with_seconds() {
        let w = Work {
            kind: "volume",
            name: "image-debian12.qcow2".into(),
            action: Action::Moved {
                done: 5,
                total: Some(10),
            },
            elapsed: Duration::from_millis(2570),
        };
        let json = |e: Event| serde_json::to_string(&e).unwrap();
        assert_eq!(
            json(w.clone().into()),
            r#"{"kind":"volume","name":"image-debian12.qcow2","action":"moved","done":5,"total":10,"elapsed":2.57}"#
        );
        let w = Work {
            action: Action::RolledBack,
            ..w
        };
        assert_eq!(
            json(w.into()),
            r#"{"kind":"volume","name":"image-debian12.qcow2","action":"rolled_back","elapsed":2.57}"#
        );
    }

    #[test]
    fn steps_checks_and_notes_serialize_tagged_by_kind() {
        let json = |e: Event| serde_json::to_string(&e).unwrap();
        let step = StepEvent {
            node: "controller".into(),
            step: "sql",
            outcome: Outcome::Changed,
            elapsed: Duration::from_millis(3100),
        };
        assert_eq!(
            json(step.into()),
            r#"{"kind":"step","node":"controller","step":"sql","outcome":"changed","elapsed":3.1}"#
        );
        let check = CheckEvent {
            node: "compute1".into(),
            check: "sql-bind",
            verdict: Verdict::Fail,
            elapsed: Duration::from_millis(120),
        };
        assert_eq!(
            json(check.into()),
            r#"{"kind":"check","node":"compute1","check":"sql-bind","verdict":"fail","elapsed":0.12}"#
        );
        assert_eq!(
            json(Event::Note("x: resuming".into())),
            r#"{"kind":"note","text":"x: resuming"}"#
        );
    }
}
