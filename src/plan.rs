//! `lab plan`: the summary of a lab and the files of every node, written to a directory.
//! Rendering is done by [`crate::render`]; this module decides where files go;
//! [`crate::app::plan`] picks the context.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::failure::Context;
use serde::Serialize;

use crate::model::{Lab, Note};
use crate::names;
use crate::render::{self, Accel, RenderContext};
use crate::secrets::LabSecrets;

/// Where `plan` assumes the hypervisor keeps a lab's pool and serial logs (qemu:///system).
pub const DEFAULT_POOL_ROOT: &str = "/var/lib/libvirt/images";
pub const DEFAULT_LOG_DIR: &str = "/var/log/libvirt/qemu";

#[derive(Debug, Serialize)]
pub struct Summary {
    pub lab: String,
    pub file: String,
    pub image: String,
    pub profile: crate::image::Profile,
    pub accel: Accel,
    pub networks: Vec<NetworkSummary>,
    pub nodes: Vec<NodeSummary>,
    /// The most disk one lab-wide snapshot with memory takes (`lab snapshot save`, `lab up`'s
    /// lab-up, `--stop-before`'s before-STEP): every node's memory state, at most its RAM,
    /// kept in its disk image (plus the disk blocks written after the snapshot).
    pub snapshot_bytes_max: u64,
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct NetworkSummary {
    pub name: String,
    pub libvirt_name: String,
    pub kind: crate::model::NetKind,
    pub cidr: String,
    pub gateway: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct NodeSummary {
    pub name: String,
    pub domain: String,
    pub role: crate::model::Role,
    pub vcpus: u32,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    pub nics: Vec<NicSummary>,
}

#[derive(Debug, Serialize)]
pub struct NicSummary {
    pub network: String,
    pub address: String,
    pub mac: String,
}

pub fn summary(lab: &Lab, file: &Path, accel: Accel, notes: &[Note]) -> Summary {
    Summary {
        lab: lab.name.clone(),
        file: file.display().to_string(),
        image: lab.image.name.clone(),
        profile: lab.image.profile,
        accel,
        networks: lab
            .networks
            .iter()
            .map(|n| NetworkSummary {
                name: n.name.clone(),
                libvirt_name: names::network(&lab.name, &n.name),
                kind: n.kind,
                cidr: n.cidr.to_string(),
                gateway: n.gateway.map(|g| g.to_string()),
            })
            .collect(),
        nodes: lab
            .nodes
            .iter()
            .map(|n| NodeSummary {
                name: n.name.clone(),
                domain: names::domain(&lab.name, &n.name),
                role: n.role,
                vcpus: n.vcpus,
                memory_bytes: n.memory.bytes(),
                disk_bytes: n.disk.bytes(),
                nics: n
                    .nics
                    .iter()
                    .map(|c| NicSummary {
                        network: c.network.clone(),
                        address: c.address.to_string(),
                        mac: c.mac.to_string(),
                    })
                    .collect(),
            })
            .collect(),
        snapshot_bytes_max: lab.snapshot_bytes_max(),
        notes: notes.iter().map(ToString::to_string).collect(),
    }
}

/// The plan's line about snapshots: what one lab-wide snapshot with memory takes at most.
pub fn snapshot_line(lab: &Lab) -> String {
    let each: Vec<String> = lab
        .nodes
        .iter()
        .map(|n| format!("{} {}", n.name, n.memory))
        .collect();
    let total = lab.snapshot_bytes_max();
    format!(
        "snapshots: each lab-wide snapshot with memory (lab-up, before-STEP, `lab snapshot save`) takes up to {:.1} GiB in the nodes' disk images: each node's memory state, at most its RAM ({}), plus the disk blocks written after it",
        total as f64 / f64::from(1u32 << 30),
        each.join(", ")
    )
}

/// A human table of the summary.
pub fn print_table(s: &Summary, lab: &Lab, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "lab {} ({}), image {}, accel {}",
        s.lab, s.file, s.image, s.accel
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<16} {:<9} {:<18} {:<15}",
        "NETWORK", "KIND", "CIDR", "GATEWAY"
    )?;
    for n in &lab.networks {
        let gw = n.gateway.map_or("-".to_string(), |g| g.to_string());
        let kind = format!("{:?}", n.kind).to_lowercase();
        writeln!(
            out,
            "{:<16} {:<9} {:<18} {:<15}",
            n.name,
            kind,
            n.cidr.to_string(),
            gw
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<12} {:<11} {:>5} {:>8} {:>8}  NICS",
        "NODE", "ROLE", "VCPUS", "MEMORY", "DISK"
    )?;
    for n in &lab.nodes {
        let nics: Vec<String> = n
            .nics
            .iter()
            .map(|c| format!("{}={} ({})", c.network, c.address, c.mac))
            .collect();
        let role = format!("{:?}", n.role).to_lowercase();
        writeln!(
            out,
            "{:<12} {:<11} {:>5} {:>8} {:>8}  {}",
            n.name,
            role,
            n.vcpus,
            n.memory.to_string(),
            n.disk.to_string(),
            nics.join(", ")
        )?;
    }
    writeln!(out, "{}", snapshot_line(lab))?;
    for note in &s.notes {
        writeln!(out, "note: {note}")?;
    }
    Ok(())
}

/// The files of a node that hold a private key (the node's host key, in cloud-init's
/// user-data and so in the seed ISO): written 0600.
pub const PRIVATE_NODE_FILES: [&str; 2] = ["user-data", "seed.iso"];

