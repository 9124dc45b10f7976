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

impl Created {
    fn kind(&self) -> &'static str {
        match self {
            Created::Pool(_) => "pool",
            Created::Volume(..) => "volume",
            Created::Network(_) => "network",
            Created::Domain(_) => "domain",
        }
    }
}

/// As the rollback's report names it: `domain NAME`, `volume POOL/NAME`...
impl std::fmt::Display for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Created::Volume(p, v) => write!(f, "volume {p}/{v}"),
            Created::Pool(n) | Created::Network(n) | Created::Domain(n) => {
                write!(f, "{} {n}", self.kind())
            }
        }
    }
}

/// How many objects of each kind: `1 pool, 7 volumes, 1 domain`.
fn tally(created: &[Created]) -> String {
    let counts = ["pool", "volume", "network", "domain"]
        .map(|k| (k, created.iter().filter(|c| c.kind() == k).count()));
    let parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{n} {k}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    parts.join(", ")
}

fn text(r: Result<(), crate::libvirt::LibvirtError>) -> Result<(), String> {
    r.map_err(|e| why(e.is_connection_lost(), e))
}

/// Why an undo failed: a connection lost meanwhile in a few words (the cause names it).
fn why(lost: bool, e: impl std::fmt::Display) -> String {
    if lost {
        "libvirt is out of reach".to_string()
    } else {
        e.to_string()
    }
}

impl Run<'_> {
    pub(super) fn record(&self, c: Created) {
        self.created.lock().unwrap().push(c);
    }

    /// Undoes what this run created, newest first; reports what could not be undone. On a
    /// lost connection nothing is tried (each call would fail): it all stays, counted.
    pub(super) fn rollback(&self, error: LifecycleError) -> LifecycleError {
        let created = std::mem::take(&mut *self.created.lock().unwrap());
        if created.is_empty() {
            return error;
        }
        if !self.hv.is_alive() {
            return LifecycleError::NotRolledBack {
                error: Box::new(error),
                kept: tally(&created),
            };
        }
        let mut undone = Vec::new();
        for c in created.iter().rev() {
            let what = c.to_string();
            let result = match c {
                Created::Domain(n) => text(self.hv.remove_domain(n)),
                Created::Network(n) => text(self.hv.remove_network(n)),
                Created::Volume(p, v) => text(self.hv.delete_volume(p, v)),
                // A log pool holds the log of a domain that started: emptied first.
                Created::Pool(n) => {
                    crate::lifecycle::down::remove_pool(self.hv, n, false, self.progress)
                        .map(drop)
                        .map_err(|e| why(e.is_connection_lost(), e))
                }
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
