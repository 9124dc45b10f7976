//! `lab stop` and `lab start` under the lab's lock: the nodes saved or powered off, and back,
//! with every clock set and chrony following its source again, so `lab verify` passes at once.

use super::clock::settle_clocks;
use super::{Target, check_owner, guests, runtime, until_interrupted};
use crate::guest::Guest;
use crate::libvirt::Libvirt;
use crate::lifecycle::{self, Progress, StartReport, StopMode, StopReport};
use crate::render::Accel;
use crate::ssh::Timeouts;

/// `lab stop`: every node's memory saved to the host's disk (or, with
/// [`StopMode::Shutdown`], its guest powered off); the networks and snapshots stay.
pub fn stop(
    t: &Target,
    mode: StopMode,
    progress: &dyn Progress,
) -> crate::failure::Result<StopReport> {
    let _lock = t.state.lock("stop")?;
    let hv = t.connect()?;
    check_owner(t, &hv)?;
    Ok(lifecycle::stop(&hv, &t.lab, mode, progress)?)
}

/// What `lab start` did.
#[derive(Debug)]
pub struct Started {
    pub libvirt: StartReport,
    /// A `lab start` cut short was finished (its nodes waited for, their clocks set).
    pub resumed_start: bool,
}

/// `lab start`: the lab's inactive pools and networks started, every node restored, resumed
/// or booted; then, on every node it changed, the clock set and chrony following its
/// source again (and on a booted one, its services started), so `lab verify` passes at once.
pub fn start(
    t: &Target,
    timeouts: &Timeouts,
    progress: &dyn Progress,
) -> crate::failure::Result<Started> {
    let _lock = t.state.lock("start")?;
    let hv = t.connect()?;
    check_owner(t, &hv)?;
    start_locked(t, &hv, timeouts, progress)
}

/// [`start`] with the lab's lock held (by `lab start`, or by `lab up` of a stopped lab).
pub(super) fn start_locked(
    t: &Target,
    hv: &Libvirt,
    timeouts: &Timeouts,
    progress: &dyn Progress,
) -> crate::failure::Result<Started> {
    use crate::names::state::START_PENDING;
    // A start cut short left its nodes running, maybe booting, with their old clocks.
    let pending = t.state.has(START_PENDING);
    t.state.write(START_PENDING, b"a `lab start` began\n")?;
    let report = lifecycle::start(hv, &t.lab, progress)?;
    let booting: Vec<String> = if pending {
        t.lab
            .nodes
            .iter()
            .map(|n| crate::names::domain(&t.lab.name, &n.name))
            .collect()
    } else {
        report.booted.clone()
    };
    if !booting.is_empty() {
        wait_booted(t, &booting, timeouts, progress)?;
    }
    if report.changed() || pending {
        settle_clocks(t, hv, &report.clock_due(), "lab start", progress)?;
    }
    t.state.remove_file(START_PENDING)?;
    Ok(Started {
        libvirt: report,
        resumed_start: pending,
    })
}

/// Waits until every node answers SSH, then until the booted ones' services have started.
fn wait_booted(
    t: &Target,
    booted: &[String],
    timeouts: &Timeouts,
    progress: &dyn Progress,
) -> crate::failure::Result<()> {
    let ctx = t.context(Accel::Tcg)?;
    runtime()?.block_on(until_interrupted(
        "while the nodes boot: they keep booting; `lab start` goes on",
        async {
            let nodes = guests::ready(t, &ctx, timeouts, progress).await?;
            let waits = nodes.iter().filter(|g| {
                let domain = crate::names::domain(&t.lab.name, g.node());
                booted.contains(&domain)
            });
            let waits = waits.map(|g| boot_wait(g, progress));
            for r in futures::future::join_all(waits).await {
                r?;
            }
            Ok(())
        },
    ))
}

/// One booted node: systemd's boot finished (`services NODE ready`).
async fn boot_wait(
    g: &crate::ssh::SshGuest,
    progress: &dyn Progress,
) -> crate::failure::Result<()> {
    let start = std::time::Instant::now();
    progress.event(lifecycle::Work::running("services", g.node()).into());
    let out = g.run(crate::provision::BOOT_WAIT).await?;
    if !out.success() {
        progress.event(
            lifecycle::Work::since("services", g.node(), lifecycle::Action::Failed, start).into(),
        );
        return Err(guests::GuestProblem(format!(
            "{}: its services did not start within 300 s of its boot ({}): see `lab console {}` or `lab ssh {} systemctl --failed`, then run `lab start` again",
            g.node(),
            out.tail(3).trim(),
            g.node(),
            g.node()
        ))
        .into());
    }
    let ready = lifecycle::Action::Ready;
    progress.event(lifecycle::Work::since("services", g.node(), ready, start).into());
    Ok(())
}
