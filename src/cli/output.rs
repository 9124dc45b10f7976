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
