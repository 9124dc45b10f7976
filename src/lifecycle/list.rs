//! `lab list`: every lab on a host (instances and class seats too), read from the owner
//! metadata `lab` writes into each domain and network: what libvirt holds now, whichever
//! machine or state directory made it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Hv, LifecycleError};
use crate::libvirt::{Found, RunState};
use crate::render::libvirt::{Owner, read_owner};

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
    /// The entry of the owner's lab, which takes the first state identity its objects record.
    fn lab<'a>(found: &'a mut BTreeMap<String, LabOnHost>, owner: &Owner) -> &'a mut LabOnHost {
        let lab = found.entry(owner.lab.clone()).or_insert_with(|| LabOnHost {
            lab: owner.lab.clone(),
            nodes: Vec::new(),
            networks: Vec::new(),
            state: None,
        });
        if lab.state.is_none() {
            lab.state.clone_from(&owner.state);
        }
        lab
    }
    for (d, owner) in domains
        .iter()
        .filter_map(|d| Some((d, read_owner(&d.xml)?)))
    {
        if let Some(name) = &owner.node {
            let (name, state) = (name.clone(), d.state);
            lab(&mut found, &owner)
                .nodes
                .push(NodeOnHost { name, state });
        }
    }
    for owner in networks.iter().filter_map(|n| read_owner(&n.xml)) {
        if let Some(net) = &owner.network {
            lab(&mut found, &owner).networks.push(net.clone());
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
