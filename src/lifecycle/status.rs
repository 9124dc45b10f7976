//! `lab status`: derived from libvirt at each call, never from a cached flag.

use serde::Serialize;

use super::inventory::Inventory;
use super::{Hv, LifecycleError};
use crate::libvirt::RunState;
use crate::model::Lab;
use crate::names;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub lab: String,
    pub uri: String,
    pub nodes: Vec<NodeStatus>,
    pub networks: Vec<NetworkStatus>,
    /// The pool exists, and how many volumes it holds.
    pub pool: Option<usize>,
    /// The log pool exists, and how many serial console logs it holds.
    pub log_pool: Option<usize>,
    /// Snapshots every node has (lab-wide ones).
    pub snapshots: Vec<String>,
    /// Objects with the lab's names that belong to someone else.
    pub foreign: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    pub name: String,
    pub domain: String,
    /// `None`: not defined.
    pub state: Option<RunState>,
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkStatus {
    pub name: String,
    pub libvirt_name: String,
    /// `None`: not defined; `Some(active)`.
    pub active: Option<bool>,
}

impl Status {
    /// Nothing of the lab exists.
    pub fn is_gone(&self) -> bool {
        self.nodes.iter().all(|n| n.state.is_none())
            && self.networks.iter().all(|n| n.active.is_none())
            && self.pool.is_none()
            && self.log_pool.is_none()
    }
}

pub fn status(hv: Hv, lab: &Lab) -> Result<Status, LifecycleError> {
    let inv = Inventory::read(hv, &lab.name, None)?;
    let ours = inv.our_domain_names(&lab.name);
    let nodes = lab
        .nodes
        .iter()
        .map(|n| {
            let domain = names::domain(&lab.name, &n.name);
            let state = inv
                .domain(&domain)
                .filter(|_| ours.contains(&domain))
                .map(|d| d.state);
            let addresses = n
                .nics
                .iter()
                .map(|c| format!("{}={}", c.network, c.address))
                .collect();
            NodeStatus {
                name: n.name.clone(),
                domain,
                state,
                addresses,
            }
        })
        .collect();
    let our_nets: Vec<String> = inv
        .our_networks(&lab.name)
        .iter()
        .map(|(n, _)| n.name.clone())
        .collect();
    let networks = lab
        .networks
        .iter()
        .map(|n| {
            let libvirt_name = names::network(&lab.name, &n.name);
            let active = inv
                .network(&libvirt_name)
                .filter(|_| our_nets.contains(&libvirt_name))
                .map(|f| f.state);
            NetworkStatus {
                name: n.name.clone(),
                libvirt_name,
                active,
            }
        })
        .collect();
    let snapshots = common_snapshots(hv, &ours)?;
    let foreign = inv.clashes(lab).into_iter().filter_map(|c| match c {
        super::Clash::Foreign { kind, name } => Some(format!("{kind} {name}")),
        _ => None,
    });
    Ok(Status {
        lab: lab.name.clone(),
        uri: hv.uri().to_string(),
        nodes,
        networks,
        pool: inv.pool.as_ref().map(|p| p.volumes.len()),
        log_pool: inv.log_pool.as_ref().map(|p| p.volumes.len()),
        snapshots,
        foreign: foreign.collect(),
    })
}

/// Snapshot names present on every given domain, in the first domain's order.
pub(super) fn common_snapshots(hv: Hv, domains: &[String]) -> Result<Vec<String>, LifecycleError> {
    let mut lists = Vec::new();
    for d in domains {
        lists.push(hv.snapshots(d)?);
    }
    let Some((first, rest)) = lists.split_first() else {
        return Ok(Vec::new());
    };
    Ok(first
        .iter()
        .filter(|s| rest.iter().all(|l| l.contains(s)))
        .cloned()
        .collect())
}
