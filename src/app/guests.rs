//! Reaching the nodes over SSH: targets from the lab and its secrets, readiness with the
//! serial console's tail on failure, provisioning and verification runs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::Target as LabTarget;
use crate::guest::GuestError;
use crate::model::NetKind;
use crate::names;
use crate::provision::engine::{self, NodePlan, Selection, StepEvent, StepProgress};
use crate::provision::verify::{self, CheckResult};
use crate::render::RenderContext;
use crate::ssh::{self, SshGuest, Timeouts};

/// The network namespace the nodes are reachable from, for test hosts whose libvirtd runs in
/// one (`LAB_NETNS`); unset on a workstation.
pub fn netns() -> Option<String> {
    std::env::var("LAB_NETNS").ok().filter(|s| !s.is_empty())
}

/// SSH targets of every node: the external address, the lab user, the pinned host key.
pub fn ssh_targets(t: &LabTarget, ctx: &RenderContext) -> Vec<ssh::Target> {
    t.lab
        .nodes
        .iter()
        .map(|node| ssh::Target {
            node: node.name.clone(),
            addr: SocketAddr::new(t.lab.nic_of(node, NetKind::Nat).address.into(), 22),
            user: t.lab.user.clone(),
            user_key: ctx.secrets.user_key.private_openssh.clone(),
            host_key: ctx.secrets.host_keys[&node.name].public_openssh.clone(),
            netns: netns(),
            log: t.state.dir().join(names::node_log(&node.name)),
            ready_marker: ssh::BOOT_FINISHED.to_string(),
        })
        .collect()
}

/// The last lines of a node's serial console log, when it is on this machine.
pub fn serial_tail(t: &LabTarget, ctx: &RenderContext, node: &str, lines: usize) -> Option<String> {
    let path: PathBuf = ctx.log_dir.join(names::serial_log(&t.lab.name, node));
    let text = std::fs::read_to_string(&path).ok()?;
    let all: Vec<&str> = text.lines().collect();
    Some(format!(
        "{} (last {lines} lines):\n{}",
        path.display(),
        all[all.len().saturating_sub(lines)..].join("\n")
    ))
}

/// Waits until every node answers SSH and cloud-init has finished; connects to each.
/// Each node's readiness is reported to `progress` as it comes, timed from the call.
pub async fn ready(
    t: &LabTarget,
    ctx: &RenderContext,
    timeouts: &Timeouts,
    progress: &dyn crate::lifecycle::Progress,
) -> anyhow::Result<Vec<SshGuest>> {
    std::fs::create_dir_all(t.state.dir().join("logs"))
        .context("cannot create the lab's log directory")?;
    let targets = ssh_targets(t, ctx);
    let start = std::time::Instant::now();
    let waits = targets.iter().map(|target| async move {
        progress.event(crate::lifecycle::Event::running("node", &target.node));
        let r = ssh::wait_ready(target, timeouts).await;
        let (kind, name) = ("node", target.node.clone());
        let action = match r {
            Ok(_) => crate::lifecycle::Action::Ready,
            Err(_) => crate::lifecycle::Action::Failed,
        };
        progress.event(crate::lifecycle::Event {
            kind,
            name,
            action,
            elapsed: start.elapsed(),
        });
        r
    });
    let results = futures::future::join_all(waits).await;
    let mut guests = Vec::new();
    for (target, r) in targets.iter().zip(results) {
        match r {
            Ok(g) => guests.push(g),
            Err(e) => {
                let tail = serial_tail(t, ctx, &target.node, 25)
                    .unwrap_or_else(|| "(serial console log not on this machine)".into());
                return Err(anyhow::Error::new(e).context(format!(
                    "{} is not ready; its serial console:\n{tail}",
                    target.node
                )));
            }
        }
    }
    Ok(guests)
}

/// Runs the selected provisioning steps on the connected nodes.
pub async fn provision(
    t: &LabTarget,
    ctx: &RenderContext,
    guests: &[SshGuest],
    sel: &Selection,
    progress: &dyn StepProgress,
) -> anyhow::Result<Vec<StepEvent>> {
    let chosen = engine::select(&t.lab, sel)?;
    let plans: Vec<NodePlan<SshGuest>> = chosen
        .into_iter()
        .filter_map(|(node, steps)| {
            let guest = guests
                .iter()
                .find(|g| crate::guest::Guest::node(*g) == node)?;
            Some(NodePlan { guest, steps })
        })
        .collect();
    Ok(engine::run(&plans, &ctx.secrets, progress).await?)
}

/// Runs `lab verify`'s checks.
pub async fn verify(
    t: &LabTarget,
    ctx: &RenderContext,
    guests: &[SshGuest],
) -> Result<Vec<CheckResult>, GuestError> {
    verify::run(&t.lab, guests, &ctx.secrets).await
}

/// A guest or check failure, reported as such (exit status 4).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GuestProblem(pub String);

/// Sets every node's clock over SSH and makes chrony poll at once. Returns the nodes it could
/// not reach or fix, with why.
pub async fn resync_clocks(
    t: &LabTarget,
    ctx: &RenderContext,
    progress: &dyn crate::lifecycle::Progress,
) -> Vec<(String, String)> {
    // Right after a revert the node answers within a second or so: poll it closely.
    let timeouts = Timeouts {
        ready: Duration::from_secs(20),
        connect: Duration::from_secs(3),
        poll: Duration::from_millis(250),
        ..Default::default()
    };
    let targets = ssh_targets(t, ctx);
    let runs = targets.iter().map(|target| async move {
        let start = std::time::Instant::now();
        let guest = ssh::wait_ready(target, &timeouts)
            .await
            .map_err(|e| e.to_string())?;
        let script = crate::provision::clock_resync(std::time::SystemTime::now());
        let out = crate::guest::Guest::run(&guest, &script)
            .await
            .map_err(|e| e.to_string())?;
        if !out.success() {
            return Err(format!("clock not set over ssh: {}", out.tail(3)));
        }
        let (kind, name, action) = (
            "clock",
            target.node.clone(),
            crate::lifecycle::Action::ClockSet,
        );
        progress.event(crate::lifecycle::Event {
            kind,
            name,
            action,
            elapsed: start.elapsed(),
        });
        Ok(())
    });
    let results = futures::future::join_all(runs).await;
    targets
        .iter()
        .zip(results)
        .filter_map(|(target, r)| r.err().map(|why| (target.node.clone(), why)))
        .collect()
}
