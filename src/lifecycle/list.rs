//! `lab list`: every lab on a host (instances and class seats too), read from the owner
//! metadata `lab` writes into each domain and network: what libvirt holds now, whichever
//! machine or state directory made it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Hv, LifecycleError};
use crate::libvirt::{Found, RunState};
use crate::render::libvirt::read_owner;

/// One lab found on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabOnHost {
    /// The lab's name (an instance's is `<lab>-<instance>`).
    pub lab: String,
    /// Its nodes' domains, by node name.
    pub nodes: Vec<NodeOnHost>,
    /// Its networks (the lab's own names), by name.
    pub networks: Vec<String>,
    /// The identity of the state directory that made it, as its objects record it (`None`:
    /// objects made before identities were recorded).
    #[serde(skip)]
    pub state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeOnHost {
    pub name: String,
    pub state: RunState,
}

/// The labs the owner metadata of `domains` and `networks` names, by lab name; objects
/// without it (not `lab`'s) are left out.
pub fn labs_on_host(domains: &[Found<RunState>], networks: &[Found<bool>]) -> Vec<LabOnHost> {
    let mut found: BTreeMap<String, LabOnHost> = BTreeMap::new();
    fn lab(found: &mut BTreeMap<String, LabOnHost>, name: String) -> &mut LabOnHost {
        found.entry(name.clone()).or_insert_with(|| LabOnHost {
            lab: name,
            nodes: Vec::new(),
            networks: Vec::new(),
            state: None,
        })
    }
    for d in domains {
        let Some(owner) = read_owner(&d.xml) else {
            continue;
        };
        if let Some(node) = owner.node {
            let lab = lab(&mut found, owner.lab);
            lab.state = lab.state.take().or(owner.state);
            lab.nodes.push(NodeOnHost {
                name: node,
                state: d.state,
            });
        }
    }
    for n in networks {
        let Some(owner) = read_owner(&n.xml) else {
            continue;
        };
        if let Some(net) = owner.network {
            let lab = lab(&mut found, owner.lab);
            lab.state = lab.state.take().or(owner.state);
            lab.networks.push(net);
        }
    }
    found
        .into_values()
        .map(|mut lab| {
            lab.nodes.sort_by(|a, b| a.name.cmp(&b.name));
            lab.networks.sort();
            lab
        })
        .collect()
}

/// `lab list`: the labs on the host behind `hv`.
pub fn list_labs(hv: Hv) -> Result<Vec<LabOnHost>, LifecycleError> {
    Ok(labs_on_host(&hv.domains()?, &hv.networks()?))
}
