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

/// One line per finished step: `controller  sql         changed   3.1s`. On a terminal, a
/// status line below them shows the steps running now (redrawn at each event); elsewhere
/// (CI, pipes) only the plain lines.
pub struct StepLines {
    tty: bool,
    running: Mutex<Vec<(String, &'static str)>>,
}

impl StepLines {
    pub fn new() -> StepLines {
        use std::io::IsTerminal;
        let tty = std::io::stderr().is_terminal()
            && std::env::var_os("TERM").is_some_and(|t| t != "dumb");
        StepLines {
            tty,
            running: Mutex::new(Vec::new()),
        }
    }
}

impl Default for StepLines {
    fn default() -> Self {
        StepLines::new()
    }
}

/// The plain line of a finished step; `None` for a start.
pub fn step_line(e: &crate::provision::engine::StepEvent) -> Option<String> {
    use crate::provision::engine::Outcome;
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

impl StepLines {
    /// Writes what an event changes on the screen.
    fn render(&self, e: &crate::provision::engine::StepEvent, out: &mut dyn Write) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.retain(|(n, s)| !(n == &e.node && *s == e.step));
        let line = step_line(e);
        if line.is_none() {
            running.push((e.node.clone(), e.step));
        }
        if self.tty {
            let _ = write!(out, "\r\x1b[K");
        }
        if let Some(line) = line {
            let _ = writeln!(out, "{line}");
        }
        if self.tty && !running.is_empty() {
            let now: Vec<String> = running.iter().map(|(n, s)| format!("{n}: {s}")).collect();
            let _ = write!(out, "running {}", now.join(", "));
        }
        let _ = out.flush();
    }
}

impl crate::provision::engine::StepProgress for StepLines {
    fn event(&self, e: &crate::provision::engine::StepEvent) {
        self.render(e, &mut std::io::stderr().lock());
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
    use crate::provision::engine::{Outcome, StepEvent};

    fn ev(node: &str, step: &'static str, outcome: Outcome) -> StepEvent {
        StepEvent {
            node: node.into(),
            step,
            outcome,
            elapsed: std::time::Duration::from_millis(3100),
        }
    }

    fn shown(tty: bool, events: &[StepEvent]) -> String {
        let lines = StepLines {
            tty,
            running: Mutex::new(Vec::new()),
        };
        let mut out = Vec::new();
        events.iter().for_each(|e| lines.render(e, &mut out));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_output_is_one_line_per_finished_step_and_no_escape_codes() {
        let out = shown(
            false,
            &[
                ev("controller", "sql", Outcome::Running),
                ev("controller", "sql", Outcome::Changed),
            ],
        );
        assert_eq!(out, "controller   sql                  changed  3.1s\n");
    }

    #[test]
    fn a_terminal_gets_a_status_line_of_the_running_steps() {
        let out = shown(
            true,
            &[
                ev("controller", "sql", Outcome::Running),
                ev("compute1", "chrony", Outcome::Running),
                ev("controller", "sql", Outcome::Ok),
            ],
        );
        assert!(
            out.contains("running controller: sql, compute1: chrony"),
            "{out:?}"
        );
        assert!(
            out.ends_with(
                "\r\x1b[Kcontroller   sql                  ok       3.1s\nrunning compute1: chrony"
            ),
            "{out:?}"
        );
    }
}
