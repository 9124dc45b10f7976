//! Reaching the nodes over SSH: targets from the lab and its secrets, readiness with the
//! serial console's tail on failure, provisioning and verification runs.

use crate::failure::Failure;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::failure::Context;

use super::Target as LabTarget;
use crate::guest::GuestError;
use crate::model::NetKind;
use crate::names;
use crate::progress::{Progress, StepEvent};
use crate::provision::engine::{self, NodePlan, Selection};
use crate::provision::verify::{self, CheckResult};
use crate::render::RenderContext;
use crate::ssh::config::ConfigError;
use crate::ssh::{self, SshGuest, Timeouts};

/// The network namespace the nodes are reachable from, for test hosts whose libvirtd runs in
/// one (`LAB_NETNS`); unset on a workstation.
pub fn netns() -> Option<String> {
    std::env::var("LAB_NETNS").ok().filter(|s| !s.is_empty())
}

/// The jump to the libvirt host of a `qemu+ssh://` URI, with the user's ssh settings
/// (`~/.ssh/config`, `~/.ssh/known_hosts`, the agent); `None` for a local URI.
pub fn jump(uri: &str) -> Result<Option<Arc<ssh::Jump>>, ConfigError> {
    let dest = ssh::config::remote_host(uri)?;
    Ok(dest.map(|d| Arc::new(ssh::Jump::new(d, ssh::UserSsh::from_env()))))
}

/// SSH targets of every node: the external address, the lab user, the pinned host key; for a
/// remote libvirt host, one jump shared by all.
pub fn ssh_targets(t: &LabTarget, ctx: &RenderContext) -> Result<Vec<ssh::Target>, ConfigError> {
    let via = jump(&t.uri)?;
    let targets = t.lab.nodes.iter().map(|node| ssh::Target {
        node: node.name.clone(),
        addr: SocketAddr::new(t.lab.nic_of(node, NetKind::Nat).address.into(), 22),
        user: t.lab.user.clone(),
        user_key: ctx.secrets.user_key.private_openssh.clone(),
        host_key: ctx.secrets.host_keys[&node.name].public_openssh.clone(),
        netns: netns(),
        via: via.clone(),
        log: t.state.dir().join(names::node_log(&node.name)),
        ready_marker: ssh::BOOT_FINISHED.to_string(),
    });
    Ok(targets.collect())
}

/// Waits until every node answers SSH and cloud-init has finished; connects to each.
/// Each node's readiness is reported to `progress` as it comes, timed from the call.
pub async fn ready(
    t: &LabTarget,
    ctx: &RenderContext,
    timeouts: &Timeouts,
    progress: &dyn Progress,
) -> crate::failure::Result<Vec<SshGuest>> {
    std::fs::create_dir_all(t.state.dir().join("logs"))
        .context("cannot create the lab's log directory")?;
    let targets = ssh_targets(t, ctx)?;
    let start = std::time::Instant::now();
    let waits = targets.iter().map(|target| async move {
        progress.event(crate::progress::Work::running("node", &target.node).into());
        let r = ssh::wait_ready(target, timeouts).await;
        let action = match r {
            Ok(_) => crate::progress::Action::Ready,
            Err(_) => crate::progress::Action::Failed,
        };
        let work = crate::progress::Work::since("node", &target.node, action, start);
        progress.event(work.into());
        r
    });
    let results = futures::future::join_all(waits).await;
    let mut guests = Vec::new();
    for (target, r) in targets.iter().zip(results) {
        match r {
            Ok(g) => guests.push(g),
            Err(e) => return Err(not_ready(e, || super::serial_tail(t, &target.node, 25))),
        }
    }
    Ok(guests)
}

/// Why a node is not ready, cause first: a readiness timeout with the serial console's tail
/// (from `tail`, read only then), anything else (a refused host key) as it is.
pub fn not_ready(cause: GuestError, tail: impl FnOnce() -> Option<String>) -> Failure {
    match cause {
        GuestError::Timeout { .. } => {
            let tail = tail().unwrap_or_else(|| "log is not on this machine".into());
            NodeError::NotReady { cause, tail }.into()
        }
        other => other.into(),
    }
}

/// Runs the selected provisioning steps on the connected nodes, from `start`.
pub async fn provision(
    t: &LabTarget,
    ctx: &RenderContext,
    guests: &[SshGuest],
    sel: &Selection,
    start: engine::Start,
    progress: &dyn Progress,
) -> crate::failure::Result<Vec<StepEvent>> {
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
    Ok(engine::run(&plans, &ctx.secrets, start, progress).await?)
}

/// Runs `lab verify`'s checks: all, or those of `steps` (already validated, see
/// [`verify::select`]).
pub async fn verify(
    t: &LabTarget,
    ctx: &RenderContext,
    guests: &[SshGuest],
    checks: &[verify::Check],
    progress: &dyn Progress,
) -> Result<Vec<CheckResult>, GuestError> {
    verify::run(&t.lab, checks, guests, &ctx.secrets, progress).await
}

