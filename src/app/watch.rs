//! A watch over the lab's domains while its nodes are provisioned over SSH: a node powered
//! off, crashed or paused meanwhile ends the work at once with its state named, instead of
//! after the SSH keepalive gives up (a minute) with no word of the node.

use crate::failure::Failure;
use std::future::Future;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use tokio::sync::oneshot;

use super::guests::{NodeError, state_words};
use crate::guest::{GuestError, JumpKind};
use crate::libvirt::{Found, Hypervisor, RunState};
use crate::model::{Lab, Node};
use crate::names;
use crate::provision::engine::ProvisionError;

/// How often the watch reads the domains.
const POLL: Duration = Duration::from_secs(1);

/// Runs `work` on `rt` while a plain thread (libvirt calls block: never on an async worker)
/// reads the lab's domains about every second through `hv`: a node whose domain does not
/// run ends `work` within seconds ([`Judge`]) with [`NodeError::Stopped`] (down from the
/// first reading, before the work got far: [`NodeError::NotRunning`]). A lost libvirt connection ends only the watch:
/// the guests run on and `work` goes on; but when `work` then fails for want of the nodes'
/// SSH, and `hv` reaches a remote host, the link to that host is what failed ([`HostLost`]).
/// Without `hv`, `work` runs unwatched.
pub fn watching<T>(
    lab: &Lab,
    hv: Option<&dyn Hypervisor>,
    rt: &tokio::runtime::Runtime,
    work: impl Future<Output = crate::failure::Result<T>>,
) -> crate::failure::Result<T> {
    let Some(hv) = hv else {
        return rt.block_on(work);
    };
    let (found, stopped) = oneshot::channel();
    let (done, end) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let watcher = s.spawn(move || watch(lab, hv, found, end));
        let out = rt.block_on(async {
            tokio::select! {
                out = work => out,
                Ok(e) = stopped => Err(e.into()),
            }
        });
        // Ends the watch (at once, not at its next reading); the scope waits for it.
        drop(done);
        let lost = watcher.join().unwrap_or(false) || !hv.is_alive();
        out.map_err(|e| host_lost(hv.uri(), lost, e))
    })
}

/// The watch: reads the domains until a node does not run (sent on `found`), `end` is
/// dropped, or the connection is lost (then it returns `true`).
fn watch(
    lab: &Lab,
    hv: &dyn Hypervisor,
    found: oneshot::Sender<NodeError>,
    end: mpsc::Receiver<()>,
) -> bool {
    let mut judge = Judge::default();
    loop {
        match hv.domains() {
            Ok(domains) => {
                if let Some(e) = judge.read(lab, hv.uri(), &domains) {
                    let _ = found.send(e);
                    return false;
                }
            }
            Err(e) if e.is_connection_lost() => return true,
            // Another failed reading (a domain removed while listed): the next one may do.
            Err(_) => {}
        }
        if end.recv_timeout(POLL) != Err(RecvTimeoutError::Timeout) {
            return false;
        }
    }
}

/// The libvirt host of a remote lab went out of reach while its nodes were worked on: its
/// libvirt connection was lost, and the nodes' SSH (through that host) with it.
#[derive(Debug, thiserror::Error)]
#[error(
    "lost the libvirt host {host}: the libvirt connection to {uri} and the nodes' ssh through it dropped while the nodes were provisioned; once the host answers again, `lab up` goes on (done steps are kept)\n{nodes}"
)]
pub struct HostLost {
    pub host: String,
    pub uri: String,
    /// What the work's error said of the nodes.
    pub nodes: String,
}

impl crate::failure::Classify for HostLost {
    fn class(&self) -> crate::failure::ExitClass {
        crate::failure::ExitClass::Host
    }
}

/// `e`, the work's error, or [`HostLost`] when it is the nodes' SSH failing while the
/// connection to the remote libvirt host at `uri` was `lost` too.
pub fn host_lost(uri: &str, lost: bool, e: Failure) -> Failure {
    let Ok(Some(host)) = crate::ssh::config::remote_host(uri) else {
        return e;
    };
    if !lost || !cut_off(&e) {
        return e;
    }
    HostLost {
        host: host.host,
        uri: uri.to_string(),
        nodes: format!("{e:#}"),
    }
    .into()
}

