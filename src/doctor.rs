//! `lab doctor`: checks the host for a lab and says what to do about each problem.
//! Each check reads reality (device files, libvirt, the file system) and yields a [`Finding`].

use std::path::Path;

use serde::Serialize;

use crate::host;
use crate::libvirt::Hypervisor;
use crate::lifecycle::{Clash, Inventory};
use crate::model::Lab;
use crate::model::units::ByteSize;
use crate::render::Accel;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    /// Works, slower or with less: the lab can still come up.
    Warn,
    /// The lab cannot come up until this is fixed.
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub level: Level,
    pub detail: String,
    /// What to do (empty when all is well).
    pub fix: String,
}

fn finding(
    check: &'static str,
    level: Level,
    detail: impl Into<String>,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        check,
        level,
        detail: detail.into(),
        fix: fix.into(),
    }
}

/// Acceleration: kvm only when /dev/kvm opens and the cpu has vmx/svm.
pub fn accel() -> Finding {
    let choice = host::detect_accel();
    match choice.accel {
        Accel::Kvm => finding("kvm", Level::Ok, choice.reason, ""),
        Accel::Tcg => finding(
            "kvm",
            Level::Warn,
            choice.reason,
            "guests run under tcg, several times slower: enable virtualization (vmx/svm) in the firmware or the outer hypervisor",
        ),
    }
}

/// Nested virtualization, for nova's own guests on the compute node.
pub fn nested() -> Finding {
    match host::nested_virt() {
        true => finding("nested", Level::Ok, "nested virtualization is on", ""),
        false => finding(
            "nested",
            Level::Warn,
            "nested virtualization is off or unknown",
            "nova on the compute node will need virt_type = qemu; for kvm inside it: modprobe kvm_intel nested=1 (or kvm_amd)",
        ),
    }
}

/// Whether libvirt answers on the URI.
pub fn libvirt(uri: &str, result: &Result<(), crate::libvirt::LibvirtError>) -> Finding {
    match result {
        Ok(()) => finding(
            "libvirt",
            Level::Ok,
            format!("libvirt answers on {uri}"),
            "",
        ),
        Err(e) => finding(
            "libvirt",
            Level::Fail,
            e.to_string(),
            "start libvirtd (systemctl start libvirtd), or join the libvirt group, or pass --connect qemu:///session",
        ),
    }
}

/// Memory the nodes ask for against what the host has.
pub fn memory(lab: &Lab, available: Option<u64>) -> Finding {
    let need: u64 = lab.nodes.iter().map(|n| n.memory.bytes()).sum();
    match available {
        None => finding(
            "memory",
            Level::Warn,
            "libvirt cannot tell the host's free memory",
            "",
        ),
        Some(free) if free >= need => finding(
            "memory",
            Level::Ok,
            format!(
                "the nodes need {}, the host has {} available",
                ByteSize(need).human(),
                ByteSize(free).human()
            ),
            "",
        ),
        Some(free) => finding(
            "memory",
            Level::Fail,
            format!(
                "the nodes need {}, the host has {} available",
                ByteSize(need).human(),
                ByteSize(free).human()
            ),
            "stop other guests, or lower memory in the lab file",
        ),
    }
}

/// Free disk at the pool root against the nodes' disks (overlays grow up to them).
pub fn disk(lab: &Lab, pool_root: &Path, free: Option<u64>) -> Finding {
    let need: u64 =
        lab.nodes.iter().map(|n| n.disk.bytes()).sum::<u64>() + lab.image.virtual_size.bytes();
    match free {
        None => finding(
            "disk",
            Level::Warn,
            format!("cannot read free space of {}", pool_root.display()),
            "",
        ),
        Some(f) if f >= need => finding(
            "disk",
            Level::Ok,
            format!(
                "{} free under {}, the lab may use up to {}",
                ByteSize(f).human(),
                pool_root.display(),
                ByteSize(need).human()
            ),
            "",
        ),
        Some(f) => finding(
            "disk",
            Level::Warn,
            format!(
                "{} free under {}, the lab may grow to {}",
                ByteSize(f).human(),
                pool_root.display(),
                ByteSize(need).human()
            ),
            "free disk space or use --pool-root on a larger file system",
        ),
    }
}

