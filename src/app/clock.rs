//! The clocks after a revert or a restore (`lab reset`, `lab start`): over SSH on every node
//! at once, each clock moved to the host's, chrony made to follow its source again, each
//! clock read back. What a clock reading is and the guest's scripts: [`crate::clock`]; the
//! line they run on: [`crate::ssh::ClockLine`].

use std::time::Duration;

use super::guests::{GuestProblem, ssh_targets};
use super::{Target, runtime, until_interrupted};
use crate::clock;
use crate::guest::GuestError;
use crate::libvirt::LibvirtError;
use crate::lifecycle::{self, Hv, Progress};
use crate::model::Role;
use crate::names;
use crate::render::{Accel, RenderContext};
use crate::ssh::{self, SshGuest, Timeouts};

/// After a revert or a restore of the domains `due`: each clock set through the guest agent
/// while SSH reaches every node, then on every node over SSH each clock moved to the host's,
/// chrony made to follow its source again, each clock read back. A domain whose clock the
/// guest agent could not set is named in the error only when SSH could not set it either;
/// `again` is the command to run again.
pub(super) fn settle_clocks(
    t: &Target,
    hv: Hv,
    due: &[String],
    again: &str,
    progress: &dyn Progress,
) -> crate::failure::Result<()> {
    let ctx = t.context(Accel::Tcg)?;
    let rt = runtime()?;
    let (wrong, agent_failed) = std::thread::scope(|s| {
        let (agent_tx, agent) = tokio::sync::oneshot::channel();
        s.spawn(move || agent_tx.send(lifecycle::set_clocks(hv, due, progress)));
        rt.block_on(until_interrupted(
            &format!("while the clocks were set: the nodes run; `{again}` sets them"),
            async { Ok(resync_clocks(t, &ctx, agent, progress).await) },
        ))
    })?;
    let Some((first, _)) = wrong.first() else {
        return Ok(());
    };
    let agent = |node: &str| {
        let d = names::domain(&t.lab.name, node);
        agent_failed.iter().find(|(u, _)| *u == d).map(|(_, e)| e)
    };
    let lines: Vec<String> = wrong
        .iter()
        .map(|(node, why)| match agent(node) {
            Some(e) => format!("{node}: {why} (the guest agent failed too: {e})"),
            None => format!("{node}: {why}"),
        })
        .collect();
    Err(GuestProblem(format!(
        "{}: see `lab logs {first} --provision`, then run `{again}` again",
        lines.join("; ")
    ))
    .into())
}

/// The domains whose clock the guest agent could not set, with why, once it is done.
type AgentDone = tokio::sync::oneshot::Receiver<Vec<(String, LibvirtError)>>;

/// After a revert, on every node at once over SSH: each node reached while the guest agent
/// sets the clocks (`agent`); once it is done, every clock to the host's, measured and moved
/// over one open channel ([`ssh::ClockLine`]; the agent's is a second or so behind, or not
/// set at all); then chrony follows its source again (on compute nodes: until it does) and
/// each clock is read back against the host's. Returns the nodes that are not right, with
/// why, and what the agent could not set.
async fn resync_clocks(
    t: &Target,
    ctx: &RenderContext,
    agent: AgentDone,
    progress: &dyn Progress,
) -> (Vec<(String, String)>, Vec<(String, LibvirtError)>) {
    // Right after a revert the node answers within a second or so: poll it closely.
    let timeouts = Timeouts {
        ready: Duration::from_secs(60),
        connect: Duration::from_secs(3),
        poll: Duration::from_millis(250),
        ..Default::default()
    };
    let targets = match ssh_targets(t, ctx) {
        Ok(targets) => targets,
        Err(e) => {
            let why = |n: &crate::model::Node| (n.name.clone(), e.to_string());
            return (
                t.lab.nodes.iter().map(why).collect(),
                agent.await.unwrap_or_default(),
            );
        }
    };
    let reach = targets.iter().map(|target| async move {
        let start = std::time::Instant::now();
        let guest = ssh::wait_ready(target, &timeouts)
            .await
            .map_err(|e| format!("not reachable after the revert: {e}"));
        (guest, start)
    });
    // The agent's set lands before SSH's: SSH's is the precise one.
    let (reached, agent_failed) = futures::join!(futures::future::join_all(reach), agent);
    let set = targets
        .iter()
        .zip(reached)
        .map(|(target, (guest, start))| set_reached(t, target, guest, start, progress));
    // Every clock is right before any chrony measures its source (a compute node's is the
    // controller).
    let guests = futures::future::join_all(set).await;
    let resync = targets
        .iter()
        .zip(&guests)
        .map(|(target, guest)| async move {
            resync_and_read(
                t,
                &target.node,
                guest.as_ref().map_err(Clone::clone)?,
                progress,
            )
            .await
        });
    let results = futures::future::join_all(resync).await;
    let wrong = targets
        .iter()
        .zip(results)
        .filter_map(|(target, r)| r.err().map(|why| (target.node.clone(), why)))
        .collect();
    (wrong, agent_failed.unwrap_or_default())
}

