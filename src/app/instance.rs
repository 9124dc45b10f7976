//! `--instance NAME`: the lab of an instance ([`crate::model::instance`]) and its state. An
//! instance's placement (the subnet of each nat network) is chosen once, by the `up` that
//! makes it, from the subnets in use on the host, under the state root's placement lock, and
//! recorded in the instance's state directory; every later command reads it back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::libvirt::Hypervisor;
use crate::lifecycle::{host_routes, network_cidrs};
use crate::model::instance::{self, Placement};
use crate::model::units::Cidr;
use crate::model::{Lab, NetKind};
use crate::names;
use crate::state::{self, LabState};

/// `--instance NAME`, and the pool a new instance's nat subnets come from (`--subnet-pool`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceChoice {
    pub name: String,
    pub pool: Cidr,
}

/// An instance that no `up` made.
#[derive(Debug, thiserror::Error)]
#[error(
    "lab {lab} has no instance {instance} (no {path}): `lab up --instance {instance}` makes it"
)]
pub struct NoSuchInstance {
    pub lab: String,
    pub instance: String,
    pub path: PathBuf,
}

impl crate::failure::Classify for NoSuchInstance {
    fn class(&self) -> crate::failure::ExitClass {
        crate::failure::ExitClass::Usage
    }
}

/// The libvirt host a new instance is placed on.
pub struct Host<'a> {
    pub hv: &'a dyn Hypervisor,
    /// Whether it is this machine (its routes are this machine's).
    pub local: bool,
}

/// What to do with an instance no record places.
pub enum Unplaced<'a> {
    /// It does not exist: an error.
    Refuse,
    /// Place it on this host now (`lab up`).
    Place(&'a Host<'a>),
    /// Its name is enough (`lab down`: objects are found by name and owner): the lab file's
    /// own subnets stand in.
    NameOnly,
}

/// The lab of instance `choice` of `base` and its state, placed as recorded, or as `unplaced`
/// says when there is no record.
pub fn instance_lab(
    base: &Lab,
    choice: &InstanceChoice,
    root: &Path,
    unplaced: Unplaced,
) -> crate::failure::Result<(Lab, LabState)> {
    let name = instance::instance_name(&base.name, &choice.name)?;
    let st = LabState::new(root, &name);
    let placement = match (st.placement()?, unplaced) {
        (Some(p), _) => p,
        (None, Unplaced::Place(host)) => place(base, choice, &st, host)?,
        (None, Unplaced::NameOnly) => Placement {
            instance: choice.name.clone(),
            subnets: base
                .networks
                .iter()
                .filter(|n| n.kind == NetKind::Nat)
                .map(|n| (n.name.clone(), n.cidr.to_string()))
                .collect(),
        },
        (None, Unplaced::Refuse) => {
            return Err(NoSuchInstance {
                lab: base.name.clone(),
                instance: choice.name.clone(),
                path: st.dir().join(names::state::PLACEMENT),
            }
            .into());
        }
    };
    Ok((instance::apply(base, &placement)?, st))
}

/// Picks a free subnet for each nat network of `base` and records the placement, under the
/// placement lock (another `up` may have placed the instance meanwhile: its record wins).
fn place(
    base: &Lab,
    choice: &InstanceChoice,
    st: &LabState,
    host: &Host,
) -> crate::failure::Result<Placement> {
    let _lock = state::placement_lock(&st.root)?;
    if let Some(p) = st.placement()? {
        return Ok(p);
    }
    let mut taken = in_use(host.hv, &st.root, host.local)?;
    let mut subnets = BTreeMap::new();
    for net in base.networks.iter().filter(|n| n.kind == NetKind::Nat) {
        let subnet = instance::pick_subnets(choice.pool, net.cidr.prefix, 1, &taken)?[0];
        taken.push(subnet);
        subnets.insert(net.name.clone(), subnet.to_string());
    }
    let placement = Placement {
        instance: choice.name.clone(),
        subnets,
    };
    st.write_placement(&placement)?;
    Ok(placement)
}

/// Subnets in use: every libvirt network's on the host, the host's routes when it is this
/// machine, and those recorded for the instances under the state root; each once.
pub fn in_use(hv: &dyn Hypervisor, root: &Path, local: bool) -> crate::failure::Result<Vec<Cidr>> {
    let mut taken: Vec<Cidr> = hv
        .networks()?
        .iter()
        .flat_map(|n| network_cidrs(&n.xml))
        .collect();
    if local {
        let table = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        taken.extend(host_routes(&table).into_iter().map(|(_, c)| c));
    }
    for p in state::placements(root) {
        taken.extend(p.subnets.values().filter_map(|s| s.parse::<Cidr>().ok()));
    }
    let mut once = Vec::new();
    for c in taken {
        if !once.contains(&c) {
            once.push(c);
        }
    }
    Ok(once)
}