/// Writes every rendered file under `dir` (created if missing), those of
/// [`PRIVATE_NODE_FILES`] 0600 before their bytes go in. Writes nothing else.
pub fn write_files(
    dir: &Path,
    lab: &Lab,
    ctx: &RenderContext,
) -> crate::failure::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut put = |rel: String, bytes: &[u8], private: bool| -> crate::failure::Result<()> {
        let path = dir.join(rel);
        let parent = path.parent().expect("relative path has a parent");
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}: check --out", parent.display()))?;
        let wrote = if private {
            write_private(&path, bytes)
        } else {
            std::fs::write(&path, bytes)
        };
        wrote.with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    for net in &lab.networks {
        put(
            names::plan::network_xml(&net.name),
            render::libvirt::network_xml(lab, net, ctx).as_bytes(),
            false,
        )?;
    }
    for node in &lab.nodes {
        let f = render::node_files(lab, node, ctx)?;
        let dir = names::plan::node_dir(&node.name);
        let files: [(&str, &[u8]); 8] = [
            ("domain.xml", f.domain_xml.as_bytes()),
            ("overlay-volume.xml", f.overlay_volume_xml.as_bytes()),
            ("snapshot.xml", f.snapshot_xml.as_bytes()),
            ("user-data", f.seed.user_data.as_bytes()),
            ("meta-data", f.seed.meta_data.as_bytes()),
            ("network-config", f.seed.network_config.as_bytes()),
            ("seed.iso", &f.seed_iso),
            ("provision.sh", f.provision_sh.as_bytes()),
        ];
        debug_assert_eq!(files.map(|(n, _)| n), names::plan::NODE_FILES);
        for (name, bytes) in files {
            let private = PRIVATE_NODE_FILES.contains(&name);
            put(format!("{dir}/{name}"), bytes, private)?;
        }
    }
    Ok(written)
}

/// Writes `bytes` to `path` with mode 0600, also when the file was there with another mode.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)
}

/// A context with the default system paths (qemu:///system) and the secrets of `seed`, every
/// node at its first generation, no nested virtualization: what golden files are rendered with.
pub fn context(lab: &Lab, accel: Accel, seed: &[u8; 32]) -> RenderContext {
    RenderContext {
        accel,
        secrets: LabSecrets::from_seed(lab, seed),
        pool_dir: Path::new(DEFAULT_POOL_ROOT).join(names::pool(&lab.name)),
        log_dir: PathBuf::from(DEFAULT_LOG_DIR),
        generations: Default::default(),
        nested: false,
    }
}

/// A note per compute node that will not see the host's CPU virtualization.
pub fn nested_notes(lab: &Lab, accel: Accel, nested: bool) -> Vec<String> {
    lab.nodes
        .iter()
        .filter(|n| n.role == crate::model::Role::Compute)
        .filter(|n| !render::libvirt::passes_through_cpu(n, accel, nested))
        .map(|n| format!("{}: no nested virtualization under kvm here, so nova on it will need virt_type = qemu", n.name))
        .collect()
}

/// Notes when the lab needs more memory or vCPUs in all than `host` has. More memory than
/// the host has cannot start; more vCPUs than its CPUs start, but share them and run slower.
pub fn host_notes(lab: &Lab, host: &crate::host::HostSize) -> Vec<String> {
    let mut notes = Vec::new();
    let memory: u64 = lab.nodes.iter().map(|n| n.memory.bytes()).sum();
    if let Some(have) = host.memory.filter(|&have| memory > have) {
        notes.push(format!(
            "the nodes need {} of memory and this host has {} in all: lower memory in the lab file, or bring the lab up on a bigger host",
            crate::model::units::ByteSize(memory),
            crate::model::units::ByteSize(have).human()
        ));
    }
    let vcpus: u64 = lab.nodes.iter().map(|n| u64::from(n.vcpus)).sum();
    if let Some(cpus) = host.cpus.filter(|&cpus| vcpus > u64::from(cpus)) {
        notes.push(format!(
            "the nodes have {vcpus} vCPUs and this host {cpus} CPUs: they will share them and run slower; lower vcpus in the lab file for a faster lab"
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::{Accel, Path, host_notes, snapshot_line, summary};
    use crate::host::HostSize;

    fn lab() -> crate::model::Lab {
        let source = crate::model::Source::resolve("openstack-debian12").unwrap();
        source.load(&crate::image::Catalogue::builtin()).unwrap().0
    }

    #[test]
    fn the_plan_says_what_a_snapshot_with_memory_takes_at_most() {
        let lab = lab();
        assert_eq!(
            snapshot_line(&lab),
            "snapshots: each lab-wide snapshot with memory (lab-up, before-STEP, `lab snapshot save`) takes up to 6.0 GiB in the nodes' disk images: each node's memory state, at most its RAM (controller 4GiB, compute1 2GiB), plus the disk blocks written after it"
        );
        let s = summary(&lab, Path::new("x.toml"), Accel::Tcg, &[]);
        assert_eq!(s.snapshot_bytes_max, 6 << 30);
    }

    #[test]
    fn a_lab_bigger_than_the_host_is_noted() {
        let lab = lab(); // controller 4GiB + compute1 2GiB, 1 vCPU each
        let roomy = HostSize {
            memory: Some(6 << 30),
            cpus: Some(2),
        };
        assert!(
            host_notes(&lab, &roomy).is_empty(),
            "exactly enough is enough"
        );
        let small = HostSize {
            memory: Some(5 << 30),
            cpus: Some(1),
        };
        let notes = host_notes(&lab, &small);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].starts_with("the nodes need 6GiB of memory and this host has 5.0GiB in all"),
            "{notes:?}"
        );
        assert!(
            notes[1].starts_with("the nodes have 2 vCPUs and this host 1 CPUs"),
            "{notes:?}"
        );
        let unknown = HostSize {
            memory: None,
            cpus: None,
        };
        assert!(host_notes(&lab, &unknown).is_empty());
    }
}
