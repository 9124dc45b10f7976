//! The lab's life on a libvirt host: `up` (converge), `status` (derived from libvirt at each
//! call), `down` (remove what the lab owns), lab-wide snapshots and `reset`.
//! Everything goes through the [`Hypervisor`] seam; per-node work runs on scoped threads.

mod down;
pub mod drift;
mod inventory;
mod list;
mod power;
mod probe;
mod snapshot;
mod status;
mod up;

pub use down::down;
pub use inventory::{Clash, Inventory, host_routes, network_cidrs, route_clashes};
pub use list::{LabOnHost, NodeOnHost, labs_on_host, list_labs};
pub use power::{StartReport, StopMode, StopReport, is_stopped, set_clocks, start, stop};
pub use snapshot::{delete_snapshot, list_snapshots, reset, save_snapshot};
pub use status::{NodeStatus, Status, status};
pub use up::{UpOptions, generations, up};

pub use crate::progress::{Action, Event, Progress, Quiet, Work};

use crate::libvirt::{Hypervisor, LibvirtError};
use crate::units::ByteSize;

/// The snapshot `lab up` takes of a freshly provisioned lab; bare `lab reset` returns to it.
pub const UP_SNAPSHOT: &str = "lab-up";

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Libvirt(#[from] LibvirtError),
    #[error("lab {lab} cannot come up here:\n{}", list(.clashes))]
    Clashes { lab: String, clashes: Vec<Clash> },
    #[error("{error}\n(rolled back what this run created: {rolled_back})")]
    RolledBack {
        error: Box<LifecycleError>,
        rolled_back: String,
    },
    /// The run failed on a lost libvirt connection: what it created stays, for the next `up`.
    #[error(
        "{error}\n(not rolled back, libvirt is out of reach: what this run made ({kept}) stays; the next `lab up` goes on with it, `lab down` removes it)"
    )]
    NotRolledBack {
        error: Box<LifecycleError>,
        /// How many objects of each kind stay: `1 pool, 7 volumes`.
        kept: String,
    },
    #[error("lab {lab} has no node {node}: nodes are {known}")]
    NoSuchNode {
        lab: String,
        node: String,
        known: String,
    },
    #[error(
        "snapshot {snapshot} is missing on {missing}: `lab snapshot list` shows the lab-wide ones"
    )]
    NoSuchSnapshot { snapshot: String, missing: String },
    #[error("snapshot {0} already exists: pick another name, or delete it first")]
    SnapshotExists(String),
    #[error(
        "lab {lab} is stopped ({domains}): a lab-wide snapshot holds each node's memory, so `lab start` it first"
    )]
    Stopped { lab: String, domains: String },
    #[error("lab {lab} is not up (missing: {missing}): run `lab up` first")]
    NotUp { lab: String, missing: String },
    #[error(
        "not enough space for lab {lab} in {path} (pool {pool}): it needs at most {}, {} is free: free space there, or give `--pool-root` a larger disk",
        .need.human(),
        .free.human()
    )]
    NoSpace {
        lab: String,
        pool: String,
        /// The pool's directory on the hypervisor host.
        path: String,
        need: ByteSize,
        free: ByteSize,
    },
    #[error(
        "no space left in {path} for volume {volume} (pool {pool}{}): free space there, or give `--pool-root` a larger disk ({error})",
        free_text(.free)
    )]
    SpaceRanOut {
        pool: String,
        /// The pool's directory on the hypervisor host.
        path: String,
        volume: String,
        /// What the pool had free right after the failure, when it could be read.
        free: Option<ByteSize>,
        /// libvirt's error (printed in the message, so not chained as a source).
        error: Box<LibvirtError>,
    },
    /// The io error is in the message, so not chained as a source (printed once).
    #[error("cannot read image {path}: {error}")]
    Image {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Render(#[from] crate::render::iso::IsoError),
    #[error(transparent)]
    Interrupted(#[from] crate::interrupt::Interrupted),
    #[error(
        "lab {lab} runs differently from its lab file:\n{}\nrebuild a changed node from its image with `lab up --recreate NODE`, or bring the lab down (`lab down`) and up again",
        list(.diffs)
    )]
    Drift {
        lab: String,
        diffs: Vec<drift::Difference>,
    },
}

/// A stop asked for, wherever it cut the work; anything else is the host's.
impl crate::failure::Classify for LifecycleError {
    fn class(&self) -> crate::failure::ExitClass {
        match self.cause() {
            LifecycleError::Interrupted(_) => crate::failure::ExitClass::Interrupted,
            _ => crate::failure::ExitClass::Host,
        }
    }
}

impl LifecycleError {
    /// The cause of a failed `up`, behind what its rollback did.
    pub fn cause(&self) -> &LifecycleError {
        match self {
            LifecycleError::RolledBack { error, .. }
            | LifecycleError::NotRolledBack { error, .. } => error.cause(),
            other => other,
        }
    }

    /// Whether the connection to libvirt was lost ([`LibvirtError::ConnectionLost`]).
    pub fn is_connection_lost(&self) -> bool {
        matches!(self.cause(), LifecycleError::Libvirt(e) if e.is_connection_lost())
    }

    /// Lab `lab` has no node `node`: the error names the nodes it has.
    pub fn no_such_node(lab: &crate::model::Lab, node: &str) -> LifecycleError {
        LifecycleError::NoSuchNode {
            lab: lab.name.clone(),
            node: node.to_string(),
            known: lab
                .nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

fn free_text(free: &Option<ByteSize>) -> String {
    free.map(|f| format!(", {} free", f.human()))
        .unwrap_or_default()
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|c| format!("  - {c}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Kinds of objects whose calls wait on QEMU (define, start, pause, snapshot, revert):
/// seconds, minutes at the first define on a fresh libvirtd. Their calls are reported as
/// running when they begin, so no wait is silent.
const ANNOUNCED: &[&str] = &["domain", "snapshot"];

/// Times one call and reports it (and its start, for the kinds in [`ANNOUNCED`]).
fn timed<T>(
    progress: &dyn Progress,
    kind: &'static str,
    name: &str,
    action: Action,
    f: impl FnOnce() -> Result<T, LibvirtError>,
) -> Result<T, LibvirtError> {
    let start = std::time::Instant::now();
    if ANNOUNCED.contains(&kind) {
        progress.event(Work::running(kind, name).into());
    }
    let out = f();
    if out.is_err() && ANNOUNCED.contains(&kind) {
        progress.event(Work::since(kind, name, Action::Failed, start).into());
    }
    let out = out?;
    progress.event(Work::since(kind, name, action, start).into());
    Ok(out)
}

/// Runs `f` for every item on its own thread and returns the first error, after all finished.
fn each_parallel<T: Sync, E: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<(), E> + Sync,
) -> Result<(), E> {
    std::thread::scope(|s| {
        let handles: Vec<_> = items.iter().map(|i| s.spawn(|| f(i))).collect();
        let results: Vec<Result<(), E>> = handles
            .into_iter()
            .map(|h| h.join().expect("a node thread panicked"))
            .collect();
        results.into_iter().collect()
    })
}

/// For `Hypervisor` calls in tests and the CLI alike.
pub type Hv<'a> = &'a dyn Hypervisor;
