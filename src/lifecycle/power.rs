//! `lab stop` and `lab start` on the libvirt side: every node's memory saved (managed save)
//! or its guest powered off, and back: the lab's pools and networks started where they are
//! inactive (after a host reboot), then every node restored, resumed or booted.
//! Each node's state is read from libvirt at each call, so an interrupted `stop` or
//! `start` is finished by the next `start`.

use std::time::{Duration, Instant};

use super::inventory::Inventory;
use super::snapshot::domains;
use super::{Action, Hv, LifecycleError, Progress, Work, each_parallel, timed};
use crate::interrupt;
use crate::libvirt::{LibvirtError, RunState};
use crate::model::Lab;
use crate::names;

/// How `lab stop` stops a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Its memory saved to the host's disk (managed save): `start` restores it as it was.
    Save,
    /// Its guest powered off (guest agent, else ACPI), by force after `grace`.
    Shutdown { grace: Duration },
}

/// What `stop` found and did, per domain.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StopReport {
    /// Domains saved, or shut down, by this call.
    pub stopped: Vec<String>,
    /// Domains a clean shutdown did not end within the grace time: powered off by force.
    pub forced: Vec<String>,
    /// Domains that were stopped already.
    pub already: Vec<String>,
}

/// Stops every node of the lab (all of whose domains must exist), in parallel.
pub fn stop(
    hv: Hv,
    lab: &Lab,
    mode: StopMode,
    progress: &dyn Progress,
) -> Result<StopReport, LifecycleError> {
    let doms = domains(hv, lab)?;
    let states = states(hv, &doms)?;
    interrupt::check("before any node was stopped: the lab runs as it did")?;
    let report = std::sync::Mutex::new(StopReport::default());
    each_parallel(&doms, |d| {
        let state = states.iter().find(|(n, _)| n == d).map(|(_, s)| *s);
        let outcome = match state {
            Some(RunState::Saved | RunState::ShutOff) => {
                progress.event(Work::now("domain", d, Action::Unchanged).into());
                Stop::Already
            }
            _ => stop_one(hv, d, mode, progress)?,
        };
        let mut r = report.lock().unwrap();
        match outcome {
            Stop::Already => r.already.push(d.clone()),
            Stop::Done => r.stopped.push(d.clone()),
            Stop::Forced => {
                r.stopped.push(d.clone());
                r.forced.push(d.clone());
            }
        }
        Ok::<(), LifecycleError>(())
    })?;
    Ok(report.into_inner().unwrap())
}

enum Stop {
    Already,
    Done,
    Forced,
}

fn stop_one(
    hv: Hv,
    d: &str,
    mode: StopMode,
    progress: &dyn Progress,
) -> Result<Stop, LifecycleError> {
    match mode {
        StopMode::Save => {
            timed(progress, "domain", d, Action::Saved, || hv.managed_save(d))?;
            Ok(Stop::Done)
        }
        StopMode::Shutdown { grace } => {
            let start = Instant::now();
            progress.event(Work::running("domain", d).into());
            hv.shutdown_domain(d)?;
            // Off once libvirt says so (a guest shutting down is `other` until then).
            loop {
                if state_of(hv, d)? == Some(RunState::ShutOff) {
                    progress.event(Work::since("domain", d, Action::ShutDown, start).into());
                    return Ok(Stop::Done);
                }
                if start.elapsed() >= grace {
                    break;
                }
                interrupt::check(&format!(
                    "while {d} shuts down: it goes on powering off; `lab start` brings the lab back"
                ))?;
                std::thread::sleep(Duration::from_millis(250));
            }
            hv.destroy_domain(d)?;
            progress.event(Work::since("domain", d, Action::PoweredOff, start).into());
            Ok(Stop::Forced)
        }
    }
}

fn state_of(hv: Hv, d: &str) -> Result<Option<RunState>, LibvirtError> {
    Ok(hv
        .domains()?
        .into_iter()
        .find(|f| f.name == d)
        .map(|f| f.state))
}

fn states(hv: Hv, doms: &[String]) -> Result<Vec<(String, RunState)>, LibvirtError> {
    Ok(hv
        .domains()?
        .into_iter()
        .filter(|f| doms.contains(&f.name))
        .map(|f| (f.name, f.state))
        .collect())
}

/// What `start` did: which domains came back how.
#[derive(Debug, Default)]
pub struct StartReport {
    /// Pools and networks that were inactive (a host reboot), started.
    pub started_objects: Vec<String>,
    /// Domains restored from their managed save: their clocks are behind.
    pub restored: Vec<String>,
    /// Domains booted from power-off: their services start again.
    pub booted: Vec<String>,
    /// Domains that were paused, resumed.
    pub resumed: Vec<String>,
    /// Domains that ran already.
    pub running: Vec<String>,
}

impl StartReport {
    /// The domains whose clock is behind (restored or resumed): [`set_clocks`] sets them.
    pub fn clock_due(&self) -> Vec<String> {
        self.restored.iter().chain(&self.resumed).cloned().collect()
    }
}

