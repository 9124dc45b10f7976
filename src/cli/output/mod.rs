//! How the CLI shows progress. [`Screen`] renders the library's one event stream
//! ([`crate::progress::Event`]: work on objects, provisioning steps, checks, notes) in one of
//! three ways:
//! - on a terminal, live (`live.rs`): a bar per transfer, a spinner with its elapsed time per
//!   piece of work running, one line per node with its running step or check; finished work
//!   is printed as a line above them (indicatif);
//! - elsewhere (CI, pipes), plain lines stamped with the UTC time: one per finished object,
//!   step or check, one when long work starts (`...`), byte counts every 5% or 5 s;
//! - with `--json`, one JSON object per line.
//!
//! Notes read `note: ...` live and plain, `{"kind":"note","text":..}` in JSON.
//!
//! What a command prints on stdout goes through here too: with `--json`, stdout holds one
//! JSON document: a changing command's final report as `{"kind":"result","command":..,..}`
//! ([`result`]), a reading command's report ([`print_json`]), or, when the command failed
//! before printing one, `{"kind":"error","message":..,"exit":N}` ([`error_json`]).
//!
//! The line formats are pure functions (`lines.rs`: [`line()`], [`step_line`], [`check_line`],
//! [`note_line`], [`json_line`], [`result_line`], [`error_line`]).

mod lines;
mod live;

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};

use crate::progress::{Action, Event, Progress, Work};
pub use lines::{
    Throttle, action_word, check_line, error_line, json_line, line, note_line, result_line, stamp,
    step_line,
};
use live::key;

/// How a [`Screen`] draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bars and spinners redrawn in place (a terminal).
    Live,
    /// Timestamped plain lines (CI, pipes).
    Plain,
    /// One JSON object per line.
    Json,
}

impl Mode {
    /// JSON when asked; else live when stderr is a terminal that draws (TERM not dumb);
    /// else plain.
    pub fn detect(json: bool) -> Mode {
        use std::io::IsTerminal;
        let term = std::env::var_os("TERM").is_some_and(|t| !t.is_empty() && t != "dumb");
        if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() && term {
            Mode::Live
        } else {
            Mode::Plain
        }
    }
}

/// The progress renderer of one command: a [`Progress`] sink writing to stderr. Dropping it
/// clears what is still drawn.
pub struct Screen {
    mode: Mode,
    state: Mutex<State>,
}

pub(super) struct State {
    /// Live mode only.
    multi: Option<MultiProgress>,
    /// Live work, by [`key`].
    bars: HashMap<String, ProgressBar>,
    /// Plain mode: when each transfer was last printed.
    throttles: HashMap<String, Throttle>,
    out: Box<dyn Write + Send>,
    clock: fn() -> SystemTime,
}

impl Screen {
    /// A screen in the mode [`Mode::detect`] finds, JSON lines when `json`.
    pub fn new(json: bool) -> Screen {
        Screen::with(
            Mode::detect(json),
            Box::new(std::io::stderr()),
            SystemTime::now,
        )
    }

