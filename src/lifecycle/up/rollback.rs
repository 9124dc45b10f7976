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

fn text(r: Result<(), crate::libvirt::LibvirtError>) -> Result<(), String> {
    r.map_err(|e| e.to_string())
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
                Created::Domain(n) => (format!("domain {n}"), text(self.hv.remove_domain(n))),
                Created::Network(n) => (format!("network {n}"), text(self.hv.remove_network(n))),
                Created::Volume(p, v) => {
                    (format!("volume {p}/{v}"), text(self.hv.delete_volume(p, v)))
                }
                // A log pool holds the log of a domain that started: emptied first.
                Created::Pool(n) => (
                    format!("pool {n}"),
                    crate::lifecycle::down::remove_pool(self.hv, n, false, self.progress)
                        .map(drop)
                        .map_err(|e| e.to_string()),
                ),
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
