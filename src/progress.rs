//! Progress: the one event stream the library emits while it works, and the [`Progress`]
//! sink it goes to. An [`Event`] is work on an object or a phase ([`Work`]: libvirt objects,
//! the QEMU capabilities probe, uploads and downloads, build phases, nodes becoming ready), a
//! provisioning step ([`StepEvent`]), a check of `lab verify` ([`CheckEvent`]) or a note. The
//! command line renders events (bars on a terminal, plain lines in CI, JSON lines); the
//! library only says what happened.

use std::io::Read;
use std::time::{Duration, Instant};

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
    Reverted,
    ClockSet,
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

/// The smallest number of bytes between two [`Action::Moved`] events of a [`Counting`]
/// reader (and at most 200 events per transfer).
pub const MIN_STEP: u64 = 1 << 20;

/// A reader that reports the bytes read through it as [`Action::Moved`] events of
/// `kind name`: one at the first read, then one per 0.5% of `total` (at least
/// [`MIN_STEP`] bytes apart), and one when the last byte is read or the reader ends.
pub struct Counting<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
    kind: &'static str,
    name: String,
    total: u64,
    done: u64,
    /// `done` at the last event, `None` before the first.
    reported: Option<u64>,
    start: Instant,
}

impl<'a, R: Read> Counting<'a, R> {
    /// Counts `inner`, which holds `total` bytes.
    pub fn new(
        inner: R,
        total: u64,
        kind: &'static str,
        name: &str,
        progress: &'a dyn Progress,
    ) -> Self {
        Counting {
            inner,
            progress,
            kind,
            name: name.to_string(),
            total,
            done: 0,
            reported: None,
            start: Instant::now(),
        }
    }

    /// Bytes read so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    fn report(&mut self, end: bool) {
        let step = (self.total / 200).max(MIN_STEP);
        let due = match self.reported {
            None => true,
            Some(last) => self.done != last && (end || self.done >= last + step),
        };
        if !due {
            return;
        }
        self.reported = Some(self.done);
        let moved = Action::Moved {
            done: self.done,
            total: Some(self.total),
        };
        let work = Work::since(self.kind, &self.name, moved, self.start);
        self.progress.event(work.into());
    }
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.report(n == 0 || self.done >= self.total);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Events(Mutex<Vec<Event>>);

    impl Progress for Events {
        fn event(&self, e: Event) {
            self.0.lock().unwrap().push(e);
        }
    }

    impl Events {
        fn moved(&self) -> Vec<(u64, Option<u64>)> {
            let events = self.0.lock().unwrap();
            events
                .iter()
                .map(|e| match e {
                    Event::Work(Work {
                        action: Action::Moved { done, total },
                        ..
                    }) => (*done, *total),
                    other => panic!("not a byte count: {other:?}"),
                })
                .collect()
        }
    }

    #[test]
    fn counting_reader_passes_every_byte_and_reports_start_steps_and_end() {
        let data: Vec<u8> = (0..5 * MIN_STEP + 123).map(|i| i as u8).collect();
        let events = Events::default();
        let mut reader = Counting::new(data.as_slice(), data.len() as u64, "volume", "v", &events);
        let mut out = Vec::new();
        // Small reads: the reader must not report each one.
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, data, "the bytes pass unchanged");
        assert_eq!(reader.done(), data.len() as u64);
        let moved = events.moved();
        let total = Some(data.len() as u64);
        assert_eq!(moved.first(), Some(&(64 << 10, total)));
        assert_eq!(moved.last(), Some(&(data.len() as u64, total)));
        assert_eq!(
            moved.len(),
            6,
            "first read, one per MiB, the end: {moved:?}"
        );
        assert!(
            moved.windows(2).all(|w| w[1].0 > w[0].0),
            "each event reports more: {moved:?}"
        );
        let first = events.0.lock().unwrap()[0].clone();
        let Event::Work(e) = first else {
            panic!("not work: {first:?}")
        };
        assert_eq!((e.kind, e.name.as_str()), ("volume", "v"));
    }

    #[test]
    fn counting_reader_steps_by_half_a_percent_of_a_large_total() {
        let total = 1000 * MIN_STEP;
        let events = Events::default();
        let mut reader = Counting::new(std::io::repeat(0).take(total), total, "k", "n", &events);
        std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
        let moved = events.moved();
        assert!(
            (200..=202).contains(&moved.len()),
            "about 200 events: {}",
            moved.len()
        );
        assert_eq!(moved.last().unwrap().0, total);
    }

    #[test]
    fn a_short_reader_reports_where_it_ended() {
        let events = Events::default();
        let mut reader = Counting::new(&b"abc"[..], 10, "k", "n", &events);
        std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
        assert_eq!(events.moved(), [(3, Some(10))]);
    }

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