/// A node SSH cannot reach: not run by libvirt (said at once, instead of after an SSH
/// timeout), or not ready in time.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{node} is not running (domain {domain} is {state} on {uri}): `lab up` starts it")]
    NotRunning {
        node: String,
        domain: String,
        state: String,
        uri: String,
    },
    /// Found by the watch over the domains while the nodes were provisioned.
    #[error(
        "{node} stopped while it was provisioned (domain {domain} is {state} on {uri}): `lab up` starts it and goes on"
    )]
    Stopped {
        node: String,
        domain: String,
        state: String,
        uri: String,
    },
    #[error("{node} does not exist (no domain {domain} on {uri}): `lab up` creates it")]
    Missing {
        node: String,
        domain: String,
        uri: String,
    },
    /// A readiness timeout; `tail` is the serial console's end, where boot problems show.
    #[error("{cause}; its serial console {tail}")]
    NotReady { cause: GuestError, tail: String },
}

/// A node that is not ready is the node's problem; one stopped or missing is the host's.
impl crate::failure::Classify for NodeError {
    fn class(&self) -> crate::failure::ExitClass {
        match self {
            NodeError::NotReady { .. } => crate::failure::ExitClass::Guest,
            _ => crate::failure::ExitClass::Host,
        }
    }
}

/// Fails, cause first, unless libvirt runs node `node`'s domain.
pub fn require_running(
    t: &LabTarget,
    hv: &dyn crate::libvirt::Hypervisor,
    node: &str,
) -> crate::failure::Result<()> {
    let domain = t.domain(node)?;
    let found = hv.domains()?.into_iter().find(|d| d.name == domain);
    let (node, uri) = (node.to_string(), t.uri.clone());
    match found.map(|d| d.state) {
        Some(crate::libvirt::RunState::Running) => Ok(()),
        Some(state) => Err(NodeError::NotRunning {
            node,
            domain,
            state: state_words(state).into(),
            uri,
        }
        .into()),
        None => Err(NodeError::Missing { node, domain, uri }.into()),
    }
}

/// A domain's state as a node error says it: `paused`, `shut off`, `not running`.
pub fn state_words(state: crate::libvirt::RunState) -> &'static str {
    use crate::libvirt::RunState;
    match state {
        RunState::Paused => "paused",
        RunState::ShutOff => "shut off",
        _ => "not running",
    }
}

/// The command line `lab ssh NODE -- WORDS...` runs, as OpenSSH builds it: the words joined
/// with single spaces, for the remote shell to run as one line (so `'a | b'` is a pipeline
/// and `touch /root/x` two words).
pub fn remote_command(words: &[String]) -> String {
    words.join(" ")
}

/// A guest or check failure, reported as such (exit status 4).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GuestProblem(pub String);

impl crate::failure::Classify for GuestProblem {
    fn class(&self) -> crate::failure::ExitClass {
        crate::failure::ExitClass::Guest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_line(e: &Failure) -> String {
        format!("{e:#}").lines().next().unwrap().to_string()
    }

    #[test]
    fn a_refused_host_key_is_the_first_line_and_brings_no_boot_log() {
        let cause = GuestError::HostKey {
            node: "controller".into(),
            got: "ssh-ed25519 AAAAgot".into(),
            want: "ssh-ed25519 AAAAwant".into(),
        };
        let mut tail_read = false;
        let e = not_ready(cause, || {
            tail_read = true;
            Some("boot log".into())
        });
        let text = format!("{e:#}");
        assert!(
            first_line(&e).starts_with(
                "controller: host key ssh-ed25519 AAAAgot is not the lab's pinned key"
            ),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!tail_read && !text.contains("serial console"), "{text}");
        assert!(e.downcast_ref::<GuestError>().is_some());
    }

    #[test]
    fn a_readiness_timeout_leads_with_its_cause_then_the_serial_console() {
        let cause = GuestError::Timeout {
            node: "controller".into(),
            what: "waiting for the node to be ready (reached: no answer on the ssh port yet; last: none)".into(),
            secs: 900,
        };
        let e = not_ready(cause, || {
            Some("/var/log/x-serial.log (last 2 lines):\nline 1\nline 2".into())
        });
        assert_eq!(
            first_line(&e),
            "controller: waiting for the node to be ready (reached: no answer on the ssh port yet; last: none) timed out after 900s; its serial console /var/log/x-serial.log (last 2 lines):"
        );
        assert!(format!("{e:#}").ends_with("line 1\nline 2"));
    }

    #[test]
    fn the_remote_command_joins_words_with_spaces_as_openssh_does() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            remote_command(&words(&["systemctl status x | head"])),
            "systemctl status x | head"
        );
        assert_eq!(
            remote_command(&words(&["touch", "/root/x"])),
            "touch /root/x"
        );
        assert_eq!(
            remote_command(&words(&["echo", "'a  b'", ";", "id", "-u"])),
            "echo 'a  b' ; id -u"
        );
    }
}