/// Objects or subnets in the way.
pub fn clashes(lab: &Lab, inv: &Inventory, routes: &[Clash]) -> Finding {
    let mut all = inv.clashes(lab);
    all.extend(routes.iter().cloned());
    if all.is_empty() {
        finding(
            "clashes",
            Level::Ok,
            "no foreign object with the lab's names, no subnet overlap",
            "",
        )
    } else {
        let detail = all
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        finding("clashes", Level::Fail, detail, "see each problem above")
    }
}

/// Every check that needs libvirt, on an open connection.
pub fn with_libvirt(lab: &Lab, hv: &dyn Hypervisor, local: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    match hv.free_memory() {
        Ok(m) => out.push(memory(lab, m)),
        Err(e) => out.push(finding("memory", Level::Warn, e.to_string(), "")),
    }
    match Inventory::read(hv, &lab.name, None) {
        Ok(inv) => {
            let table = if local {
                std::fs::read_to_string("/proc/net/route").unwrap_or_default()
            } else {
                String::new()
            };
            let routes = crate::lifecycle::route_clashes(lab, &table);
            out.push(clashes(lab, &inv, &routes));
        }
        Err(e) => out.push(finding("clashes", Level::Fail, e.to_string(), "")),
    }
    out
}

/// The lab can come up when no finding fails.
pub fn can_come_up(findings: &[Finding]) -> bool {
    findings.iter().all(|f| f.level != Level::Fail)
}

/// Free bytes of the file system holding `path` (or its nearest existing parent).
pub fn free_space(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let st = nix::sys::statvfs::statvfs(existing).ok()?;
    Some(st.blocks_available() * st.fragment_size())
}

/// The base image is cached and verified.
pub fn image(lab: &Lab, cache: Result<std::path::PathBuf, crate::cache::CacheError>) -> Finding {
    match cache {
        Ok(p) => finding(
            "image",
            Level::Ok,
            format!("{} cached and verified at {}", lab.image.name, p.display()),
            "",
        ),
        Err(e) => finding(
            "image",
            Level::Fail,
            e.to_string(),
            "get the image as the message says",
        ),
    }
}

/// The pool directory's parents let the hypervisor's user (libvirt-qemu) reach the files.
pub fn traversable(pool_dir: &Path) -> Finding {
    use std::os::unix::fs::PermissionsExt;
    let blocked = pool_dir
        .ancestors()
        .skip(1)
        .filter(|p| p.exists())
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o001 == 0)
                .unwrap_or(false)
        });
    match blocked {
        None => finding(
            "pool-dir",
            Level::Ok,
            format!(
                "{} is reachable by the hypervisor's user",
                pool_dir.display()
            ),
            "",
        ),
        Some(p) => finding(
            "pool-dir",
            Level::Fail,
            format!(
                "{} is not searchable by others: qemu (libvirt-qemu) cannot reach the lab's disks",
                p.display()
            ),
            format!("chmod o+x {} or use --pool-root elsewhere", p.display()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> Lab {
        crate::model::debian_lab()
    }

    #[test]
    fn memory_fails_only_when_the_host_lacks_it() {
        let lab = lab();
        assert_eq!(memory(&lab, Some(8 << 30)).level, Level::Ok);
        let short = memory(&lab, Some(4 << 30));
        assert_eq!(short.level, Level::Fail);
        assert!(
            short.detail.contains("need 6.0GiB") && short.detail.contains("4.0GiB"),
            "{}",
            short.detail
        );
        assert_eq!(memory(&lab, None).level, Level::Warn);
        assert!(!can_come_up(&[short]));
    }

    #[test]
    fn disk_counts_every_node_disk_and_the_image() {
        let lab = lab();
        let need = 5_000_000_000 + 10_000_000_000 + (4u64 << 30);
        assert_eq!(disk(&lab, Path::new("/x"), Some(need)).level, Level::Ok);
        assert_eq!(
            disk(&lab, Path::new("/x"), Some(need - 1)).level,
            Level::Warn
        );
    }

    #[test]
    fn a_parent_closed_to_others_blocks_the_pool_dir() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let closed = tmp.path().join("home");
        std::fs::create_dir(&closed).unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        let f = traversable(&closed.join("images/lab-x"));
        assert_eq!(f.level, Level::Fail);
        assert!(
            f.fix.contains(&format!("chmod o+x {}", closed.display())),
            "{}",
            f.fix
        );
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o711)).unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        assert_eq!(traversable(&closed.join("images/lab-x")).level, Level::Ok);
    }

    #[test]
    fn free_space_reads_the_nearest_existing_parent() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(free_space(&tmp.path().join("not/yet")).unwrap() > 0);
    }
}
