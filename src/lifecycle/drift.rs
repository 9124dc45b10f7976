//! How the lab that runs differs from its lab file: read from libvirt's XML and the owner
//! metadata of each object, compared with what the lab file renders. Pure: `lab up` refuses
//! to keep a difference silently, and says which node to rebuild (`lab up --recreate NODE`).

use quick_xml::events::Event as XmlEvent;

use super::inventory::{Inventory, network_cidrs};
use crate::model::units::ByteSize;
use crate::model::{Lab, NetKind};
use crate::names;
use crate::render::RenderContext;
use crate::render::libvirt::NodeSpec;

/// One way the running lab differs from the lab file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Difference {
    #[error("{node}: memory is {have} in libvirt, {want} in the lab file")]
    Memory {
        node: String,
        have: ByteSize,
        want: ByteSize,
    },
    #[error("{node}: {have} vCPUs in libvirt, {want} in the lab file")]
    Vcpus { node: String, have: u32, want: u32 },
    #[error("{node}: NICs (network mac) are [{have}] in libvirt, [{want}] in the lab file")]
    Nics {
        node: String,
        have: String,
        want: String,
    },
    #[error("{node}: its disk is an overlay of image {have}; the lab file says {want}")]
    Image {
        node: String,
        have: String,
        want: String,
    },
    #[error("{node}: disk is {have} in libvirt, {want} in the lab file")]
    Disk {
        node: String,
        have: ByteSize,
        want: ByteSize,
    },
    #[error("{node}: addresses are {have} on the node, {want} in the lab file")]
    Addresses {
        node: String,
        have: String,
        want: String,
    },
    #[error("node {node} runs in libvirt but is not in the lab file")]
    ExtraNode { node: String },
    #[error("network {network}: {have} in libvirt, {want} in the lab file")]
    Network {
        network: String,
        have: String,
        want: String,
    },
    #[error("network {network} exists in libvirt but is not in the lab file")]
    ExtraNetwork { network: String },
}

impl Difference {
    /// The node that `lab up --recreate NODE` would bring in line, if one would.
    pub fn node(&self) -> Option<&str> {
        match self {
            Difference::Memory { node, .. }
            | Difference::Vcpus { node, .. }
            | Difference::Nics { node, .. }
            | Difference::Image { node, .. }
            | Difference::Disk { node, .. }
            | Difference::Addresses { node, .. } => Some(node),
            _ => None,
        }
    }
}

/// What a domain's XML says of its size and NICs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DomainFacts {
    pub memory_kib: Option<u64>,
    pub vcpus: Option<u32>,
    /// `(libvirt network, mac)` per NIC, in order.
    pub nics: Vec<(String, String)>,
}

/// Reads memory, vCPUs and NICs out of a domain XML as libvirt returns it.
pub fn domain_facts(xml: &str) -> DomainFacts {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut facts = DomainFacts::default();
    let mut depth_path: Vec<Vec<u8>> = Vec::new();
    let mut nic: Option<(String, String)> = None;
    let attr = |e: &quick_xml::events::BytesStart, k: &[u8]| {
        e.attributes()
            .flatten()
            .find(|a| a.key.as_ref() == k)
            .map(|a| String::from_utf8_lossy(&a.value).into_owned())
    };
    loop {
        match reader.read_event() {
            Ok(XmlEvent::Start(e)) => {
                if e.name().as_ref() == b"interface" {
                    nic = Some(Default::default());
                }
                depth_path.push(e.name().as_ref().to_vec());
            }
            Ok(XmlEvent::Empty(e)) => {
                if let Some((net, mac)) = nic.as_mut() {
                    match e.name().as_ref() {
                        b"source" => *net = attr(&e, b"network").unwrap_or_default(),
                        b"mac" => *mac = attr(&e, b"address").unwrap_or_default(),
                        _ => {}
                    }
                }
            }
            Ok(XmlEvent::Text(t)) => {
                let text = String::from_utf8_lossy(t.as_ref()).trim().to_string();
                match depth_path.as_slice() {
                    [d, m] if d == b"domain" && m == b"memory" => {
                        facts.memory_kib = text.parse().ok();
                    }
                    [d, v] if d == b"domain" && v == b"vcpu" => facts.vcpus = text.parse().ok(),
                    _ => {}
                }
            }
            Ok(XmlEvent::End(e)) => {
                if e.name().as_ref() == b"interface" {
                    facts.nics.extend(nic.take());
                }
                depth_path.pop();
            }
            Ok(XmlEvent::Eof) | Err(_) => return facts,
            _ => {}
        }
    }
}

