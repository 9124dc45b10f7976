//! Facts about the hypervisor host that `lab` reads rather than assumes.

use crate::render::Accel;

/// Why `auto` chose what it chose, for a one-line note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccelChoice {
    pub accel: Accel,
    pub reason: String,
}

/// kvm only when /dev/kvm opens read-write AND the CPU flags show vmx or svm; else tcg.
/// libvirt's capabilities are not enough: a nested "PVM" /dev/kvm has no vmx/svm and hangs
/// stock guest kernels.
pub fn detect_accel() -> AccelChoice {
    let kvm_opens = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    choose_accel(kvm_opens, &cpuinfo)
}

/// The pure decision behind [`detect_accel`].
pub fn choose_accel(kvm_opens: bool, cpuinfo: &str) -> AccelChoice {
    let virt_flag = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    match (kvm_opens, virt_flag) {
        (true, true) => AccelChoice {
            accel: Accel::Kvm,
            reason: "/dev/kvm opens and the cpu has vmx/svm".into(),
        },
        (false, _) => AccelChoice {
            accel: Accel::Tcg,
            reason: "/dev/kvm cannot be opened: guests run under tcg (slower); see `lab doctor`"
                .into(),
        },
        (true, false) => AccelChoice {
            accel: Accel::Tcg,
            reason:
                "/dev/kvm exists but the cpu shows no vmx/svm (nested pvm): guests run under tcg"
                    .into(),
        },
    }
}

/// Whether the host's kvm module offers nested virtualization.
pub fn nested_virt() -> bool {
    [
        "/sys/module/kvm_intel/parameters/nested",
        "/sys/module/kvm_amd/parameters/nested",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok())
    .any(|v| matches!(v.trim(), "Y" | "1"))
}

/// The host's size, what `lab plan` compares a lab with; `None` where it cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostSize {
    /// MemTotal of /proc/meminfo, in bytes.
    pub memory: Option<u64>,
    /// CPUs this process may run on.
    pub cpus: Option<u32>,
}

/// Reads the host's memory (/proc/meminfo) and CPU count.
pub fn host_size() -> HostSize {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    HostSize {
        memory: mem_total(&meminfo),
        cpus: std::thread::available_parallelism()
            .ok()
            .and_then(|n| u32::try_from(n.get()).ok()),
    }
}

/// MemTotal of a /proc/meminfo text, in bytes.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let kib: u64 = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kvm_needs_both_the_device_and_the_cpu_flag() {
        let vmx = "processor : 0\nflags : fpu vme vmx sse\n";
        let none = "processor : 0\nflags : fpu vme sse hypervisor\n";
        assert_eq!(choose_accel(true, vmx).accel, Accel::Kvm);
        assert_eq!(choose_accel(true, "flags : svm\n").accel, Accel::Kvm);
        assert_eq!(choose_accel(true, none).accel, Accel::Tcg);
        assert_eq!(choose_accel(false, vmx).accel, Accel::Tcg);
        assert!(choose_accel(true, none).reason.contains("pvm"));
    }

    #[test]
    fn mem_total_is_read_in_bytes() {
        let meminfo = "MemTotal:       24683652 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total(meminfo), Some(24683652 * 1024));
        assert_eq!(mem_total("MemFree: 1000 kB\n"), None);
        assert_eq!(mem_total("MemTotal: lots\n"), None);
    }
}
