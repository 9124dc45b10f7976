//! What a failed or interrupted `up` undoes: every object the run created, newest first.

use super::Run;
use crate::lifecycle::LifecycleError;

/// An object this run created, to undo on failure.
#[derive(Debug, Clone)]
pub(super) enum Created {
    Pool(String),
    Volume(String, String),
    Network(String),
    Domain(String),
}

impl Run<'_> {
    pub(super) fn record(&self, c: Created) {
        self.created.lock().unwrap().push(c);
    }

    /// Undoes what this run created, newest first; reports what could not be undone.
    pub(super) fn rollback(&self, error: LifecycleError) -> LifecycleError {
        let created = std::mem::take(&mut *self.created.lock().unwrap());
        if created.is_empty() {
            return error;
        }
        let mut undone = Vec::new();
        for c in created.iter().rev() {
            let (what, result) = match c {
                Created::Domain(n) => (format!("domain {n}"), self.hv.remove_domain(n)),
                Created::Network(n) => (format!("network {n}"), self.hv.remove_network(n)),
                Created::Volume(p, v) => (format!("volume {p}/{v}"), self.hv.delete_volume(p, v)),
                Created::Pool(n) => (format!("pool {n}"), self.hv.remove_pool(n)),
            };
            match result {
                Ok(()) => undone.push(what),
                Err(e) => undone.push(format!("{what} NOT removed ({e})")),
            }
        }
        LifecycleError::RolledBack {
            error: Box::new(error),
            rolled_back: undone.join(", "),
        }
    }
}
