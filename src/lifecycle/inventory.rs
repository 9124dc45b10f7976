//! What libvirt holds that concerns a lab, read fresh at each call, and the clashes that keep
//! a lab from coming up.

use std::net::Ipv4Addr;

use quick_xml::events::Event as XmlEvent;

use crate::libvirt::{Found, Hypervisor, LibvirtError, PoolFound, RunState};
use crate::model::Lab;
use crate::model::units::{ByteSize, Cidr};
use crate::names;
use crate::render::libvirt::{Owner, read_owner};

/// Why a lab cannot come up; each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Clash {
    #[error("a {kind} named {name} exists but does not belong to this lab: remove or rename it")]
    Foreign { kind: &'static str, name: String },
    #[error(
        "{kind} {name} belongs to lab {lab} of another state directory (owner {owner}): bring it down with that state (LAB_STATE_DIR), or give this lab another name"
    )]
    OtherState {
        kind: &'static str,
        name: String,
        lab: String,
        owner: String,
    },
    #[error(
        "network {network} ({cidr}) overlaps libvirt network {other} ({other_cidr}): change the lab's cidr or stop {other}"
    )]
    Overlap {
        network: String,
        cidr: Cidr,
        other: String,
        other_cidr: Cidr,
    },
    #[error(
        "network {network} ({cidr}) overlaps the host route {route} on {device}: change the lab's cidr"
    )]
    Route {
        network: String,
        cidr: Cidr,
        route: Cidr,
        device: String,
    },
    #[error(
        "the nodes need {need} of memory and the host has {free} free: stop other guests or lower memory in the lab file"
    )]
    Memory { need: ByteSize, free: ByteSize },
}

/// The libvirt objects of the host, as found now.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub domains: Vec<Found<RunState>>,
    pub networks: Vec<Found<bool>>,
    pub pool: Option<PoolFound>,
    /// The lab's log pool ([`names::log_pool`]): the serial console logs.
    pub log_pool: Option<PoolFound>,
    /// The identity of the state reading it ([`crate::secrets::LabSecrets::owner`]): objects
    /// another identity made are not ours. `None` (no state): every object of the lab's name.
    pub owner: Option<String>,
}

impl Inventory {
    pub fn read(
        hv: &dyn Hypervisor,
        lab: &str,
        owner: Option<&str>,
    ) -> Result<Inventory, LibvirtError> {
        Ok(Inventory {
            domains: hv.domains()?,
            networks: hv.networks()?,
            pool: hv.pool(&names::pool(lab))?,
            log_pool: hv.pool(&names::log_pool(lab))?,
            owner: owner.map(str::to_string),
        })
    }

    /// Whether an owner record is this lab's, made by this state (records without an
    /// identity predate identities and count as ours).
    fn is_ours(&self, owner: &Owner, lab: &str) -> bool {
        owner.lab == lab
            && match (&self.owner, &owner.state) {
                (Some(mine), Some(theirs)) => mine == theirs,
                _ => true,
            }
    }

    /// Why an object with one of the lab's names is not ours, if it is not.
    fn foreign(&self, kind: &'static str, name: &str, xml: &str, lab: &str) -> Option<Clash> {
        match read_owner(xml) {
            Some(o) if self.is_ours(&o, lab) => None,
            Some(o) if o.lab == lab => Some(Clash::OtherState {
                kind,
                name: name.to_string(),
                lab: o.lab,
                owner: o.state.unwrap_or_default(),
            }),
            _ => Some(Clash::Foreign {
                kind,
                name: name.to_string(),
            }),
        }
    }

    /// Domains whose metadata names this lab, with their owner record.
    pub fn our_domains(&self, lab: &str) -> Vec<(&Found<RunState>, Owner)> {
        self.ours(&self.domains, lab)
    }

    /// Names of the domains whose metadata names this lab.
    pub fn our_domain_names(&self, lab: &str) -> Vec<String> {
        self.our_domains(lab)
            .into_iter()
            .map(|(d, _)| d.name.clone())
            .collect()
    }

    /// Networks whose metadata names this lab.
    pub fn our_networks(&self, lab: &str) -> Vec<(&Found<bool>, Owner)> {
        self.ours(&self.networks, lab)
    }

    fn ours<'a, S>(&self, all: &'a [Found<S>], lab: &str) -> Vec<(&'a Found<S>, Owner)> {
        all.iter()
            .filter_map(|f| {
                read_owner(&f.xml)
                    .filter(|o| self.is_ours(o, lab))
                    .map(|o| (f, o))
            })
            .collect()
    }

    pub fn domain(&self, name: &str) -> Option<&Found<RunState>> {
        self.domains.iter().find(|d| d.name == name)
    }

    pub fn network(&self, name: &str) -> Option<&Found<bool>> {
        self.networks.iter().find(|n| n.name == name)
    }

    /// Objects with this lab's names that are not this lab's, and subnets already in use.
    pub fn clashes(&self, lab: &Lab) -> Vec<Clash> {
        let mut out = Vec::new();
        for node in &lab.nodes {
            let name = names::domain(&lab.name, &node.name);
            if let Some(d) = self.domain(&name) {
                out.extend(self.foreign("domain", &name, &d.xml, &lab.name));
            }
        }
        for net in &lab.networks {
            let name = names::network(&lab.name, &net.name);
            if let Some(n) = self.network(&name) {
                out.extend(self.foreign("network", &name, &n.xml, &lab.name));
            }
        }
        let foreign = |xml: &str| read_owner(xml).is_none_or(|o| !self.is_ours(&o, &lab.name));
        let named_ours = |n: &str| {
            lab.networks
                .iter()
                .any(|l| names::network(&lab.name, &l.name) == n)
        };
        // (One with the lab's network name is a clash already.)
        for other in self
            .networks
            .iter()
            .filter(|n| foreign(&n.xml) && !named_ours(&n.name))
        {
            for other_cidr in network_cidrs(&other.xml) {
                for net in lab.networks.iter().filter(|n| n.cidr.overlaps(other_cidr)) {
                    out.push(Clash::Overlap {
                        network: net.name.clone(),
                        cidr: net.cidr,
                        other: other.name.clone(),
                        other_cidr,
                    });
                }
            }
        }
        out
    }
}