/// Moves a node reached right after its revert to the host's clock (a `clock ... set`
/// event since `start`, named by domain as the guest agent's are, when it moved it).
async fn set_reached(
    t: &Target,
    target: &ssh::Target,
    guest: Result<SshGuest, String>,
    start: std::time::Instant,
    progress: &dyn Progress,
) -> Result<SshGuest, String> {
    let guest = guest?;
    if set_clock(&guest).await.map_err(|e| e.to_string())? {
        let domain = names::domain(&t.lab.name, &target.node);
        let set = crate::progress::Action::ClockSet;
        progress.event(crate::progress::Work::since("clock", &domain, set, start).into());
    }
    Ok(guest)
}

/// Makes the node's chrony follow its source again (a compute node: the controller), then
/// reads its clock back against the host's.
async fn resync_and_read(
    t: &Target,
    node: &str,
    guest: &SshGuest,
    progress: &dyn Progress,
) -> Result<(), String> {
    let start = std::time::Instant::now();
    let controller = t.lab.internal_address(t.lab.controller());
    let follow = t
        .lab
        .nodes
        .iter()
        .any(|n| n.name == node && follows_a_node(n.role))
        .then_some(controller);
    let out = crate::guest::Guest::run(guest, &clock::clock_resync(follow))
        .await
        .map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(format!(
            "chrony does not follow its source after the revert: {}",
            out.tail(8)
        ));
    }
    let ready = crate::progress::Action::Ready;
    progress.event(crate::progress::Work::since("chrony", node, ready, start).into());
    let reading = read_clock(guest).await.map_err(|e| e.to_string())?;
    if reading.too_far() {
        let (offset, half) = reading.offset();
        return Err(format!(
            "clock {offset:+.3} s off the host's (read within ±{half:.3} s), more than {} s",
            clock::MAX_CLOCK_OFFSET
        ));
    }
    Ok(())
}

/// How many readings a measurement takes (the one with the shortest round trip counts).
const READINGS: usize = 5;

/// Moves the node's clock to the host's until a measurement finds it within
/// [`clock::STEP_ABOVE`] (at most three moves). Returns whether it moved it.
async fn set_clock(guest: &SshGuest) -> Result<bool, GuestError> {
    let mut line = guest.clock_line().await?;
    let mut moved = false;
    for _ in 0..3 {
        let Some(by) = line.best_of(READINGS).await?.correction() else {
            break;
        };
        line.step(by).await?;
        moved = true;
    }
    line.close().await;
    Ok(moved)
}

/// The node's clock against the host's, over the clock line.
async fn read_clock(guest: &SshGuest) -> Result<clock::ClockReading, GuestError> {
    let mut line = guest.clock_line().await?;
    let reading = line.best_of(READINGS).await;
    line.close().await;
    reading
}

/// Whether a node's chrony follows another node of the lab (and so must follow it again
/// after a reset before `lab verify` can pass): the compute nodes follow the controller.
pub fn follows_a_node(role: Role) -> bool {
    role == Role::Compute
}
