//! libvirt XML: networks, domains, storage pools and volumes, snapshots; and the reader of the
//! ownership metadata `lab` puts in every domain.
//!
//! Everything here is pure: XML text in and out, no connection to libvirt. The XML is written
//! with quick-xml's [`Writer`], so every name and value is escaped, indented by two spaces and
//! ends with a newline.

use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesStart, BytesText, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::RenderContext;
use crate::model::{Lab, NetKind, Network, Node, Role};
use crate::names;

type Xml = Writer<Vec<u8>>;

/// Runs `body` on a fresh indenting writer and returns the document with a final newline.
fn document(body: impl FnOnce(&mut Xml) -> io::Result<()>) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    body(&mut w).expect("writing XML to memory cannot fail");
    let mut text = String::from_utf8(w.into_inner()).expect("the writer only gets UTF-8");
    text.push('\n');
    text
}

/// `<name attrs...>value</name>`.
fn text_el(w: &mut Xml, name: &str, attrs: &[(&str, &str)], value: &str) -> io::Result<()> {
    w.create_element(name)
        .with_attributes(attrs.iter().copied())
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

/// `<name attrs.../>`.
fn empty_el(w: &mut Xml, name: &str, attrs: &[(&str, &str)]) -> io::Result<()> {
    w.create_element(name)
        .with_attributes(attrs.iter().copied())
        .write_empty()?;
    Ok(())
}

/// `<name attrs...>` children `</name>`.
fn parent_el(
    w: &mut Xml,
    name: &str,
    attrs: &[(&str, &str)],
    children: impl FnOnce(&mut Xml) -> io::Result<()>,
) -> io::Result<()> {
    w.create_element(name)
        .with_attributes(attrs.iter().copied())
        .write_inner_content(children)?;
    Ok(())
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Controller => "controller",
        Role::Compute => "compute",
    }
}

/// `<metadata><lab:owner xmlns:lab=NS attrs... version=N/></metadata>`.
fn owner_metadata(w: &mut Xml, attrs: &[(&str, &str)]) -> io::Result<()> {
    let element = format!("{}:owner", names::METADATA_PREFIX);
    let xmlns = format!("xmlns:{}", names::METADATA_PREFIX);
    let version = names::FORMAT_VERSION.to_string();
    parent_el(w, "metadata", &[], |w| {
        let mut all = vec![(xmlns.as_str(), names::METADATA_NS)];
        all.extend_from_slice(attrs);
        all.push(("version", &version));
        empty_el(w, &element, &all)
    })
}

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

/// `<domain>` of a node: BIOS (so internal snapshots with memory work), the overlay on virtio,
/// the seed ISO on virtio-scsi, one virtio NIC per lab network, a logged serial console.
/// No `<uuid>`: libvirt assigns it.
/// The compute node sees the host's CPU (vmx/svm included) when the host offers nested
/// virtualization under kvm, so nova can later run its own guests with kvm.
pub fn passes_through_cpu(node: &Node, accel: super::Accel, nested: bool) -> bool {
    node.role == crate::model::Role::Compute && nested && accel == super::Accel::Kvm
}

pub fn domain_xml(lab: &Lab, node: &Node, ctx: &RenderContext) -> String {
    document(|w| {
        parent_el(w, "domain", &[("type", ctx.accel.domain_type())], |w| {
            text_el(w, "name", &[], &names::domain(&lab.name, &node.name))?;
            let spec = NodeSpec::of(lab, node, ctx);
            let owner = [
                ("lab", lab.name.as_str()),
                ("node", node.name.as_str()),
                ("role", role_name(node.role)),
                ("state", ctx.secrets.owner.as_str()),
                ("image", spec.image.as_str()),
                ("disk", &spec.disk.to_string()),
                ("addresses", &spec.addresses.join(",")),
                ("generation", &spec.generation.to_string()),
            ];
            owner_metadata(w, &owner)?;
            let kib = node.memory.bytes().div_ceil(1024).to_string();
            text_el(w, "memory", &[("unit", "KiB")], &kib)?;
            text_el(w, "vcpu", &[], &node.vcpus.to_string())?;
            if passes_through_cpu(node, ctx.accel, ctx.nested) {
                empty_el(w, "cpu", &[("mode", "host-passthrough")])?;
            }
            machine(w)?;
            parent_el(w, "devices", &[], |w| devices(w, lab, node, ctx))
        })
    })
}