    /// A screen of `mode` writing plain and JSON lines to `out`, stamped by `clock` (live
    /// mode always draws on stderr).
    pub fn with(mode: Mode, out: Box<dyn Write + Send>, clock: fn() -> SystemTime) -> Screen {
        let multi = (mode == Mode::Live)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
        Screen {
            mode,
            state: Mutex::new(State {
                multi,
                bars: HashMap::new(),
                throttles: HashMap::new(),
                out,
                clock,
            }),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    fn stamped(&mut self, text: &str) {
        let line = format!("{} {text}", stamp((self.clock)()));
        self.write_line(&line);
    }

    fn write_line(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }

    fn live(&mut self, e: &Event) {
        match e {
            Event::Work(w) => self.live_work(w),
            Event::Step(s) => self.live_step(s),
            Event::Check(c) => self.live_check(c),
            Event::Note(text) => self.print(&note_line(text)),
        }
    }

    fn plain(&mut self, e: &Event) {
        let text = match e {
            Event::Work(w) => self.plain_work(w),
            Event::Step(s) => step_line(s),
            Event::Check(c) => check_line(c),
            Event::Note(text) => Some(note_line(text)),
        };
        if let Some(text) = text {
            self.stamped(&text);
        }
    }

    /// The line of `e`, unless it is a transfer's whose line is not due yet.
    fn plain_work(&mut self, e: &Work) -> Option<String> {
        if let Action::Moved { done, total } = e.action {
            let key = key(e.kind, &e.name);
            let throttle = self.throttles.entry(key).or_default();
            if !throttle.due(done, total, Instant::now()) {
                return None;
            }
        } else if e.action.is_final() {
            self.throttles.remove(&key(e.kind, &e.name));
        }
        Some(line(e))
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let mut st = self.lock();
        let keys: Vec<String> = st.bars.keys().cloned().collect();
        for k in keys {
            st.end(&k);
        }
        if let Some(multi) = &st.multi {
            let _ = multi.clear();
        }
    }
}

impl Progress for Screen {
    fn event(&self, e: Event) {
        let mut st = self.lock();
        match self.mode {
            Mode::Live => st.live(&e),
            Mode::Plain => st.plain(&e),
            Mode::Json => st.write_line(&json_line(&e)),
        }
    }
}

/// Whether this process printed its JSON document on stdout.
static JSON_PRINTED: AtomicBool = AtomicBool::new(false);

/// Prints `value` on stdout as the command's JSON document (indented when `pretty`).
pub fn print_json(value: &impl serde::Serialize, pretty: bool) -> serde_json::Result<()> {
    let text = if pretty {
        serde_json::to_string_pretty(value)?
    } else {
        serde_json::to_string(value)?
    };
    println!("{text}");
    JSON_PRINTED.store(true, Ordering::SeqCst);
    Ok(())
}

/// A changing command's final report: with `json`, one line on stdout,
/// `{"kind":"result","command":COMMAND,...}` with the fields of `fields` (an object);
/// else `human` prints it as text.
pub fn result(json: bool, command: &str, fields: serde_json::Value, human: impl FnOnce()) {
    if json {
        println!("{}", result_line(command, &fields));
        JSON_PRINTED.store(true, Ordering::SeqCst);
    } else {
        human();
    }
}

/// The error line of a failed command run with `--json`, unless it printed its JSON
/// document already (stdout holds one document: a report that shows the failure, such as
/// `lab verify`'s checks, stays alone).
pub fn error_json(message: &str, exit: u8, hint: Option<&str>) -> Option<String> {
    (!JSON_PRINTED.load(Ordering::SeqCst)).then(|| error_line(message, exit, hint))
}

/// Prints `lab verify`'s results: pass/fail, what it proves, what it measured.
pub fn print_checks(checks: &[crate::provision::verify::CheckResult]) {
    print!("{}", checks_text(checks));
}

/// The checks as `lab verify` prints them: a line each, what it measured, and a failure's
/// hint.
pub fn checks_text(checks: &[crate::provision::verify::CheckResult]) -> String {
    let mut out = String::new();
    for c in checks {
        let verdict = if c.passed { "pass" } else { "FAIL" };
        out.push_str(&format!(
            "{verdict}  {:<20} on {:<10} {} ({:.1}s)\n",
            c.name, c.node, c.proves, c.seconds
        ));
        for line in c.measured.lines().take(6) {
            out.push_str(&format!("      {line}\n"));
        }
        if let Some(hint) = &c.hint {
            out.push_str(&format!("      hint: {hint}\n"));
        }
    }
    out
}

/// One seat's checks, or why it could not be checked.
pub type SeatChecks = (
    String,
    Result<Vec<crate::provision::verify::CheckResult>, String>,
);

/// `lab class verify`'s table: a row per check (on its node), a column per seat (`pass`,
/// `FAIL`, or `unreachable`), a summary per seat, then each failure's hint and each
/// unreachable seat's cause.
pub fn class_table(seats: &[SeatChecks]) -> String {
    let mut rows: Vec<(&str, &str)> = Vec::new();
    for (_, r) in seats {
        for c in r.iter().flatten() {
            if !rows.contains(&(c.name, c.node.as_str())) {
                rows.push((c.name, &c.node));
            }
        }
    }
    let width = seats
        .iter()
        .map(|(s, _)| s.len())
        .max()
        .unwrap_or(0)
        .max(11);
    let mut out = format!("{:<22} {:<12}", "check", "on");
    for (seat, _) in seats {
        out.push_str(&format!(" {seat:<width$}"));
    }
    out.push('\n');
    for (name, node) in &rows {
        out.push_str(&format!("{name:<22} {node:<12}"));
        for (_, r) in seats {
            let cell = match r {
                Err(_) => "unreachable",
                Ok(checks) => match checks.iter().find(|c| c.name == *name && c.node == *node) {
                    Some(c) if c.passed => "pass",
                    Some(_) => "FAIL",
                    None => "-",
                },
            };
            out.push_str(&format!(" {cell:<width$}"));
        }
        out.push('\n');
    }
    let summary: Vec<String> = seats
        .iter()
        .map(|(seat, r)| match r {
            Ok(c) => {
                let passed = c.iter().filter(|c| c.passed).count();
                format!("{seat} {passed}/{} pass", c.len())
            }
            Err(_) => format!("{seat} unreachable"),
        })
        .collect();
    out.push_str(&format!("seats: {}\n", summary.join(", ")));
    for (seat, r) in seats {
        match r {
            Ok(checks) => {
                for c in checks.iter().filter(|c| !c.passed) {
                    let hint = c.hint.as_deref().unwrap_or(&c.proves);
                    out.push_str(&format!("FAIL {seat} {} on {}: {hint}\n", c.name, c.node));
                }
            }
            Err(e) => out.push_str(&format!("unreachable {seat}: {e}\n")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::{CheckEvent, Outcome, StepEvent, Verdict};
    use std::sync::Arc;
    use std::time::Duration;

    fn step(node: &str, step: &'static str, outcome: Outcome) -> Event {
        Event::Step(StepEvent {
            node: node.into(),
            step,
            outcome,
            elapsed: Duration::from_millis(3100),
        })
    }

    fn ev(kind: &'static str, name: &str, action: Action) -> Event {
        Event::Work(Work {
            kind,
            name: name.into(),
            action,
            elapsed: Duration::from_millis(2570),
        })
    }

    /// A writer the test keeps a handle on.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// 12:34:56 UTC on some day.
    fn noon() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(20_000 * 86_400 + 12 * 3600 + 34 * 60 + 56)
    }

    fn screen(mode: Mode) -> (Screen, Shared) {
        let out = Shared::default();
        (Screen::with(mode, Box::new(out.clone()), noon), out)
    }

    #[test]
    fn plain_output_is_stamped_lines_without_escape_codes() {
        let (s, out) = screen(Mode::Plain);
        Progress::event(&s, ev("probe", "qemu capabilities", Action::Running));
        Progress::event(&s, ev("probe", "qemu capabilities", Action::Done));
        Progress::event(&s, step("controller", "sql", Outcome::Running));
        Progress::event(&s, step("controller", "sql", Outcome::Changed));
        let check = |verdict| {
            Event::Check(CheckEvent {
                node: "compute1".into(),
                check: "sql-bind",
                verdict,
                elapsed: Duration::from_millis(120),
            })
        };
        Progress::event(&s, check(Verdict::Running));
        Progress::event(&s, check(Verdict::Fail));
        drop(s);
        assert_eq!(
            out.text(),
            "12:34:56 probe    qemu capabilities                ...\n\
             12:34:56 probe    qemu capabilities                done       2.57s\n\
             12:34:56 controller   sql                  changed  3.1s\n\
             12:34:56 compute1     sql-bind             FAIL     0.1s\n"
        );
    }

    #[test]
    fn plain_transfers_print_a_line_per_five_percent() {
        let (s, out) = screen(Mode::Plain);
        let total = 100 << 20;
        for i in 0..=100u64 {
            let done = i << 20;
            let action = Action::Moved {
                done,
                total: Some(total),
            };
            Progress::event(&s, ev("volume", "image", action));
        }
        Progress::event(&s, ev("volume", "image", Action::Created));
        let text = out.text();
        let lines: Vec<&str> = text.lines().collect();
        for pct in (0..=100).step_by(5) {
            let want = format!(" {pct}% ({pct}.0 MiB of 100.0 MiB)");
            assert!(lines.iter().any(|l| l.ends_with(&want)), "{want}: {text}");
        }
        assert!(lines.len() < 101, "throttled: {text}");
        assert!(lines[lines.len() - 1].contains(" created "), "{text}");
    }

    #[test]
    fn notes_read_note_in_plain_lines_and_are_note_objects_in_json() {
        let note = || Event::Note("controller: disk 5GB is smaller than the image".into());
        let (s, out) = screen(Mode::Plain);
        Progress::event(&s, note());
        drop(s);
        assert_eq!(
            out.text(),
            "12:34:56 note: controller: disk 5GB is smaller than the image\n"
        );
        let (s, out) = screen(Mode::Json);
        Progress::event(&s, note());
        drop(s);
        assert_eq!(
            out.text(),
            "{\"kind\":\"note\",\"text\":\"controller: disk 5GB is smaller than the image\"}\n"
        );
        // Live mode draws above its bars on the terminal, the same words as plain.
        assert_eq!(
            note_line("kvm: guests run under tcg"),
            "note: kvm: guests run under tcg"
        );
    }

    #[test]
    fn json_mode_writes_one_object_per_line() {
        let (s, out) = screen(Mode::Json);
        let action = Action::Moved {
            done: 5,
            total: Some(10),
        };
        Progress::event(&s, ev("volume", "image", action));
        Progress::event(&s, step("compute1", "chrony", Outcome::Ok));
        Progress::event(&s, Event::Note("image: resuming after 1.0 MiB".into()));
        drop(s);
        let text = out.text();
        let values: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(values.len(), 3, "{text}");
        assert_eq!(values[0]["action"], "moved");
        assert_eq!(values[0]["done"], 5);
        assert_eq!(values[1]["kind"], "step");
        assert_eq!(values[1]["node"], "compute1");
        assert_eq!(values[1]["outcome"], "ok");
        assert_eq!(values[2]["kind"], "note");
    }
}
