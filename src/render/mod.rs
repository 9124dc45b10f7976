//! Pure rendering: everything `lab` hands to libvirt and cloud-init, computed from a
//! validated [`Lab`] and a [`RenderContext`]. No I/O here; writing and defining live elsewhere.

pub mod access;
pub mod cloudinit;
pub mod iso;
pub mod libvirt;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::model::{Lab, Node};
use crate::secrets::LabSecrets;

/// How the guest CPU runs: the libvirt domain type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Hardware virtualization (`<domain type='kvm'>`).
    Kvm,
    /// Software emulation, qemu's TCG (`<domain type='qemu'>`).
    Tcg,
}

impl Accel {
    /// The name users type (`--accel kvm|tcg`) and read.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    pub fn domain_type(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "qemu",
        }
    }
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What rendering needs besides the lab: host-side facts and the lab's secrets. Its `Debug`
/// shows no secret value ([`LabSecrets`] redacts them).
#[derive(Debug, Clone)]
pub struct RenderContext {
    pub accel: Accel,
    pub secrets: LabSecrets,
    /// Directory of the lab's storage pool on the hypervisor host (image, overlays, seeds).
    pub pool_dir: PathBuf,
    /// Directory of the serial console logs on the hypervisor host.
    pub log_dir: PathBuf,
    /// Rebuild count per node (default 1): part of the cloud-init instance-id.
    pub generations: BTreeMap<String, u64>,
    /// The host offers nested virtualization (kvm_intel/kvm_amd `nested`).
    pub nested: bool,
}

impl RenderContext {
    pub fn generation(&self, node: &str) -> u64 {
        self.generations.get(node).copied().unwrap_or(1)
    }
}

/// Every rendered file of one node. Its `Debug` shows the seed ISO only by size (it holds
/// the node's private host key), and the seed as [`cloudinit::Seed`] shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeFiles {
    pub domain_xml: String,
    pub overlay_volume_xml: String,
    pub snapshot_xml: String,
    pub seed: cloudinit::Seed,
    pub seed_iso: Vec<u8>,
    pub provision_sh: String,
}

impl std::fmt::Debug for NodeFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeFiles")
            .field("domain_xml", &self.domain_xml)
            .field("overlay_volume_xml", &self.overlay_volume_xml)
            .field("snapshot_xml", &self.snapshot_xml)
            .field("seed", &self.seed)
            .field("seed_iso", &format_args!("<{} bytes>", self.seed_iso.len()))
            .field("provision_sh", &self.provision_sh)
            .finish()
    }
}

/// Renders all files of a node.
pub fn node_files(lab: &Lab, node: &Node, ctx: &RenderContext) -> Result<NodeFiles, iso::IsoError> {
    let seed = cloudinit::seed(lab, node, ctx);
    let seed_iso = iso::seed_iso(&seed)?;
    Ok(NodeFiles {
        domain_xml: libvirt::domain_xml(lab, node, ctx),
        overlay_volume_xml: libvirt::overlay_volume_xml(lab, node, ctx),
        snapshot_xml: libvirt::snapshot_xml(
            "example",
            "a lab-wide snapshot, as `lab snapshot save` takes it",
        ),
        seed,
        seed_iso,
        provision_sh: crate::provision::script(lab, node),
    })
}