/// `<os>`, `<features>`, `<clock>` and the lifecycle actions of a domain.
fn machine(w: &mut Xml) -> io::Result<()> {
    parent_el(w, "os", &[], |w| {
        text_el(w, "type", &[("arch", "x86_64"), ("machine", "pc")], "hvm")?;
        empty_el(w, "boot", &[("dev", "hd")])
    })?;
    parent_el(w, "features", &[], |w| {
        empty_el(w, "acpi", &[])?;
        empty_el(w, "apic", &[])
    })?;
    empty_el(w, "clock", &[("offset", "utc")])?;
    text_el(w, "on_poweroff", &[], "destroy")?;
    text_el(w, "on_reboot", &[], "restart")?;
    text_el(w, "on_crash", &[], "destroy")
}

/// The `<devices>` of a domain.
fn devices(w: &mut Xml, lab: &Lab, node: &Node, ctx: &RenderContext) -> io::Result<()> {
    disks(w, lab, node)?;
    for nic in &node.nics {
        let network = names::network(&lab.name, &nic.network);
        let mac = nic.mac.to_string();
        parent_el(w, "interface", &[("type", "network")], |w| {
            empty_el(w, "source", &[("network", &network)])?;
            empty_el(w, "mac", &[("address", &mac)])?;
            empty_el(w, "model", &[("type", "virtio")])
        })?;
    }
    consoles(w, lab, node, ctx)?;
    parent_el(w, "rng", &[("model", "virtio")], |w| {
        text_el(w, "backend", &[("model", "random")], "/dev/urandom")
    })?;
    empty_el(w, "memballoon", &[("model", "virtio")])
}

/// The overlay on virtio, and the seed ISO as a read-only cdrom on virtio-scsi (Debian's cloud
/// kernel has no AHCI driver, so a SATA cdrom would be invisible to it).
fn disks(w: &mut Xml, lab: &Lab, node: &Node) -> io::Result<()> {
    let pool = names::pool(&lab.name);
    let overlay = names::overlay_volume(&node.name);
    let seed = names::seed_volume(&node.name);
    parent_el(w, "disk", &[("type", "volume"), ("device", "disk")], |w| {
        empty_el(w, "driver", &[("name", "qemu"), ("type", "qcow2")])?;
        empty_el(w, "source", &[("pool", &pool), ("volume", &overlay)])?;
        empty_el(w, "target", &[("dev", "vda"), ("bus", "virtio")])
    })?;
    empty_el(
        w,
        "controller",
        &[("type", "scsi"), ("model", "virtio-scsi")],
    )?;
    parent_el(w, "disk", &[("type", "volume"), ("device", "cdrom")], |w| {
        empty_el(w, "driver", &[("name", "qemu"), ("type", "raw")])?;
        empty_el(w, "source", &[("pool", &pool), ("volume", &seed)])?;
        empty_el(w, "target", &[("dev", "sda"), ("bus", "scsi")])?;
        empty_el(w, "readonly", &[])
    })
}

/// Serial port logged to a file (appended, so a snapshot revert keeps the history), the
/// console on it, and the qemu guest agent channel.
fn consoles(w: &mut Xml, lab: &Lab, node: &Node, ctx: &RenderContext) -> io::Result<()> {
    let log = ctx.log_dir.join(names::serial_log(&lab.name, &node.name));
    let log = log.to_string_lossy();
    parent_el(w, "serial", &[("type", "pty")], |w| {
        empty_el(w, "log", &[("file", &log), ("append", "on")])?;
        empty_el(w, "target", &[("port", "0")])
    })?;
    parent_el(w, "console", &[("type", "pty")], |w| {
        empty_el(w, "target", &[("type", "serial"), ("port", "0")])
    })?;
    parent_el(w, "channel", &[("type", "unix")], |w| {
        let agent = [("type", "virtio"), ("name", "org.qemu.guest_agent.0")];
        empty_el(w, "target", &agent)
    })
}