/// Every difference between the lab file and the lab's objects in `inv`; nodes and networks
/// that do not exist yet are not differences (`lab up` creates them).
pub fn differences(lab: &Lab, ctx: &RenderContext, inv: &Inventory) -> Vec<Difference> {
    let mut out = Vec::new();
    for (dom, owner) in inv.our_domains(&lab.name) {
        let Some(node) = owner.node.as_deref().and_then(|n| lab.node(n)) else {
            out.push(Difference::ExtraNode {
                node: owner.node.clone().unwrap_or_else(|| dom.name.clone()),
            });
            continue;
        };
        let name = node.name.clone();
        let facts = domain_facts(&dom.xml);
        let want_kib = node.memory.bytes().div_ceil(1024);
        if let Some(have) = facts.memory_kib.filter(|h| *h != want_kib) {
            out.push(Difference::Memory {
                node: name.clone(),
                have: ByteSize(have * 1024),
                want: node.memory,
            });
        }
        if let Some(have) = facts.vcpus.filter(|h| *h != node.vcpus) {
            out.push(Difference::Vcpus {
                node: name.clone(),
                have,
                want: node.vcpus,
            });
        }
        let want_nics: Vec<(String, String)> = node
            .nics
            .iter()
            .map(|n| (names::network(&lab.name, &n.network), n.mac.to_string()))
            .collect();
        if facts.nics != want_nics {
            let show = |v: &[(String, String)]| {
                v.iter()
                    .map(|(n, m)| format!("{n} {m}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push(Difference::Nics {
                node: name.clone(),
                have: show(&facts.nics),
                want: show(&want_nics),
            });
        }
        if let Some(have) = &owner.spec {
            out.extend(spec_differences(&name, have, &NodeSpec::of(lab, node, ctx)));
        }
    }
    for (net, owner) in inv.our_networks(&lab.name) {
        let Some(want) = owner.network.as_deref().and_then(|n| lab.network(n)) else {
            out.push(Difference::ExtraNetwork {
                network: owner.network.clone().unwrap_or_else(|| net.name.clone()),
            });
            continue;
        };
        let have = describe_network(&net.xml);
        let wanted = match want.kind {
            NetKind::Nat => format!("nat {}", want.cidr),
            NetKind::Isolated => "isolated".to_string(),
        };
        if have != wanted {
            out.push(Difference::Network {
                network: want.name.clone(),
                have,
                want: wanted,
            });
        }
    }
    out
}

/// `nat 203.0.113.0/24` or `isolated`, from a libvirt network XML.
fn describe_network(xml: &str) -> String {
    if xml.contains("<forward") {
        let cidrs: Vec<String> = network_cidrs(xml).iter().map(|c| c.to_string()).collect();
        format!("nat {}", cidrs.join(" "))
    } else {
        "isolated".to_string()
    }
}

fn spec_differences(node: &str, have: &NodeSpec, want: &NodeSpec) -> Vec<Difference> {
    let mut out = Vec::new();
    let node = node.to_string();
    if have.image != want.image {
        out.push(Difference::Image {
            node: node.clone(),
            have: have.image.clone(),
            want: want.image.clone(),
        });
    }
    if have.disk != want.disk {
        out.push(Difference::Disk {
            node: node.clone(),
            have: ByteSize(have.disk),
            want: ByteSize(want.disk),
        });
    }
    if have.addresses != want.addresses {
        out.push(Difference::Addresses {
            node,
            have: have.addresses.join(", "),
            want: want.addresses.join(", "),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_facts_reads_memory_vcpus_and_nics_in_order() {
        let xml = "<domain type='qemu'><name>d</name><memory unit='KiB'>2097152</memory>\
            <currentMemory unit='KiB'>1</currentMemory><vcpu placement='static'>2</vcpu>\
            <devices><interface type='network'><mac address='52:54:00:00:00:01'/>\
            <source network='lab-x-external'/><model type='virtio'/></interface>\
            <interface type='network'><mac address='52:54:00:00:00:02'/>\
            <source network='lab-x-internal'/></interface></devices></domain>";
        let f = domain_facts(xml);
        assert_eq!(f.memory_kib, Some(2097152));
        assert_eq!(f.vcpus, Some(2));
        assert_eq!(
            f.nics,
            [
                ("lab-x-external".into(), "52:54:00:00:00:01".into()),
                ("lab-x-internal".into(), "52:54:00:00:00:02".into())
            ]
        );
    }

    #[test]
    fn spec_differences_name_each_changed_field() {
        let have = NodeSpec {
            image: "debian12".into(),
            disk: 10,
            addresses: vec!["10.0.0.11".into()],
            generation: 1,
        };
        assert!(spec_differences("c", &have, &have.clone()).is_empty());
        let want = NodeSpec {
            image: "centos7".into(),
            disk: 20,
            addresses: vec!["10.0.0.12".into()],
            generation: 3,
        };
        let got: Vec<String> = spec_differences("c", &have, &want)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].contains("image debian12") && got[0].contains("centos7"));
        assert!(got[2].contains("10.0.0.11") && got[2].contains("10.0.0.12"));
    }
}
