//! `lab up` as a whole operation: converge libvirt to the lab, then wait for the nodes,
//! provision them, verify from the compute node and take the `lab-up` snapshot.

use crate::failure::Failure;
use std::path::Path;

use super::guests::{self, GuestProblem, ready, verify};
use super::{Target, access_files, is_local, runtime, until_interrupted};
use crate::lifecycle::{self, Progress, UpOptions};
use crate::names;
use crate::render::Accel;
use crate::state;

/// What `lab up` did.
#[derive(Debug, Default)]
pub struct UpReport {
    /// Whether libvirt objects were created or started.
    pub changed: bool,
    /// Provisioning steps (empty with `--no-provision`).
    pub steps: Vec<crate::progress::StepEvent>,
    pub checks: Vec<crate::provision::verify::CheckResult>,
    /// Whether this run took the `lab-up` snapshot (or, with a stop, the `before-STEP` one).
    pub snapshot_saved: bool,
    /// With `--stop-before STEP`: where it stopped, and what the student does next.
    pub stopped: Option<Stopped>,
    /// The lab was stopped (`lab stop`, a host reboot): brought back as `lab start` does.
    pub started: Option<super::Started>,
}

/// A `lab up --stop-before STEP` that stopped where the student takes over.
#[derive(Debug)]
pub struct Stopped {
    pub step: String,
    /// The lab-wide snapshot at the start of the step (`before-STEP`).
    pub snapshot: String,
    /// Whether the step's checks already pass (the lab went past it earlier): then no
    /// snapshot was saved, since it would not be the step's start.
    pub already_done: bool,
    /// The guide's commands from the step on, with this lab's values.
    pub guide: String,
}

/// How `lab up` provisions: the SSH timeouts, and where to stop.
#[derive(Debug, Clone, Copy)]
pub struct Provisioning<'a> {
    pub timeouts: &'a crate::ssh::Timeouts,
    /// Do only the steps before this one, save `before-STEP`, hand over.
    pub stop_before: Option<&'a str>,
}

/// The snapshot `lab up --stop-before STEP` saves.
pub fn before_snapshot(step: &str) -> String {
    format!("before-{step}")
}