/// `<volume>` of a node's qcow2 overlay on the lab's image (in the same pool).
pub fn overlay_volume_xml(lab: &Lab, node: &Node, ctx: &RenderContext) -> String {
    let backing = ctx.pool_dir.join(names::image_volume(&lab.image.name));
    let backing = backing.to_string_lossy();
    document(|w| {
        parent_el(w, "volume", &[("type", "file")], |w| {
            text_el(w, "name", &[], &names::overlay_volume(&node.name))?;
            let bytes = node.disk.bytes().to_string();
            text_el(w, "capacity", &[("unit", "bytes")], &bytes)?;
            parent_el(w, "target", &[], |w| {
                empty_el(w, "format", &[("type", "qcow2")])
            })?;
            parent_el(w, "backingStore", &[], |w| {
                text_el(w, "path", &[], &backing)?;
                empty_el(w, "format", &[("type", "qcow2")])
            })
        })
    })
}

/// `<volume>` of a raw file of `size_bytes` (seeds; the image, uploaded as it is).
pub fn raw_volume_xml(name: &str, size_bytes: u64) -> String {
    document(|w| {
        parent_el(w, "volume", &[("type", "file")], |w| {
            text_el(w, "name", &[], name)?;
            let bytes = size_bytes.to_string();
            text_el(w, "capacity", &[("unit", "bytes")], &bytes)?;
            parent_el(w, "target", &[], |w| {
                empty_el(w, "format", &[("type", "raw")])
            })
        })
    })
}

/// `<pool>` of the lab: a directory pool at `ctx.pool_dir` holding image, overlays and seeds.
pub fn pool_xml(lab: &Lab, ctx: &RenderContext) -> String {
    let path = ctx.pool_dir.to_string_lossy();
    document(|w| {
        parent_el(w, "pool", &[("type", "dir")], |w| {
            text_el(w, "name", &[], &names::pool(&lab.name))?;
            parent_el(w, "target", &[], |w| text_el(w, "path", &[], &path))
        })
    })
}

/// `<domainsnapshot>` of one node for a lab-wide snapshot: internal, with memory (reverting
/// external snapshots needs libvirt >= 9.9; our hosts have 9.0).
pub fn snapshot_xml(name: &str, description: &str) -> String {
    document(|w| {
        parent_el(w, "domainsnapshot", &[], |w| {
            text_el(w, "name", &[], name)?;
            text_el(w, "description", &[], description)?;
            empty_el(w, "memory", &[("snapshot", "internal")])
        })
    })
}

/// What a domain's owner metadata records of its node beyond libvirt's own XML, so that
/// `lab up` can tell a changed lab file from the lab that runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Catalogue name of the image the node's disk is an overlay of.
    pub image: String,
    /// Disk size in bytes (after the image's minimum is applied).
    pub disk: u64,
    /// The node's static addresses, in NIC order.
    pub addresses: Vec<String>,
    /// Rebuild count: part of cloud-init's instance-id.
    pub generation: u64,
}

impl NodeSpec {
    pub fn of(lab: &Lab, node: &Node, ctx: &RenderContext) -> NodeSpec {
        NodeSpec {
            image: lab.image.name.clone(),
            disk: node.disk.bytes(),
            addresses: node.nics.iter().map(|n| n.address.to_string()).collect(),
            generation: ctx.generation(&node.name),
        }
    }
}