/// Whether `e` is the nodes' SSH connections failing (lost, timed out, not reached), every
/// other failure of it a step waiting on one of those.
fn cut_off(e: &Failure) -> bool {
    if let Some(g) = e.downcast_ref::<GuestError>() {
        return link_failed(g);
    }
    if let Some(NodeError::NotReady { cause, .. }) = e.downcast_ref::<NodeError>() {
        return link_failed(cause);
    }
    match e.downcast_ref::<ProvisionError>() {
        Some(ProvisionError::Guest(g)) => link_failed(g),
        Some(ProvisionError::Failed(all)) => {
            let link = |p: &ProvisionError| matches!(p, ProvisionError::Guest(g) if link_failed(g));
            all.iter().any(link)
                && all
                    .iter()
                    .all(|p| link(p) || matches!(p, ProvisionError::DependencyFailed { .. }))
        }
        _ => false,
    }
}

fn link_failed(g: &GuestError) -> bool {
    matches!(
        g,
        GuestError::Lost { .. }
            | GuestError::Channel { .. }
            | GuestError::Timeout { .. }
            | GuestError::Connect { .. }
            | GuestError::Jump {
                kind: JumpKind::Connect,
                ..
            }
    )
}

/// The watch's judgement over its readings of the domains: a node found not running (or
/// gone) at two readings in a row ends the work. One reading may catch the moment of a
/// `virsh reboot` when the guest is down and not yet reset.
#[derive(Debug, Default)]
pub struct Judge {
    readings: usize,
    /// The node found not running at the last reading, and whether that was the first.
    suspect: Option<(String, bool)>,
}

impl Judge {
    /// Takes one reading of the domains on `uri`: the error that ends the work, if any.
    pub fn read(&mut self, lab: &Lab, uri: &str, domains: &[Found<RunState>]) -> Option<NodeError> {
        let first = self.readings == 0;
        self.readings += 1;
        let Some((node, state)) = down(lab, domains) else {
            self.suspect = None;
            return None;
        };
        match self.suspect.take() {
            Some((seen, at_first)) if seen == node.name => {
                Some(error(lab, uri, node, state, at_first))
            }
            _ => {
                self.suspect = Some((node.name.clone(), first));
                None
            }
        }
    }
}

/// The first node whose domain does not run, with its state (`None`: it is gone).
fn down<'a>(lab: &'a Lab, domains: &[Found<RunState>]) -> Option<(&'a Node, Option<RunState>)> {
    lab.nodes.iter().find_map(|n| {
        let domain = names::domain(&lab.name, &n.name);
        match domains.iter().find(|d| d.name == domain).map(|d| d.state) {
            Some(RunState::Running) => None,
            state => Some((n, state)),
        }
    })
}

