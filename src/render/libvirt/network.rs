//! `<network>`: a lab network, nat or isolated.

use std::io;

use super::owner::owner_metadata;
use super::{Xml, document, empty_el, parent_el, text_el};
use crate::model::{Lab, NetKind, Network};
use crate::names;
use crate::render::RenderContext;

/// `<network>` of a lab network: nat with the gateway as host address, or isolated.
///
/// A nat network forwards with NAT, has the gateway as the host's address and no DHCP (nodes
/// have static addresses); `<dns enable='no'/>` when the lab turns DNS off. An isolated network
/// has only a bridge: no `<forward>`, no `<ip>`, so libvirt runs no dnsmasq for it.
///
/// The network carries the same `<metadata>` owner element as domains, with `network` in place
/// of `node` and `role`: libvirt 9.0's network schema accepts `<metadata>` and its network
/// driver keeps it (checked against the test driver in tests/render_libvirt.rs).
pub fn network_xml(lab: &Lab, net: &Network, ctx: &RenderContext) -> String {
    let owner = &ctx.secrets.owner;
    document(|w| {
        parent_el(w, "network", &[], |w| {
            text_el(w, "name", &[], &names::network(&lab.name, &net.name))?;
            let owner = [
                ("lab", lab.name.as_str()),
                ("network", net.name.as_str()),
                ("state", owner.as_str()),
            ];
            owner_metadata(w, &owner)?;
            if net.kind == NetKind::Nat {
                empty_el(w, "forward", &[("mode", "nat")])?;
            }
            let bridge = names::bridge(&lab.name, &net.name);
            empty_el(
                w,
                "bridge",
                &[("name", &bridge), ("stp", "on"), ("delay", "0")],
            )?;
            if net.kind == NetKind::Nat {
                nat_addressing(w, net)?;
            }
            Ok(())
        })
    })
}

/// The `<dns>` and `<ip>` of a nat network (no `<dhcp>`: addresses are static).
fn nat_addressing(w: &mut Xml, net: &Network) -> io::Result<()> {
    if !net.dns {
        empty_el(w, "dns", &[("enable", "no")])?;
    }
    let gateway = net.gateway.unwrap_or(net.cidr.first_host()).to_string();
    let prefix = net.cidr.prefix.to_string();
    empty_el(w, "ip", &[("address", &gateway), ("prefix", &prefix)])
}
