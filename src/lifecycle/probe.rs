//! The QEMU capabilities probe as a step of its own: on a freshly started libvirtd the first
//! domain definition waits for libvirt to probe its QEMU binaries (seconds to minutes). `up`
//! asks for the capabilities on a thread of its own, early, so the probe overlaps the image
//! upload and shows as `probe qemu capabilities` instead of a silent wait.
//! On hosts where /dev/kvm opens but QEMU cannot use KVM (a nested "PVM" /dev/kvm), libvirt
//! 9 finds its cached capabilities stale ("KVM should be usable now") at every lookup and
//! probes QEMU again inside each define and start (seen: 80 probe runs in one
//! `lab up --no-provision`, defines of 30-60 s): there the defines and starts wait too, and
//! are announced as running (see `timed`).

use std::time::Instant;

use super::inventory::Inventory;
use super::{Action, Hv, Progress, Work};
use crate::libvirt::RunState;
use crate::model::Lab;
use crate::names;

/// What the probe is called in progress events.
pub const KIND: &str = "probe";
pub const NAME: &str = "qemu capabilities";

/// Runs `work` while libvirt probes its emulator's capabilities on another thread, when a
/// node's domain is to be defined or started (the only calls that wait for the probe).
pub(super) fn overlapped<T>(
    hv: Hv,
    lab: &Lab,
    inv: &Inventory,
    progress: &dyn Progress,
    work: impl FnOnce() -> T,
) -> T {
    if !needs_probe(inv, lab) {
        return work();
    }
    std::thread::scope(|s| {
        s.spawn(|| probe(hv, progress));
        work()
    })
}

/// Whether some node's domain is missing or not running.
fn needs_probe(inv: &Inventory, lab: &Lab) -> bool {
    lab.nodes.iter().any(|n| {
        inv.domain(&names::domain(&lab.name, &n.name))
            .is_none_or(|d| d.state != RunState::Running)
    })
}

/// Asks for the capabilities, reported as running, then done or failed. A failed probe
/// changes nothing: the domain definitions that need the capabilities report the cause.
fn probe(hv: Hv, progress: &dyn Progress) {
    let start = Instant::now();
    progress.event(Work::running(KIND, NAME).into());
    let action = match hv.probe_capabilities() {
        Ok(()) => Action::Done,
        Err(_) => Action::Failed,
    };
    progress.event(Work::since(KIND, NAME, action, start).into());
}