/// The owner of a domain or network, as its lab metadata records it: what `lab` checks of
/// it. (The element also says the node's role, for people reading libvirt's XML, and the
/// format version, which must be a number.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub lab: String,
    /// Domains only.
    pub node: Option<String>,
    /// Networks only.
    pub network: Option<String>,
    /// The identity of the state directory that created it ([`LabSecrets::owner`]); `None`
    /// on objects made before identities were recorded.
    ///
    /// [`LabSecrets::owner`]: crate::secrets::LabSecrets::owner
    pub state: Option<String>,
    /// Domains only; `None` on objects made before it was recorded.
    pub spec: Option<NodeSpec>,
}

/// Reads the lab metadata out of a domain or network XML as libvirt returns it. The element is matched by
/// namespace URI ([`names::METADATA_NS`]), whatever prefix libvirt gives it. `None` when the
/// XML is not well formed, has no such element, or the element lacks `lab` or `version`.
pub fn read_owner(domain_xml: &str) -> Option<Owner> {
    let mut reader = NsReader::from_str(domain_xml);
    loop {
        match reader.read_resolved_event().ok()? {
            (ResolveResult::Bound(ns), Event::Start(e) | Event::Empty(e))
                if ns.as_ref() == names::METADATA_NS.as_bytes()
                    && e.local_name().as_ref() == b"owner" =>
            {
                return owner_from(&e);
            }
            (_, Event::Eof) => return None,
            _ => {}
        }
    }
}

/// The attributes of an owner element.
fn owner_from(e: &BytesStart) -> Option<Owner> {
    let attr = |name: &str| -> Option<String> {
        let a = e.try_get_attribute(name).ok()??;
        Some(a.unescape_value().ok()?.into_owned())
    };
    let spec = (|| {
        Some(NodeSpec {
            image: attr("image")?,
            disk: attr("disk")?.parse().ok()?,
            addresses: attr("addresses")?
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
            generation: attr("generation")?.parse().ok()?,
        })
    })();
    attr("version")?.parse::<u32>().ok()?;
    Some(Owner {
        lab: attr("lab")?,
        node: attr("node"),
        network: attr("network"),
        state: attr("state"),
        spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = r#"<domain><metadata><x:owner xmlns:x="https://lab.invalid/xmlns/lab/1" lab="a&amp;b" node="n" role="compute" version="1"/></metadata></domain>"#;

    #[test]
    fn read_owner_matches_by_namespace_not_prefix() {
        let owner = read_owner(OWNER).unwrap();
        assert_eq!(owner.lab, "a&b");
        assert_eq!(owner.node.as_deref(), Some("n"));
        assert_eq!((owner.network, owner.state, owner.spec), (None, None, None));
    }

    #[test]
    fn read_owner_ignores_other_namespaces_and_incomplete_elements() {
        let other = OWNER.replace("lab.invalid", "other.invalid");
        assert_eq!(read_owner(&other), None);
        let lab_prefix_wrong_ns = r#"<domain><metadata><lab:owner xmlns:lab="urn:x" lab="a" node="n" role="r" version="1"/></metadata></domain>"#;
        assert_eq!(read_owner(lab_prefix_wrong_ns), None);
        assert_eq!(read_owner(&OWNER.replace(r#" lab="a&amp;b""#, "")), None);
        assert!(read_owner(&OWNER.replace(r#" role="compute""#, "")).is_some());
        assert_eq!(
            read_owner(&OWNER.replace(r#"version="1""#, r#"version="x""#)),
            None
        );
        assert_eq!(read_owner(&OWNER.replace(r#" version="1""#, "")), None);
        assert_eq!(read_owner("<domain><name>x</name></domain>"), None);
        assert_eq!(read_owner("not xml <"), None);
    }

    #[test]
    fn snapshot_escapes_text() {
        let xml = snapshot_xml("a<b", "x & y");
        assert!(xml.contains("<name>a&lt;b</name>"), "{xml}");
        assert!(
            xml.contains("<description>x &amp; y</description>"),
            "{xml}"
        );
        assert!(xml.ends_with("</domainsnapshot>\n"));
    }
}
