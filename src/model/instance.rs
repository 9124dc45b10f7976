//! Instances: more copies of one lab on one host (`--instance NAME`), as a pure step from a
//! validated [`Lab`] and a [`Placement`] to the instance's own `Lab`.
//!
//! An instance is the lab renamed `<lab>-<instance>`: every libvirt object, bridge (a hash of
//! the name, 15 characters at most), MAC, serial log and state directory derives from that
//! name, so instances never share one. Each nat network gets a subnet of its own from a pool
//! ([`pick_subnets`]), its gateway and node addresses at the same offsets as in the lab file;
//! isolated networks keep the lab file's addresses (the guide's 10.0.0.11 and 10.0.0.31):
//! libvirt gives them no host address, so instances on one host never clash there, and every
//! student types the guide's commands unchanged.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::units::{Cidr, Mac};
use super::validate::is_name;
use super::{Lab, NetKind};

/// The default pool of nat subnets for instances: 198.18.0.0/15, the benchmarking range
/// (RFC 2544), which no real network routes.
pub const DEFAULT_POOL: &str = "198.18.0.0/15";

/// Where an instance lives: its name and the subnet of each of the lab's nat networks. Kept
/// in the instance's state directory by the `up` that chose it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    pub instance: String,
    /// Network name -> its subnet, as text (`198.18.3.0/24`).
    pub subnets: BTreeMap<String, String>,
}

/// Why an instance cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceError {
    #[error(
        "instance name {instance:?} makes the lab name {name:?}: use lowercase letters, digits or '-', starting with a letter, so that it is at most 20 characters"
    )]
    BadName { instance: String, name: String },
    #[error(
        "no free /{prefix} left in the subnet pool {pool} ({taken} in use by libvirt networks, host routes and other instances): `lab down --instance NAME` frees one, or give another pool with --subnet-pool"
    )]
    PoolExhausted {
        pool: String,
        prefix: u8,
        taken: usize,
    },
    #[error(
        "the instance's record gives nat network {network:?} no usable subnet ({found:?}): `lab down --instance NAME` removes the instance, `lab up --instance NAME` makes it again"
    )]
    BadPlacement { network: String, found: String },
}

impl crate::failure::Classify for InstanceError {
    fn class(&self) -> crate::failure::ExitClass {
        crate::failure::ExitClass::Usage
    }
}

/// The lab name of instance `instance` of lab `lab`: `<lab>-<instance>`.
pub fn instance_name(lab: &str, instance: &str) -> Result<String, InstanceError> {
    let name = format!("{lab}-{instance}");
    let first = instance.as_bytes().first();
    if first.is_some_and(u8::is_ascii_lowercase) && is_name(&name) {
        Ok(name)
    } else {
        Err(InstanceError::BadName {
            instance: instance.to_string(),
            name,
        })
    }
}

/// The instance of `lab` that `placement` describes: renamed, its MACs derived from the new
/// name, each nat network moved to its subnet with the gateway and addresses at the same
/// offsets. Isolated networks keep their addresses.
pub fn apply(lab: &Lab, placement: &Placement) -> Result<Lab, InstanceError> {
    let mut out = lab.clone();
    out.name = instance_name(&lab.name, &placement.instance)?;
    let mut moved: BTreeMap<String, (Cidr, Cidr)> = BTreeMap::new();
    for net in out.networks.iter_mut().filter(|n| n.kind == NetKind::Nat) {
        let found = placement
            .subnets
            .get(&net.name)
            .cloned()
            .unwrap_or_default();
        let to: Cidr = match found.parse::<Cidr>() {
            Ok(c) if c.prefix == net.cidr.prefix => c,
            _ => {
                return Err(InstanceError::BadPlacement {
                    network: net.name.clone(),
                    found,
                });
            }
        };
        net.gateway = net.gateway.map(|g| shift(g, net.cidr, to));
        moved.insert(net.name.clone(), (net.cidr, to));
        net.cidr = to;
    }
    for node in &mut out.nodes {
        for nic in &mut node.nics {
            if let Some((from, to)) = moved.get(&nic.network) {
                nic.address = shift(nic.address, *from, *to);
            }
            nic.mac = Mac::derive(&out.name, &node.name, &nic.network);
        }
    }
    Ok(out)
}

/// `ip`, at its offset in `from`, moved to the same offset in `to` (same prefix).
fn shift(ip: Ipv4Addr, from: Cidr, to: Cidr) -> Ipv4Addr {
    let offset = u32::from(ip) & !from.mask();
    Ipv4Addr::from(u32::from(to.network) | offset)
}

