//! `<domain>`: a node's VM, with its disks, nics, consoles and owner metadata.

use std::io;

use super::owner::{NodeSpec, owner_metadata};
use super::{Xml, document, empty_el, parent_el, text_el};
use crate::model::{Lab, Node, Role};
use crate::names;
use crate::render::{Accel, RenderContext};

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Controller => "controller",
        Role::Compute => "compute",
    }
}

/// The compute node sees the host's CPU (vmx/svm included) when the host offers nested
/// virtualization under kvm, so nova can later run its own guests with kvm.
pub fn passes_through_cpu(node: &Node, accel: Accel, nested: bool) -> bool {
    node.role == Role::Compute && nested && accel == Accel::Kvm
}

/// `<domain>` of a node: BIOS (so internal snapshots with memory work), the overlay on virtio,
/// the seed ISO on virtio-scsi, one virtio NIC per lab network, a logged serial console.
/// No `<uuid>`: libvirt assigns it.
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
    let log = super::log_pool_dir(lab, ctx).join(names::serial_log(&node.name));
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