impl StartReport {
    /// Whether anything was started.
    pub fn changed(&self) -> bool {
        !(self.started_objects.is_empty()
            && self.restored.is_empty()
            && self.booted.is_empty()
            && self.resumed.is_empty())
    }
}

/// Starts the lab's inactive pools and networks, then every node in parallel: a saved one
/// is restored, a paused one resumed (the clocks of both behind: [`StartReport::clock_due`]),
/// a shut-off one booted. The lab's domains and networks must all exist (else `lab up` makes them).
pub fn start(hv: Hv, lab: &Lab, progress: &dyn Progress) -> Result<StartReport, LifecycleError> {
    let doms = domains(hv, lab)?;
    let report = StartReport {
        started_objects: start_storage_and_networks(hv, lab, progress)?,
        ..Default::default()
    };
    let states = states(hv, &doms)?;
    let report = std::sync::Mutex::new(report);
    each_parallel(&doms, |d| {
        interrupt::check("before every node was started: `lab start` goes on")?;
        let state = states.iter().find(|(n, _)| n == d).map(|(_, s)| *s);
        let list: fn(&mut StartReport) -> &mut Vec<String> = match state {
            Some(RunState::Running) => {
                progress.event(Work::now("domain", d, Action::Unchanged).into());
                |r| &mut r.running
            }
            Some(RunState::Paused) => {
                timed(progress, "domain", d, Action::Resumed, || {
                    hv.resume_domain(d)
                })?;
                |r| &mut r.resumed
            }
            Some(RunState::Saved) => {
                timed(progress, "domain", d, Action::Restored, || {
                    hv.start_domain(d)
                })?;
                |r| &mut r.restored
            }
            other => {
                if other == Some(RunState::Other) {
                    // Shutting down (a `stop --shutdown` cut short), crashed or suspended to
                    // RAM: powered off, then booted.
                    timed(progress, "domain", d, Action::PoweredOff, || {
                        hv.destroy_domain(d)
                    })?;
                }
                timed(progress, "domain", d, Action::Started, || {
                    hv.start_domain(d)
                })?;
                |r| &mut r.booted
            }
        };
        list(&mut report.lock().unwrap()).push(d.clone());
        Ok::<(), LifecycleError>(())
    })?;
    Ok(report.into_inner().unwrap())
}

/// Sets each domain's clock to the host's through the guest agent, all at once (after a
/// revert or a restore the clock is the snapshot's). The agent sets the host's time of the
/// call when it gets it: the guest is then behind by as much as the call took, a second or
/// more under load, which `lab` measures and corrects over SSH. Returns the domains whose
/// clock the agent could not set, with why.
pub fn set_clocks(
    hv: Hv,
    domains: &[String],
    progress: &dyn Progress,
) -> Vec<(String, LibvirtError)> {
    let failed = std::sync::Mutex::new(Vec::new());
    let _ = each_parallel(domains, |d| {
        let set = timed(progress, "clock", d, Action::ClockSet, || hv.sync_clock(d));
        if let Err(e) = set {
            failed.lock().unwrap().push((d.clone(), e));
        }
        Ok::<(), LibvirtError>(())
    });
    failed.into_inner().unwrap()
}

/// Starts the lab's pools and networks that exist but are inactive (all are after a host
/// reboot without autostart); a missing network is `lab up`'s to make.
pub(super) fn start_storage_and_networks(
    hv: Hv,
    lab: &Lab,
    progress: &dyn Progress,
) -> Result<Vec<String>, LifecycleError> {
    let mut started = Vec::new();
    for pool in [names::pool(&lab.name), names::log_pool(&lab.name)] {
        if hv.pool(&pool)?.is_some_and(|p| !p.active) {
            timed(progress, "pool", &pool, Action::Started, || {
                hv.start_pool(&pool)
            })?;
            started.push(pool);
        }
    }
    let inv = Inventory::read(hv, &lab.name, None)?;
    let ours: Vec<String> = inv
        .our_networks(&lab.name)
        .iter()
        .map(|(n, _)| n.name.clone())
        .collect();
    let mut missing = Vec::new();
    for net in &lab.networks {
        let name = names::network(&lab.name, &net.name);
        match inv.network(&name).filter(|_| ours.contains(&name)) {
            None => missing.push(name),
            Some(found) if !found.state => {
                timed(progress, "network", &name, Action::Started, || {
                    hv.start_network(&name)
                })?;
                started.push(name);
            }
            Some(_) => {}
        }
    }
    if !missing.is_empty() {
        return Err(LifecycleError::NotUp {
            lab: lab.name.clone(),
            missing: missing.join(", "),
        });
    }
    Ok(started)
}

/// Whether the lab is stopped: every node's domain exists and none runs or is paused.
pub fn is_stopped(status: &super::Status) -> bool {
    !status.nodes.is_empty()
        && status
            .nodes
            .iter()
            .all(|n| matches!(n.state, Some(RunState::Saved | RunState::ShutOff)))
}