/// The IPv4 ranges of a libvirt network XML (`<ip address=... prefix=...|netmask=...>`).
pub fn network_cidrs(xml: &str) -> Vec<Cidr> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match reader.read_event() {
            Ok(XmlEvent::Start(e) | XmlEvent::Empty(e)) if e.name().as_ref() == b"ip" => {
                let attr = |k: &[u8]| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == k)
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
                };
                let addr: Option<Ipv4Addr> = attr(b"address").and_then(|a| a.parse().ok());
                let prefix = attr(b"prefix")
                    .and_then(|p| p.parse::<u8>().ok())
                    .or_else(|| {
                        let mask: Ipv4Addr = attr(b"netmask")?.parse().ok()?;
                        Some(u32::from(mask).count_ones() as u8)
                    });
                if let (Some(addr), Some(prefix)) = (addr, prefix.filter(|p| *p <= 32)) {
                    let mask = if prefix == 0 {
                        0
                    } else {
                        u32::MAX << (32 - u32::from(prefix))
                    };
                    let network = Ipv4Addr::from(u32::from(addr) & mask);
                    out.push(Cidr { network, prefix });
                }
            }
            Ok(XmlEvent::Eof) | Err(_) => return out,
            _ => {}
        }
    }
}

/// IPv4 routes of this host's network namespace (`/proc/net/route`) that overlap the lab's
/// networks, ignoring routes on the lab's own bridges.
pub fn route_clashes(lab: &Lab, proc_net_route: &str) -> Vec<Clash> {
    let own: Vec<String> = lab
        .networks
        .iter()
        .map(|n| names::bridge(&lab.name, &n.name))
        .collect();
    let mut out = Vec::new();
    for (dev, route) in host_routes(proc_net_route) {
        if own.contains(&dev) {
            continue; // our bridges are ours
        }
        for net in lab.networks.iter().filter(|n| n.cidr.overlaps(route)) {
            out.push(Clash::Route {
                network: net.name.clone(),
                cidr: net.cidr,
                route,
                device: dev.clone(),
            });
        }
    }
    out
}

/// The routes of a `/proc/net/route` table, with their device, but the default route (which
/// overlaps everything).
pub fn host_routes(proc_net_route: &str) -> Vec<(String, Cidr)> {
    let mut out = Vec::new();
    for line in proc_net_route.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(dev), Some(dst), Some(mask)) = (f.first(), f.get(1), f.get(7)) else {
            continue;
        };
        // The kernel prints the network-order address as a host-order (little-endian) word.
        let hex = |s: &str| {
            u32::from_str_radix(s, 16)
                .ok()
                .map(|v| u32::from_be_bytes(v.to_le_bytes()))
        };
        let (Some(dst), Some(mask)) = (hex(dst), hex(mask)) else {
            continue;
        };
        if mask == 0 {
            continue;
        }
        let route = Cidr {
            network: Ipv4Addr::from(dst),
            prefix: mask.count_ones() as u8,
        };
        out.push((dev.to_string(), route));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_cidrs_read_prefix_and_netmask_forms() {
        let xml = "<network><ip address='192.168.122.1' netmask='255.255.255.0'/>\
                   <ip family='ipv6' address='fd00::1' prefix='64'/>\
                   <ip address='10.9.8.1' prefix='16'></ip></network>";
        let got: Vec<String> = network_cidrs(xml).iter().map(ToString::to_string).collect();
        assert_eq!(got, ["192.168.122.0/24", "10.9.0.0/16"]);
    }

    #[test]
    fn host_routes_that_overlap_are_clashes_except_default_and_our_bridges() {
        let lab = crate::model::Source::resolve("openstack-ocata")
            .unwrap()
            .load(&crate::image::Catalogue::builtin())
            .unwrap()
            .0;
        let ours = names::bridge("ocata", "internal");
        let table = format!(
            "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
             eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
             {ours}\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
             docker0\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
             eth0\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        );
        let clashes = route_clashes(&lab, &table);
        assert_eq!(clashes.len(), 1, "{clashes:?}");
        let Clash::Route {
            network,
            route,
            device,
            ..
        } = &clashes[0]
        else {
            panic!()
        };
        assert_eq!(
            (
                network.as_str(),
                route.to_string().as_str(),
                device.as_str()
            ),
            ("internal", "10.0.0.0/16", "docker0")
        );
    }
}