/// The first `count` subnets of `/prefix` in `pool` that overlap none of `taken`, lowest
/// first.
pub fn pick_subnets(
    pool: Cidr,
    prefix: u8,
    count: usize,
    taken: &[Cidr],
) -> Result<Vec<Cidr>, InstanceError> {
    let exhausted = || InstanceError::PoolExhausted {
        pool: pool.to_string(),
        prefix,
        taken: taken.iter().filter(|t| t.overlaps(pool)).count(),
    };
    if prefix < pool.prefix || prefix > 30 {
        return Err(exhausted());
    }
    let size = 1u64 << (32 - u32::from(prefix));
    let blocks = 1u64 << (prefix - pool.prefix);
    let start = u64::from(u32::from(pool.network));
    let free: Vec<Cidr> = (0..blocks)
        .map(|i| Cidr {
            network: Ipv4Addr::from((start + i * size) as u32),
            prefix,
        })
        .filter(|c| !taken.iter().any(|t| t.overlaps(*c)))
        .take(count)
        .collect();
    if free.len() < count {
        return Err(exhausted());
    }
    Ok(free)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn lab() -> Lab {
        crate::model::debian_lab()
    }

    fn placement(instance: &str, subnet: &str) -> Placement {
        Placement {
            instance: instance.into(),
            subnets: [("external".to_string(), subnet.to_string())].into(),
        }
    }

    #[test]
    fn an_instance_is_renamed_and_moves_only_its_nat_network() {
        let lab = lab();
        let s1 = apply(&lab, &placement("s1", "198.18.3.0/24")).unwrap();
        assert_eq!(s1.name, "ocata-deb-s1");
        let ext = s1.networks.iter().find(|n| n.name == "external").unwrap();
        assert_eq!(ext.cidr, cidr("198.18.3.0/24"));
        assert_eq!(ext.gateway, Some("198.18.3.1".parse().unwrap()));
        let int = s1.networks.iter().find(|n| n.name == "internal").unwrap();
        assert_eq!(int.cidr, cidr("10.0.0.0/24"), "the guide's addresses stay");
        let addresses: Vec<(String, String)> = s1
            .nodes
            .iter()
            .flat_map(|n| {
                n.nics
                    .iter()
                    .map(|c| (n.name.clone(), c.address.to_string()))
            })
            .collect();
        let want = [
            ("controller", "198.18.3.11"),
            ("controller", "10.0.0.11"),
            ("compute1", "198.18.3.31"),
            ("compute1", "10.0.0.31"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(n, a)| (n.to_string(), a.to_string()))
            .collect();
        assert_eq!(addresses, want);
    }

    #[test]
    fn instances_get_macs_of_their_own() {
        let lab = lab();
        let s1 = apply(&lab, &placement("s1", "198.18.3.0/24")).unwrap();
        let s2 = apply(&lab, &placement("s2", "198.18.4.0/24")).unwrap();
        let macs = |l: &Lab| -> Vec<Mac> {
            l.nodes
                .iter()
                .flat_map(|n| n.nics.iter().map(|c| c.mac))
                .collect()
        };
        for (a, b) in [(&lab, &s1), (&s1, &s2), (&lab, &s2)] {
            assert!(
                macs(a).iter().all(|m| !macs(b).contains(m)),
                "{} and {} share a mac",
                a.name,
                b.name
            );
        }
        let again = apply(&lab, &placement("s1", "198.18.3.0/24")).unwrap();
        assert_eq!(macs(&s1), macs(&again), "stable across runs");
    }

    #[test]
    fn instance_names_must_keep_the_lab_name_valid() {
        assert_eq!(instance_name("ocata-deb", "s1").unwrap(), "ocata-deb-s1");
        for bad in ["", "S1", "1a", "a_b", "a-", "student-number-one"] {
            assert!(
                matches!(
                    instance_name("ocata-deb", bad),
                    Err(InstanceError::BadName { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_record_without_a_usable_subnet_is_refused() {
        let lab = lab();
        for found in ["", "198.18.3.0/23", "nonsense"] {
            let err = apply(&lab, &placement("s1", found)).unwrap_err();
            assert!(
                matches!(err, InstanceError::BadPlacement { ref network, .. } if network == "external"),
                "{found:?}: {err:?}"
            );
        }
    }

    #[test]
    fn subnets_are_picked_lowest_first_around_what_is_taken() {
        let pool = cidr("198.18.0.0/22");
        let taken = [
            cidr("198.18.0.0/24"),
            cidr("198.18.2.128/25"),
            cidr("10.0.0.0/8"),
        ];
        assert_eq!(
            pick_subnets(pool, 24, 2, &taken).unwrap(),
            [cidr("198.18.1.0/24"), cidr("198.18.3.0/24")]
        );
        let err = pick_subnets(pool, 24, 3, &taken).unwrap_err();
        assert_eq!(
            err,
            InstanceError::PoolExhausted {
                pool: "198.18.0.0/22".into(),
                prefix: 24,
                taken: 2
            }
        );
        assert!(err.to_string().contains("--subnet-pool"), "{err}");
        assert!(
            pick_subnets(pool, 21, 1, &[]).is_err(),
            "larger than the pool"
        );
    }
}
