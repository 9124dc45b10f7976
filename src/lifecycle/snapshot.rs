//! Lab-wide snapshots: every node paused, an internal snapshot with memory of each, all
//! resumed; `reset` reverts every node in parallel and leaves them running (from a stopped
//! lab too). A stopped lab has no memory to snapshot: `save` refuses it.

use super::inventory::Inventory;
use super::status::common_snapshots;
use super::{Action, Hv, LifecycleError, Progress, each_parallel, timed};
use crate::libvirt::RunState;
use crate::model::Lab;
use crate::names;
use crate::render::libvirt::snapshot_xml;

/// The lab's domains, all of which must exist.
pub(super) fn domains(hv: Hv, lab: &Lab) -> Result<Vec<String>, LifecycleError> {
    let inv = Inventory::read(hv, &lab.name, None)?;
    let ours = inv.our_domain_names(&lab.name);
    let wanted: Vec<String> = lab
        .nodes
        .iter()
        .map(|n| names::domain(&lab.name, &n.name))
        .collect();
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|w| !ours.contains(w))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(LifecycleError::NotUp {
            lab: lab.name.clone(),
            missing: missing.join(", "),
        });
    }
    Ok(wanted)
}

/// Pauses every node, snapshots each, resumes all (also when a snapshot failed).
pub fn save_snapshot(
    hv: Hv,
    lab: &Lab,
    name: &str,
    progress: &dyn Progress,
) -> Result<(), LifecycleError> {
    let doms = domains(hv, lab)?;
    if common_snapshots(hv, &doms)?.iter().any(|s| s == name) {
        return Err(LifecycleError::SnapshotExists(name.to_string()));
    }
    let stopped: Vec<String> = hv
        .domains()?
        .into_iter()
        .filter(|d| doms.contains(&d.name))
        .filter(|d| matches!(d.state, RunState::Saved | RunState::ShutOff))
        .map(|d| d.name)
        .collect();
    if !stopped.is_empty() {
        return Err(LifecycleError::Stopped {
            lab: lab.name.clone(),
            domains: stopped.join(", "),
        });
    }
    // Left by a save that was killed, or by a node rebuilt since: not lab-wide, so not
    // a snapshot anyone can return to.
    for d in &doms {
        if hv.snapshots(d)?.iter().any(|s| s == name) {
            timed(progress, "snapshot", d, Action::Deleted, || {
                hv.delete_snapshot(d, name)
            })?;
        }
    }
    let running: Vec<String> = hv
        .domains()?
        .into_iter()
        .filter(|d| doms.contains(&d.name) && d.state == RunState::Running)
        .map(|d| d.name)
        .collect();
    let paused = each_parallel(&running, |d| {
        timed(progress, "domain", d, Action::Paused, || {
            hv.suspend_domain(d)
        })
    });
    let description = format!(
        "lab {} snapshot {name}, taken by `lab snapshot save`",
        lab.name
    );
    let xml = snapshot_xml(name, &description);
    let taken = paused.and_then(|()| {
        each_parallel(&doms, |d| {
            timed(progress, "snapshot", d, Action::Saved, || {
                hv.create_snapshot(d, &xml)
            })
        })
    });
    let resumed = each_parallel(&running, |d| {
        timed(progress, "domain", d, Action::Resumed, || {
            hv.resume_domain(d)
        })
    });
    if taken.is_err() {
        // A lab-wide snapshot is all or nothing.
        for d in &doms {
            let _ = hv.delete_snapshot(d, name);
        }
    }
    taken?;
    resumed?;
    Ok(())
}

/// Lab-wide snapshots: those every node has, oldest first.
pub fn list_snapshots(hv: Hv, lab: &Lab) -> Result<Vec<String>, LifecycleError> {
    let doms = domains(hv, lab)?;
    common_snapshots(hv, &doms)
}

pub fn delete_snapshot(
    hv: Hv,
    lab: &Lab,
    name: &str,
    progress: &dyn Progress,
) -> Result<(), LifecycleError> {
    let doms = domains(hv, lab)?;
    require(hv, &doms, name)?;
    each_parallel(&doms, |d| {
        timed(progress, "snapshot", d, Action::Deleted, || {
            hv.delete_snapshot(d, name)
        })
        .map_err(LifecycleError::from)
    })
}

/// Reverts every node to `name` in parallel, all left running. Returns the domains reverted:
/// their clocks are the snapshot's ([`super::set_clocks`] and SSH set them).
pub fn reset(
    hv: Hv,
    lab: &Lab,
    name: &str,
    progress: &dyn Progress,
) -> Result<Vec<String>, LifecycleError> {
    let doms = domains(hv, lab)?;
    require(hv, &doms, name)?;
    // From a stopped lab (after a host reboot too): its pools and networks first; a node's
    // saved memory is the state the revert discards.
    super::power::start_storage_and_networks(hv, lab, progress)?;
    let saved: Vec<String> = hv
        .domains()?
        .into_iter()
        .filter(|d| doms.contains(&d.name) && d.state == RunState::Saved)
        .map(|d| d.name)
        .collect();
    each_parallel(&doms, |d| {
        if saved.contains(d) {
            hv.remove_managed_save(d)?;
        }
        timed(progress, "domain", d, Action::Reverted, || {
            hv.revert_snapshot(d, name)
        })?;
        Ok::<(), LifecycleError>(())
    })?;
    Ok(doms)
}

fn require(hv: Hv, doms: &[String], name: &str) -> Result<(), LifecycleError> {
    let mut missing = Vec::new();
    for d in doms {
        if !hv.snapshots(d)?.iter().any(|s| s == name) {
            missing.push(d.clone());
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(LifecycleError::NoSuchSnapshot {
            snapshot: name.to_string(),
            missing: missing.join(", "),
        })
    }
}
