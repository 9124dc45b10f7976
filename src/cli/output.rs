//! How the CLI shows progress: one plain line per object and action (CI-friendly).

use std::io::Write;
use std::sync::Mutex;

use crate::lifecycle::{Action, Event, Progress};

/// Prints `domain   lab-ocata-controller      created    0.12s` lines to stderr.
pub struct Lines(Mutex<()>);

impl Lines {
    pub fn new() -> Lines {
        Lines(Mutex::new(()))
    }
}

impl Default for Lines {
    fn default() -> Self {
        Lines::new()
    }
}

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
    }
}

impl Progress for Lines {
    fn event(&self, e: Event) {
        let _guard = self.0.lock();
        let secs = e.elapsed.as_secs_f64();
        let _ = writeln!(
            std::io::stderr(),
            "{:<8} {:<32} {:<10} {secs:.2}s",
            e.kind,
            e.name,
            action_word(e.action)
        );
    }
}

/// Prints one line per finished step: `controller  sql         changed   3.1s`.
pub struct StepLines;

impl crate::provision::engine::StepProgress for StepLines {
    fn event(&self, e: &crate::provision::engine::StepEvent) {
        use crate::provision::engine::Outcome;
        let word = match e.outcome {
            Outcome::Running => return,
            Outcome::Ok => "ok",
            Outcome::Changed => "changed",
            Outcome::Failed => "FAILED",
        };
        let secs = e.elapsed.as_secs_f64();
        let _ = writeln!(
            std::io::stderr(),
            "{:<12} {:<20} {word:<8} {secs:.1}s",
            e.node,
            e.step
        );
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
