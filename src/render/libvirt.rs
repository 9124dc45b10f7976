//! libvirt XML: networks, domains, storage volumes and snapshots.

use super::RenderContext;
use crate::model::{Lab, Network, Node};

/// `<network>` of a lab network: nat with the gateway as host address, or isolated.
pub fn network_xml(lab: &Lab, net: &Network) -> String {
    let _ = (lab, net);
    unimplemented!("helper: libvirt rendering")
}

/// `<domain>` of a node.
pub fn domain_xml(lab: &Lab, node: &Node, ctx: &RenderContext) -> String {
    let _ = (lab, node, ctx);
    unimplemented!("helper: libvirt rendering")
}

/// `<volume>` of a node's qcow2 overlay on the lab's image.
pub fn overlay_volume_xml(lab: &Lab, node: &Node, ctx: &RenderContext) -> String {
    let _ = (lab, node, ctx);
    unimplemented!("helper: libvirt rendering")
}

/// `<domainsnapshot>` of one node for a lab-wide snapshot.
pub fn snapshot_xml(name: &str, description: &str) -> String {
    let _ = (name, description);
    unimplemented!("helper: libvirt rendering")
}

/// `<volume>` of a node's seed ISO (raw).
pub fn seed_volume_xml(node: &Node, size_bytes: u64) -> String {
    let _ = (node, size_bytes);
    unimplemented!("helper: libvirt rendering")
}

/// `<pool>` of the lab (a directory).
pub fn pool_xml(lab: &Lab, ctx: &RenderContext) -> String {
    let _ = (lab, ctx);
    unimplemented!("helper: libvirt rendering")
}

/// Who owns a domain, read from its `<metadata>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub lab: String,
    pub node: String,
    pub role: String,
    pub version: u32,
}

/// The lab metadata of a domain XML, if any.
pub fn read_owner(domain_xml: &str) -> Option<Owner> {
    let _ = domain_xml;
    unimplemented!("helper: libvirt rendering")
}

/// `<volume>` of a raw volume of `size_bytes` (image uploads, seeds).
pub fn raw_volume_xml(name: &str, size_bytes: u64) -> String {
    let _ = (name, size_bytes);
    unimplemented!("helper: libvirt rendering")
}
