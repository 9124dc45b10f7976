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