/// Node `node` found with its domain in `state` on `uri`; `first`: before the work began.
fn error(lab: &Lab, uri: &str, node: &Node, state: Option<RunState>, first: bool) -> NodeError {
    let domain = names::domain(&lab.name, &node.name);
    let (node, uri) = (node.name.clone(), uri.to_string());
    let Some(state) = state else {
        return NodeError::Missing { node, domain, uri };
    };
    let state = state_words(state).to_string();
    if first {
        NodeError::NotRunning {
            node,
            domain,
            state,
            uri,
        }
    } else {
        NodeError::Stopped {
            node,
            domain,
            state,
            uri,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> Lab {
        crate::model::debian_lab()
    }

    /// The lab's domains in these states, in node order, beside a foreign shut-off one.
    fn reading(lab: &Lab, states: &[RunState]) -> Vec<Found<RunState>> {
        let foreign = Found {
            name: "someone-elses-vm".to_string(),
            state: RunState::ShutOff,
            xml: String::new(),
        };
        let ours = lab.nodes.iter().zip(states).map(|(n, s)| Found {
            name: names::domain(&lab.name, &n.name),
            state: *s,
            xml: String::new(),
        });
        std::iter::once(foreign).chain(ours).collect()
    }

    /// Judges these readings in turn; the error of the last one.
    fn judged(lab: &Lab, readings: &[&[RunState]]) -> Option<NodeError> {
        let mut judge = Judge::default();
        let mut last = None;
        for states in readings {
            last = judge.read(lab, "qemu:///system", &reading(lab, states));
        }
        last
    }

    const UP: RunState = RunState::Running;

    #[test]
    fn running_nodes_go_on_whatever_else_the_host_runs() {
        let lab = lab();
        assert!(judged(&lab, &[&[UP, UP], &[UP, UP], &[UP, UP]]).is_none());
    }

    #[test]
    fn a_node_down_at_one_reading_only_goes_on_as_through_a_reboot() {
        let lab = lab();
        let blip = [UP, RunState::Other];
        assert!(judged(&lab, &[&[UP, UP], &blip, &[UP, UP], &blip]).is_none());
        assert!(judged(&lab, &[&blip, &[UP, UP]]).is_none());
    }

    #[test]
    fn a_node_powered_off_paused_or_crashed_meanwhile_is_named_with_its_state() {
        let lab = lab();
        let (controller, compute) = (&lab.nodes[0].name, &lab.nodes[1].name);
        let cases = [
            (RunState::ShutOff, "shut off"),
            (RunState::Paused, "paused"),
            (RunState::Other, "not running"),
            (RunState::Saved, "not running"),
        ];
        for (state, words) in cases {
            let e = judged(&lab, &[&[UP, UP], &[UP, state], &[UP, state]]).unwrap();
            assert_eq!(
                e.to_string(),
                format!(
                    "{compute} stopped while it was provisioned (domain lab-{}-{compute} is {words} on qemu:///system): `lab up` starts it and goes on",
                    lab.name
                )
            );
        }
        let off = [RunState::ShutOff, RunState::ShutOff];
        let e = judged(&lab, &[&[UP, UP], &off, &off]).unwrap();
        assert!(e.to_string().starts_with(&format!("{controller} stopped")));
    }

    fn lost(node: &str) -> ProvisionError {
        ProvisionError::Guest(GuestError::Lost {
            node: node.into(),
            what: "step mq, `apt-get update`".into(),
        })
    }

    const REMOTE: &str = "qemu+ssh://root@198.51.100.2/system";

    #[test]
    fn the_nodes_ssh_lost_with_a_remote_connection_is_the_host_lost() {
        let waiting = ProvisionError::DependencyFailed {
            node: "compute1".into(),
            step: "chrony",
            after_node: "controller".into(),
            after_step: "chrony",
        };
        let e = host_lost(
            REMOTE,
            true,
            ProvisionError::Failed(vec![lost("controller"), waiting]).into(),
        );
        let host = e.downcast_ref::<HostLost>().expect("the host lost");
        assert_eq!(host.host, "198.51.100.2");
        let text = e.to_string();
        let first = text.lines().next().unwrap();
        assert!(
            first.starts_with("lost the libvirt host 198.51.100.2: "),
            "{first}"
        );
        assert!(
            text.contains("- controller: ssh connection lost during step mq"),
            "{text}"
        );
        let one = host_lost(REMOTE, true, lost("controller").into());
        assert!(one.downcast_ref::<HostLost>().is_some(), "{one}");
    }

    #[test]
    fn other_failures_a_live_connection_or_a_local_host_stay_as_they_are() {
        let failed = ProvisionError::StepFailed {
            node: "controller".into(),
            step: "mq",
            command: "apt-get install",
            status: 100,
            tail: String::new(),
        };
        let cases: [(&str, bool, ProvisionError); 4] = [
            (REMOTE, true, failed.clone()),
            (
                REMOTE,
                true,
                ProvisionError::Failed(vec![lost("controller"), failed]),
            ),
            (REMOTE, false, lost("controller")),
            ("qemu:///system", true, lost("controller")),
        ];
        for (uri, gone, e) in cases {
            let want = e.clone();
            let out = host_lost(uri, gone, e.into());
            assert_eq!(
                out.downcast_ref::<ProvisionError>(),
                Some(&want),
                "{uri} {gone}"
            );
        }
    }

    #[test]
    fn a_node_down_before_the_work_or_gone_says_so() {
        let lab = lab();
        let compute = &lab.nodes[1].name;
        let off = [UP, RunState::ShutOff];
        let e = judged(&lab, &[&off, &off]).unwrap();
        assert!(matches!(e, NodeError::NotRunning { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with(&format!("{compute} is not running (domain")),
            "{e}"
        );
        let e = judged(&lab, &[&[UP, UP], &[UP], &[UP]]).unwrap();
        assert!(matches!(e, NodeError::Missing { .. }), "{e:?}");
    }
}
