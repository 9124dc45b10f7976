//! `lab up` as a whole operation: converge libvirt to the lab, then wait for the nodes,
//! provision them, verify from the compute node and take the `lab-up` snapshot.

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
    /// Whether this run took the `lab-up` snapshot.
    pub snapshot_saved: bool,
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
    provision: Option<&crate::ssh::Timeouts>,
    progress: &dyn Progress,
) -> anyhow::Result<UpReport> {
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
    let ctx = t.context(accel)?;
    let created = (|| {
        t.state
            .write(names::state::LAB_FILE, t.source.text.as_bytes())?;
        access_files(t)?;
        let hv = t.connect()?;
        let opts = UpOptions {
            image,
            image_sha256: sha256.as_deref(),
            check_routes: is_local(&t.uri),
            recreate,
        };
        Ok::<_, anyhow::Error>((lifecycle::up(&hv, &t.lab, &ctx, &opts, progress)?, hv))
    })();
    let (changed, hv) = match created {
        Ok(r) => r,
        Err(e) => {
            if fresh {
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
        changed,
        ..Default::default()
    };
    let Some(timeouts) = provision else {
        return Ok(report);
    };
    let rt = runtime()?;
    let (steps, checks) = rt.block_on(until_interrupted(
        "while the nodes boot and are provisioned: they keep running; `lab up` goes on where it stopped (done steps are kept), `lab down` removes the lab",
        async {
            let guests = ready(t, &ctx, timeouts, progress).await?;
            let steps =
                guests::provision(t, &ctx, &guests, &Default::default(), progress)
                    .await?;
            let start = std::time::Instant::now();
            let (kind, name) = ("verify", "checks from compute1");
            progress.event(lifecycle::Work::running(kind, name).into());
            let checks = verify(t, &ctx, &guests, progress).await;
            let action = match &checks {
                Ok(_) => lifecycle::Action::Done,
                Err(_) => lifecycle::Action::Failed,
            };
            progress.event(lifecycle::Work::since(kind, name, action, start).into());
            Ok::<_, anyhow::Error>((steps, checks?))
        },
    ))?;
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
    if !lifecycle::list_snapshots(&hv, &t.lab)?
        .iter()
        .any(|s| s == lifecycle::UP_SNAPSHOT)
    {
        lifecycle::save_snapshot(&hv, &t.lab, lifecycle::UP_SNAPSHOT, progress)?;
        report.snapshot_saved = true;
    }
    Ok(report)
}
