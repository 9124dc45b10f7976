//! How the CLI shows progress. [`Screen`] renders the library's progress events
//! ([`crate::progress::Event`]) and provisioning steps ([`StepEvent`]) in one of three ways:
//! - on a terminal, live: a bar per transfer, a spinner with its elapsed time per piece of
//!   work running, one line per node with its running step; finished work is printed as a
//!   line above them (indicatif);
//! - elsewhere (CI, pipes), plain lines stamped with the UTC time: one per finished object
//!   or step, one when long work starts (`...`), byte counts every 5% or 5 s;
//! - with `--json`, one JSON object per line.
//!
//! The line formats are pure functions ([`line()`], [`step_line`], [`json_line`]).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::lifecycle::{Action, Event, Progress};
use crate::provision::engine::{Outcome, StepEvent, StepProgress};

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

/// The progress renderer of one command: implements both [`Progress`] and
/// [`StepProgress`], writes to stderr. Dropping it clears what is still drawn.
pub struct Screen {
    mode: Mode,
    state: Mutex<State>,
}

struct State {
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

    /// A line of text for the user (a resumed download, a note).
    pub fn note(&self, text: &str) {
        let mut st = self.lock();
        match self.mode {
            Mode::Live => st.print(text),
            Mode::Plain => st.stamped(text),
            Mode::Json => {
                let value = serde_json::json!({ "kind": "note", "text": text });
                st.write_line(&value.to_string());
            }
        }
    }
}

impl State {
    /// Live: a line above the bars.
    fn print(&mut self, text: &str) {
        if let Some(multi) = &self.multi {
            let _ = multi.println(text);
        }
    }

    fn stamped(&mut self, text: &str) {
        let line = format!("{} {text}", stamp((self.clock)()));
        self.write_line(&line);
    }

    fn write_line(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }

    /// The bar of `key`, made (and added below the others) when missing.
    fn bar(&mut self, key: &str, make: impl FnOnce() -> ProgressBar) -> ProgressBar {
        if let Some(bar) = self.bars.get(key) {
            return bar.clone();
        }
        let bar = make();
        let bar = match &self.multi {
            Some(multi) => multi.add(bar),
            None => bar,
        };
        // New work shows at once; then the tick redraws it (its elapsed time, its bytes).
        bar.force_draw();
        bar.enable_steady_tick(Duration::from_millis(200));
        self.bars.insert(key.to_string(), bar.clone());
        bar
    }

    /// Ends the live work of `key` (its bar disappears).
    fn end(&mut self, key: &str) {
        if let Some(bar) = self.bars.remove(key) {
            bar.finish_and_clear();
            if let Some(multi) = &self.multi {
                multi.remove(&bar);
            }
        }
    }

    fn live_event(&mut self, e: &Event) {
        let key = key(e.kind, &e.name);
        let labelled = |bar: ProgressBar, style: ProgressStyle| {
            bar.with_style(style)
                .with_prefix(e.kind)
                .with_message(e.name.clone())
        };
        match e.action {
            Action::Running => {
                self.bar(&key, || {
                    labelled(ProgressBar::new_spinner(), spinner_style())
                });
            }
            Action::Moved { done, total } => {
                let style = || match total {
                    Some(_) => bytes_style(),
                    None => spinner_bytes_style(),
                };
                let bar = self.bar(&key, || {
                    let bar = total.map_or_else(ProgressBar::no_length, ProgressBar::new);
                    labelled(bar, style()).with_position(done)
                });
                if bar.length() != total {
                    // A spinner of the same work (it was running) becomes a bar.
                    bar.set_style(style());
                    if let Some(t) = total {
                        bar.set_length(t);
                    }
                }
                bar.set_position(done);
            }
            _ => {
                self.end(&key);
                self.print(&line(e));
            }
        }
    }

    fn plain_event(&mut self, e: &Event) {
        if let Action::Moved { done, total } = e.action {
            let key = key(e.kind, &e.name);
            let throttle = self.throttles.entry(key).or_default();
            if !throttle.due(done, total, Instant::now()) {
                return;
            }
        } else if e.action.is_final() {
            self.throttles.remove(&key(e.kind, &e.name));
        }
        self.stamped(&line(e));
    }

    fn live_step(&mut self, e: &StepEvent) {
        let key = key("step", &e.node);
        match step_line(e) {
            None => {
                let bar = ProgressBar::new_spinner()
                    .with_style(step_style())
                    .with_prefix(e.node.clone())
                    .with_message(e.step);
                // A node runs one step at a time: a start replaces what it showed.
                self.end(&key);
                self.bar(&key, || bar);
            }
            Some(text) => {
                self.end(&key);
                self.print(&text);
            }
        }
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
            Mode::Live => st.live_event(&e),
            Mode::Plain => st.plain_event(&e),
            Mode::Json => st.write_line(&json_line(&e)),
        }
    }
}

