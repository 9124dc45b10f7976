//! Live drawing on a terminal (indicatif): a bar per transfer, a spinner with its elapsed
//! time per piece of work running, one line per node with its running step or check;
//! finished work is printed as a line above them.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::State;
use super::lines::{line, step_line};
use crate::progress::{Action, CheckEvent, StepEvent, Verdict, Work};

impl State {
    /// A line above the bars.
    pub(super) fn print(&mut self, text: &str) {
        if let Some(multi) = &self.multi {
            let _ = multi.println(text);
        }
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
    pub(super) fn end(&mut self, key: &str) {
        if let Some(bar) = self.bars.remove(key) {
            bar.finish_and_clear();
            if let Some(multi) = &self.multi {
                multi.remove(&bar);
            }
        }
    }

    pub(super) fn live_work(&mut self, e: &Work) {
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

    pub(super) fn live_step(&mut self, e: &StepEvent) {
        let key = key("step", &e.node);
        match step_line(e) {
            None => self.node_spinner(&key, &e.node, e.step),
            Some(text) => {
                self.end(&key);
                self.print(&text);
            }
        }
    }

    /// A running check shows on its node's line; a finished one leaves no line: the
    /// command's report of every check follows on stdout.
    pub(super) fn live_check(&mut self, e: &CheckEvent) {
        let key = key("step", &e.node);
        match e.verdict {
            Verdict::Running => self.node_spinner(&key, &e.node, e.check),
            Verdict::Pass | Verdict::Fail => self.end(&key),
        }
    }

    /// The line of a node doing `what`: a node does one thing at a time, so a start
    /// replaces what it showed.
    fn node_spinner(&mut self, key: &str, node: &str, what: &'static str) {
        let bar = ProgressBar::new_spinner()
            .with_style(step_style())
            .with_prefix(node.to_string())
            .with_message(what);
        self.end(key);
        self.bar(key, || bar);
    }
}

pub(super) fn key(kind: &str, name: &str) -> String {
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
