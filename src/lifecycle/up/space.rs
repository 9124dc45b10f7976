//! Room in the lab's pool. Before `up` creates a volume or domain, the pool's free space
//! (libvirt's pool info, so a remote host's) must hold the most the run may still write there
//! ([`needed`]). A create or upload that fails for want of space all the same (another writer
//! filled the disk meanwhile) is reported as that, naming the pool's directory and the volume.

use std::path::Path;

use super::Run;
use crate::libvirt::{LibvirtError, PoolFound};
use crate::lifecycle::LifecycleError;
use crate::lifecycle::inventory::Inventory;
use crate::model::Lab;
use crate::names;
use crate::render;
use crate::units::ByteSize;

/// What a failed call was to write at least, when its own size is unknown or smaller: the
/// metadata of a qcow2 overlay, an empty marker's directory entry.
const MIN_WRITE: u64 = ByteSize::MIB;

/// Whether `volume` is in the pool whole: with its completion marker, or `in_use` (a node's
/// disk builds on it), as `up` trusts it.
pub(super) fn whole(volumes: &[String], volume: &str, in_use: bool) -> bool {
    volumes.iter().any(|v| v == volume)
        && (in_use || volumes.contains(&names::complete_marker(volume)))
}

/// The most bytes `up` may still write into the lab's pool holding `volumes`: the image
/// (`image_len` bytes) unless it is there whole; per node, its seed (`seeds`, in the lab's
/// node order) unless there whole, and its disk at its full virtual size unless its overlay
/// is there; with `snapshot`, one lab-wide snapshot's memory state ([`Lab::snapshot_bytes_max`]),
/// which lands in the disks.
pub(super) fn needed(
    lab: &Lab,
    volumes: &[String],
    image_len: u64,
    seeds: &[u64],
    snapshot: bool,
) -> u64 {
    let has = |v: &str| volumes.iter().any(|x| x == v);
    let in_use = lab
        .nodes
        .iter()
        .any(|n| has(&names::overlay_volume(&n.name)));
    let image = if whole(volumes, &names::image_volume(&lab.image.name), in_use) {
        0
    } else {
        image_len
    };
    let nodes: u64 = lab
        .nodes
        .iter()
        .zip(seeds)
        .map(|(n, &seed)| {
            let overlay = names::overlay_volume(&n.name);
            let seed = if whole(volumes, &names::seed_volume(&n.name), has(&overlay)) {
                0
            } else {
                seed
            };
            let disk = if has(&overlay) { 0 } else { n.disk.bytes() };
            seed + disk
        })
        .sum();
    let memory = if snapshot {
        lab.snapshot_bytes_max()
    } else {
        0
    };
    image + nodes + memory
}

/// Whether a call to write `len` bytes into a pool failed for want of space: libvirt's
/// error says so (ENOSPC's text, from the file system or `qemu-img`), or the pool, read after
/// the failure (`found`), has less free than the call was to write.
fn out_of_space(e: &LibvirtError, found: Option<&PoolFound>, len: u64) -> bool {
    let says = e.to_string().to_lowercase().contains("no space left");
    let short = found.is_some_and(|p| p.capacity > 0 && p.available < len.max(MIN_WRITE));
    says || short
}