impl StepProgress for Screen {
    fn event(&self, e: &StepEvent) {
        let mut st = self.lock();
        match self.mode {
            Mode::Live => st.live_step(e),
            Mode::Plain => {
                if let Some(text) = step_line(e) {
                    st.stamped(&text);
                }
            }
            Mode::Json => st.write_line(&step_json_line(e)),
        }
    }
}

/// Feeds an image download (`lab image pull`) to a screen as `download NAME` events.
pub struct Download<'a> {
    pub screen: &'a Screen,
    pub name: String,
    pub start: Instant,
}

impl Download<'_> {
    /// The download's final event: done, or failed.
    pub fn finish(&self, ok: bool) {
        let action = if ok { Action::Done } else { Action::Failed };
        self.emit(action);
    }

    fn emit(&self, action: Action) {
        let e = Event {
            kind: "download",
            name: self.name.clone(),
            action,
            elapsed: self.start.elapsed(),
        };
        Progress::event(self.screen, e);
    }
}

impl crate::cache::Progress for Download<'_> {
    fn update(&mut self, done: u64, total: Option<u64>) {
        self.emit(Action::Moved { done, total });
    }

    fn note(&mut self, text: &str) {
        self.screen.note(&format!("{}: {text}", self.name));
    }
}

fn key(kind: &str, name: &str) -> String {
    format!("{kind}\u{0}{name}")
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix:<8} {msg:<32} {elapsed}")
        .expect("a valid template")
}

fn spinner_bytes_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix:<8} {msg:<32} {binary_bytes} {elapsed}")
        .expect("a valid template")
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} {prefix:<8} {msg:<32} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
    )
    .expect("a valid template")
    .progress_chars("=> ")
}

fn step_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix:<12} {msg:<20} {elapsed}")
        .expect("a valid template")
}

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
        Action::Reverted => "reverted",
        Action::ClockSet => "set",
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
pub fn line(e: &Event) -> String {
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

/// An event as one JSON line: `{"kind":..,"name":..,"action":..,"elapsed":..}`.
pub fn json_line(e: &Event) -> String {
    serde_json::to_string(e).expect("events serialize")
}

/// A step as one JSON line, `"kind":"step"` beside the step's fields.
pub fn step_json_line(e: &StepEvent) -> String {
    let mut value = serde_json::to_value(e).expect("steps serialize");
    if let Some(map) = value.as_object_mut() {
        map.insert("kind".into(), "step".into());
    }
    value.to_string()
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

/// Prints `lab verify`'s results: pass/fail, what it proves, what it measured.
pub fn print_checks(checks: &[crate::provision::verify::CheckResult]) {
    for c in checks {
        let verdict = if c.passed { "pass" } else { "FAIL" };
        println!(
            "{verdict}  {:<20} on {:<10} {} ({:.1}s)",
            c.name, c.node, c.proves, c.seconds
        );
        for line in c.measured.lines().take(6) {
            println!("      {line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn step(node: &str, step: &'static str, outcome: Outcome) -> StepEvent {
        StepEvent {
            node: node.into(),
            step,
            outcome,
            elapsed: Duration::from_millis(3100),
        }
    }

    fn ev(kind: &'static str, name: &str, action: Action) -> Event {
        Event {
            kind,
            name: name.into(),
            action,
            elapsed: Duration::from_millis(2570),
        }
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
    fn plain_output_is_stamped_lines_without_escape_codes() {
        let (s, out) = screen(Mode::Plain);
        Progress::event(&s, ev("probe", "qemu capabilities", Action::Running));
        Progress::event(&s, ev("probe", "qemu capabilities", Action::Done));
        StepProgress::event(&s, &step("controller", "sql", Outcome::Running));
        StepProgress::event(&s, &step("controller", "sql", Outcome::Changed));
        drop(s);
        assert_eq!(
            out.text(),
            "12:34:56 probe    qemu capabilities                ...\n\
             12:34:56 probe    qemu capabilities                done       2.57s\n\
             12:34:56 controller   sql                  changed  3.1s\n"
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
    fn json_mode_writes_one_object_per_line() {
        let (s, out) = screen(Mode::Json);
        let action = Action::Moved {
            done: 5,
            total: Some(10),
        };
        Progress::event(&s, ev("volume", "image", action));
        StepProgress::event(&s, &step("compute1", "chrony", Outcome::Ok));
        s.note("image: resuming after 1.0 MiB");
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