/// `lab up`: converge libvirt to the lab; with `provision`, wait for SSH, provision, verify
/// from the other node, and take the `lab-up` snapshot that bare `lab reset` returns to.
/// A first `up` that fails before the nodes exist leaves no state behind. The base image is
/// `image`, else the lab's image from the cache.
pub fn up(
    t: &Target,
    accel: Accel,
    image: Option<&Path>,
    recreate: &[String],
    provision: Option<Provisioning>,
    progress: &dyn Progress,
) -> crate::failure::Result<UpReport> {
    if let Some(step) = provision.and_then(|p| p.stop_before) {
        crate::provision::require_step(&t.lab, step)?;
    }
    // From the cache, the image's sha256 is known: another lab's copy on the host may do.
    let (image, sha256) = match image {
        Some(path) => (path.to_path_buf(), None),
        None => {
            let cache = crate::cache::Cache::open()?;
            let path = cache.path_for(&t.lab.image.name)?;
            (path, cache.recorded_sha256(&t.lab.image.name)?)
        }
    };
    let image = image.as_path();
    let _lock = t.state.lock("up")?;
    // Fresh: no `up` made the lab's secrets yet (an instance's placement may be recorded).
    let fresh = t.state.existing_seed()?.is_none();
    let mut started = None;
    let created = (|| {
        // Every state write `up` needs comes first (the lock above, the seed, the lab file,
        // the access files: each synced), before libvirt is even opened: a read-only or full
        // state directory fails the run here, with no libvirt object made.
        let ctx = t.context(accel)?;
        t.state
            .write(names::state::LAB_FILE, t.source.text.as_bytes())?;
        access_files(t)?;
        let hv = t.connect()?;
        // A stopped lab (or one a `lab start` left half done) comes back as `lab start`
        // brings it (clocks set), then goes on.
        let cut_short = t.state.has(names::state::START_PENDING);
        if let Some(p) = provision
            && !fresh
            && (cut_short || lifecycle::is_stopped(&lifecycle::status(&hv, &t.lab)?))
        {
            started = Some(super::power::start_locked(t, &hv, p.timeouts, progress)?);
        }
        // The start waited for the nodes over SSH: libvirtd may have restarted meanwhile.
        let hv = t.still_connected(hv)?;
        // The snapshot taken once provisioned: its memory state must fit in the pool too.
        let snapshot = provision.map(|p| match p.stop_before {
            Some(step) => before_snapshot(step),
            None => lifecycle::UP_SNAPSHOT.to_string(),
        });
        let opts = UpOptions {
            image,
            image_sha256: sha256.as_deref(),
            check_routes: is_local(&t.uri),
            recreate,
            snapshot: snapshot.as_deref(),
        };
        let changed = lifecycle::up(&hv, &t.lab, &ctx, &opts, progress)?;
        Ok::<_, crate::failure::Failure>((changed, hv, ctx))
    })();
    let (changed, hv, ctx) = match created {
        Ok(r) => r,
        Err(e) => {
            // Objects a lost connection kept from the rollback are owned by this state: the
            // next `up` goes on with them.
            if fresh && !kept_objects(&e) {
                let _ = t.state.remove();
            }
            return Err(e);
        }
    };
    // The lab exists now: bare commands are about it, also while provisioning fails (an
    // instance is always named: `--instance` or LAB_INSTANCE).
    if t.instance.is_none() {
        state::set_current(&t.state.root, &t.choice.record(&t.lab.name))?;
    }
    let mut report = UpReport {
        changed: changed || started.is_some(),
        started,
        ..Default::default()
    };
    let Some(provision) = provision else {
        return Ok(report);
    };
    let stop = provision.stop_before;
    let sel = crate::provision::engine::Selection {
        before: stop.map(String::from),
        ..Default::default()
    };
    let done: Vec<String> = match stop {
        None => Vec::new(),
        Some(step) => steps_before(&t.lab, step),
    };
    let checks = match stop {
        Some(_) if done.is_empty() => Vec::new(),
        _ => crate::provision::verify::select(&t.lab, &done)?,
    };
    let next = match stop {
        Some(step) => crate::provision::verify::select(&t.lab, &[step.to_string()])?,
        None => Vec::new(),
    };
    // A first `up`'s nodes have no step done: each is checked as it comes.
    let start = if fresh {
        crate::provision::engine::Start::Fresh
    } else {
        crate::provision::engine::Start::Provisioned
    };
    let rt = runtime()?;
    let watch = Some(&hv as &dyn crate::libvirt::Hypervisor);
    let (steps, checks, next_done) = super::watching(
        &t.lab,
        watch,
        &rt,
        until_interrupted(
            "while the nodes boot and are provisioned: they keep running; `lab up` goes on where it stopped (done steps are kept), `lab down` removes the lab",
            async {
                let guests = ready(t, &ctx, provision.timeouts, progress).await?;
                let steps = guests::provision(t, &ctx, &guests, &sel, start, progress).await?;
                let checks = verify_timed(t, &ctx, &guests, &checks, progress).await?;
                // Whether the student's step is already done (its checks, unshown).
                let quiet = crate::progress::Quiet;
                let next = verify(t, &ctx, &guests, &next, &quiet).await?;
                let next_done = !next.is_empty() && next.iter().all(|c| c.passed);
                Ok::<_, crate::failure::Failure>((steps, checks, next_done))
            },
        ),
    )?;
    // The guests ran on through a libvirtd restart: the snapshot needs a live connection.
    let hv = t.still_connected(hv)?;
    report.steps = steps;
    report.checks = checks;
    if let Some(failed) = report.checks.iter().find(|c| !c.passed) {
        let msg = format!(
            "check {} failed on {}: {}
{}",
            failed.name, failed.node, failed.proves, failed.measured
        );
        return Err(GuestProblem(msg).into());
    }
    if let Some(step) = stop {
        let snapshot = before_snapshot(step);
        let saved = !next_done && save_once(&hv, t, &snapshot, progress)?;
        report.snapshot_saved = saved;
        report.stopped = Some(Stopped {
            step: step.to_string(),
            snapshot,
            already_done: next_done,
            guide: crate::provision::guide::text(&t.lab, &ctx.secrets, Some(step))
                .unwrap_or_default(),
        });
        return Ok(report);
    }
    report.snapshot_saved = save_once(&hv, t, lifecycle::UP_SNAPSHOT, progress)?;
    Ok(report)
}

/// Whether a failed `up` left the objects it created (its connection was lost).
fn kept_objects(e: &Failure) -> bool {
    matches!(
        e.downcast_ref::<lifecycle::LifecycleError>(),
        Some(lifecycle::LifecycleError::NotRolledBack { .. })
    )
}

/// The steps the guide puts before `step`.
fn steps_before(lab: &crate::model::Lab, step: &str) -> Vec<String> {
    let order = crate::provision::order(lab);
    let i = order.iter().position(|s| *s == step).unwrap_or(0);
    order[..i].iter().map(|s| s.to_string()).collect()
}

/// Saves lab-wide snapshot `name` unless it exists; whether it saved it.
fn save_once(
    hv: &crate::libvirt::Libvirt,
    t: &Target,
    name: &str,
    progress: &dyn Progress,
) -> crate::failure::Result<bool> {
    if lifecycle::list_snapshots(hv, &t.lab)?
        .iter()
        .any(|s| s == name)
    {
        return Ok(false);
    }
    lifecycle::save_snapshot(hv, &t.lab, name, progress)?;
    Ok(true)
}

/// The checks, reported as one piece of work (`verify checks from compute1`).
async fn verify_timed(
    t: &Target,
    ctx: &crate::render::RenderContext,
    guests: &[crate::ssh::SshGuest],
    checks: &[crate::provision::verify::Check],
    progress: &dyn Progress,
) -> crate::failure::Result<Vec<crate::provision::verify::CheckResult>> {
    if checks.is_empty() {
        return Ok(Vec::new());
    }
    let start = std::time::Instant::now();
    let (kind, name) = ("verify", "checks from compute1");
    progress.event(lifecycle::Work::running(kind, name).into());
    let results = verify(t, ctx, guests, checks, progress).await;
    let action = match &results {
        Ok(_) => lifecycle::Action::Done,
        Err(_) => lifecycle::Action::Failed,
    };
    progress.event(lifecycle::Work::since(kind, name, action, start).into());
    Ok(results?)
}