impl Run<'_> {
    /// Refuses the run when the pool's free space cannot hold the most it may still write
    /// ([`needed`]), with the lab-wide snapshot `snapshot` unless every node has it. A pool
    /// that reports no capacity (a driver that cannot tell) is not checked.
    pub(super) fn check_space(
        &self,
        inv: &Inventory,
        pool: &str,
        volumes: &[String],
        (image, snapshot): (&Path, Option<&str>),
    ) -> Result<(), LifecycleError> {
        let Some(found) = self.hv.pool(pool)? else {
            return Ok(());
        };
        if found.capacity == 0 {
            return Ok(());
        }
        let lab = self.lab;
        let in_use = lab
            .nodes
            .iter()
            .any(|n| volumes.contains(&names::overlay_volume(&n.name)));
        let image_len = if whole(volumes, &names::image_volume(&lab.image.name), in_use) {
            0
        } else {
            std::fs::metadata(image)
                .map_err(|error| LifecycleError::Image {
                    path: image.to_path_buf(),
                    error,
                })?
                .len()
        };
        let seeds = lab
            .nodes
            .iter()
            .map(|n| {
                let seed = render::cloudinit::seed(lab, n, self.ctx);
                Ok(render::iso::seed_iso(&seed)?.len() as u64)
            })
            .collect::<Result<Vec<u64>, LifecycleError>>()?;
        let snapshot = match snapshot {
            Some(name) => !self.every_node_has(inv, name)?,
            None => false,
        };
        let need = needed(lab, volumes, image_len, &seeds, snapshot);
        if need <= found.available {
            return Ok(());
        }
        Err(LifecycleError::NoSpace {
            lab: lab.name.clone(),
            pool: pool.to_string(),
            path: found.path,
            need: ByteSize(need),
            free: ByteSize(found.available),
        })
    }

    /// Whether every node's domain has snapshot `name`.
    fn every_node_has(&self, inv: &Inventory, name: &str) -> Result<bool, LibvirtError> {
        for n in &self.lab.nodes {
            let domain = names::domain(&self.lab.name, &n.name);
            if inv.domain(&domain).is_none()
                || !self.hv.snapshots(&domain)?.iter().any(|s| s == name)
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The error of a create or upload of `volume` (`len` bytes to write) that failed: a
    /// [`LifecycleError::SpaceRanOut`] when libvirt says the disk is full (ENOSPC's text) or
    /// the pool has less free than the call was to write; else libvirt's error as it is.
    pub(super) fn ran_out(
        &self,
        pool: &str,
        volume: &str,
        len: u64,
        e: LibvirtError,
    ) -> LifecycleError {
        let found = self.hv.pool(pool).ok().flatten();
        if !out_of_space(&e, found.as_ref(), len) {
            return e.into();
        }
        LifecycleError::SpaceRanOut {
            pool: pool.to_string(),
            path: found.as_ref().map_or_else(
                || self.ctx.pool_dir.display().to_string(),
                |p| p.path.clone(),
            ),
            volume: volume.to_string(),
            free: found
                .filter(|p| p.capacity > 0)
                .map(|p| ByteSize(p.available)),
            error: Box::new(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{needed, out_of_space, whole};
    use crate::libvirt::{LibvirtError, PoolFound};
    use crate::names;

    fn lab() -> crate::model::Lab {
        // controller 4GiB memory, 5GB disk; compute1 2GiB memory, 10GB disk
        let source = crate::model::Source::resolve("openstack-debian12").unwrap();
        source.load(&crate::image::Catalogue::builtin()).unwrap().0
    }

    const GIB: u64 = 1 << 30;
    const IMAGE: u64 = 2 * GIB;
    const SEEDS: [u64; 2] = [300_000, 400_000];

    fn disks(lab: &crate::model::Lab) -> u64 {
        lab.nodes.iter().map(|n| n.disk.bytes()).sum()
    }

    #[test]
    fn an_empty_pool_needs_the_image_every_disk_at_full_size_the_seeds_and_a_snapshot() {
        let lab = lab();
        let all = IMAGE + disks(&lab) + 700_000;
        assert_eq!(disks(&lab), 15_000_000_000);
        assert_eq!(needed(&lab, &[], IMAGE, &SEEDS, false), all);
        assert_eq!(needed(&lab, &[], IMAGE, &SEEDS, true), all + 6 * GIB);
    }

    #[test]
    fn what_is_there_whole_is_not_needed_again() {
        let lab = lab();
        let v = |s: &str| s.to_string();
        let image = names::image_volume(&lab.image.name);
        let mut volumes = vec![v(&image), names::complete_marker(&image)];
        let all = IMAGE + disks(&lab) + 700_000;
        assert_eq!(needed(&lab, &volumes, IMAGE, &SEEDS, false), all - IMAGE);
        volumes.push(names::overlay_volume("compute1"));
        volumes.push(names::seed_volume("compute1"));
        assert_eq!(
            needed(&lab, &volumes, IMAGE, &SEEDS, false),
            all - IMAGE - 10_000_000_000 - 400_000,
            "a seed under a node's disk is whole, as `up` trusts it"
        );
        let every = [
            names::overlay_volume("controller"),
            names::seed_volume("controller"),
            names::complete_marker(&names::seed_volume("controller")),
        ];
        volumes.extend(every);
        assert_eq!(needed(&lab, &volumes, IMAGE, &SEEDS, false), 0);
        assert_eq!(needed(&lab, &volumes, IMAGE, &SEEDS, true), 6 * GIB);
    }

    #[test]
    fn a_half_uploaded_volume_is_needed_whole() {
        let lab = lab();
        let image = names::image_volume(&lab.image.name);
        let seed = names::seed_volume("controller");
        let volumes = vec![image.clone(), seed.clone()];
        assert!(!whole(&volumes, &image, false));
        assert!(whole(&volumes, &image, true), "a disk builds on it");
        assert_eq!(
            needed(&lab, &volumes, IMAGE, &SEEDS, false),
            IMAGE + disks(&lab) + 700_000
        );
    }

    fn failed(message: &str) -> LibvirtError {
        LibvirtError::Call {
            action: "create a volume in pool",
            object: "lab-x".into(),
            message: message.into(),
            code: 38,
        }
    }

    fn pool(capacity: u64, available: u64) -> PoolFound {
        PoolFound {
            name: "lab-x".into(),
            active: true,
            path: "/var/tmp/x/lab-x".into(),
            volumes: Vec::new(),
            capacity,
            available,
        }
    }

    #[test]
    fn a_full_disk_is_told_by_libvirts_words_or_by_what_the_pool_has_left() {
        let enospc = failed(
            "cannot allocate 2147483648 bytes in file '/var/tmp/x/lab-x/image-debian12.qcow2': No space left on device",
        );
        assert!(
            out_of_space(&enospc, None, 2 * GIB),
            "whatever the pool says"
        );
        let other = failed("Permission denied");
        let roomy = pool(100 * GIB, 50 * GIB);
        assert!(!out_of_space(&other, Some(&roomy), 2 * GIB));
        assert!(
            !out_of_space(&other, None, 2 * GIB),
            "unknown: libvirt's error"
        );
        let full = pool(100 * GIB, GIB);
        assert!(
            out_of_space(&other, Some(&full), 2 * GIB),
            "1GiB left for 2GiB"
        );
        assert!(
            !out_of_space(&other, Some(&full), 0),
            "an empty volume with 1GiB left failed for another cause"
        );
        assert!(out_of_space(&other, Some(&pool(100 * GIB, 4096)), 0));
        assert!(
            !out_of_space(&other, Some(&pool(0, 0)), 2 * GIB),
            "a pool that cannot tell its size"
        );
    }
}
