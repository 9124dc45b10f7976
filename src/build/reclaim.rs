//! The leftovers of a build that was killed (SIGKILL, a power cut: no guard ran): its work
//! directory `.OUT.build-<pid>/` beside the output, with the image's root mounted under it,
//! the host's /dev, /proc and /sys bound into that root, and the raw disk on a loop device.
//! The next build of the same output finds them by name, sees that the pid is gone, and
//! unmounts, detaches and removes them before it starts. Parsing is pure; acting uses the
//! same commands as [`super::disk::Cleanup`].

use std::path::{Path, PathBuf};

use super::cmd::{Cmd, CommandError};
use super::disk::{Undo, partx};

/// Work directories of earlier builds of `out` whose process is gone.
pub fn stale_work_dirs(out: &Path, alive: impl Fn(u32) -> bool) -> Vec<PathBuf> {
    let name = out.file_name().unwrap_or_default().to_string_lossy();
    let prefix = format!(".{name}.build-");
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut stale: Vec<PathBuf> = entries
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let pid: u32 = file.strip_prefix(&prefix)?.parse().ok()?;
            (!alive(pid)).then(|| e.path())
        })
        .collect();
    stale.sort();
    stale
}

/// Mount points at or under `dir` in a `/proc/self/mountinfo` text, deepest first (the order
/// to unmount them in).
pub fn mounts_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .filter(|m| m.starts_with(dir))
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    found.dedup();
    found
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        match rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok())
        {
            Some(b) => {
                out.push(b as char);
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out + rest
}

/// Loop devices in `losetup -j FILE` output (`/dev/loop3: []: (/path/disk.raw)` per line).
pub fn loop_devices(losetup_j: &str) -> Vec<String> {
    losetup_j
        .lines()
        .filter_map(|l| l.split_once(':').map(|(dev, _)| dev.trim().to_string()))
        .filter(|d| d.starts_with("/dev/loop"))
        .collect()
}

/// Whether process `pid` exists.
pub fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Unmounts, detaches and removes the leftovers of dead builds of `out`. Returns what was
/// removed, one entry per directory or file, for progress.
pub fn reclaim(out: &Path) -> Result<Vec<String>, CommandError> {
    let mut said = Vec::new();
    for dir in stale_work_dirs(out, pid_alive) {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mounts = mounts_under(&mountinfo, &dir);
        let raw = dir.join("disk.raw");
        let loops = if raw.exists() {
            loop_devices(&Cmd::new("losetup").arg("-j").path(&raw).run_always()?)
        } else {
            Vec::new()
        };
        let mut unmount = super::disk::Cleanup::default();
        mounts
            .iter()
            .rev()
            .for_each(|m| unmount.push(Undo::Unmount(m.clone())));
        unmount.undo_all()?;
        for dev in &loops {
            // No partition mappings if the build died before `partx -a`: nothing to undo.
            let _ = partx("-d", dev).run_always();
            Cmd::new("losetup").args(["-d", dev]).run_always()?;
        }
        std::fs::remove_dir_all(&dir).map_err(|e| CommandError::Failed {
            command: format!("rm -r {}", dir.display()),
            detail: format!("{e}: remove it by hand"),
        })?;
        said.push(format!(
            "what a stopped build left: {} ({} mounts, {} loop devices)",
            dir.display(),
            mounts.len(),
            loops.len()
        ));
    }
    // A stopped build's half-written image is never renamed into place: just remove it.
    let name = out.file_name().unwrap_or_default().to_string_lossy();
    let tmp_prefix = format!(".{name}.tmp-");
    if let Some(Ok(entries)) = out.parent().map(std::fs::read_dir) {
        for e in entries.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            let dead = file
                .strip_prefix(&tmp_prefix)
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|pid| !pid_alive(pid));
            if dead && std::fs::remove_file(e.path()).is_ok() {
                said.push(format!("a stopped build's {}", e.path().display()));
            }
        }
    }
    Ok(said)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_under_a_dir_deepest_first_with_escapes() {
        let info = "\
22 1 8:1 / / rw - ext4 /dev/vda rw
90 22 7:3 / /var/tmp/.x.qcow2.build-7/root rw - ext4 /dev/loop3p1 rw
91 90 0:5 / /var/tmp/.x.qcow2.build-7/root/dev rw - devtmpfs udev rw
92 91 0:6 / /var/tmp/.x.qcow2.build-7/root/dev/pts rw - devpts devpts rw
93 22 0:7 / /var/tmp/other\\040dir rw - tmpfs t rw
94 22 0:8 / /var/tmp/.x.qcow2.build-77 rw - tmpfs t rw";
        let dir = Path::new("/var/tmp/.x.qcow2.build-7");
        let got = mounts_under(info, dir);
        assert_eq!(
            got,
            [
                dir.join("root/dev/pts"),
                dir.join("root/dev"),
                dir.join("root")
            ]
        );
        let spaced = mounts_under(info, Path::new("/var/tmp/other dir"));
        assert_eq!(spaced, [PathBuf::from("/var/tmp/other dir")]);
    }

    #[test]
    fn loop_devices_from_losetup_j() {
        let out = "/dev/loop3: []: (/var/tmp/.x.build-7/disk.raw)\n/dev/loop11: [2049]:12 (/var/tmp/.x.build-7/disk.raw)\n";
        assert_eq!(loop_devices(out), ["/dev/loop3", "/dev/loop11"]);
        assert!(loop_devices("").is_empty());
    }

    #[test]
    fn only_dead_builds_of_this_output_are_stale() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("x.qcow2");
        for d in [
            ".x.qcow2.build-10",
            ".x.qcow2.build-20",
            ".y.qcow2.build-10",
            ".x.qcow2.build-z",
        ] {
            std::fs::create_dir(tmp.path().join(d)).unwrap();
        }
        let stale = stale_work_dirs(&out, |pid| pid == 20);
        assert_eq!(stale, [tmp.path().join(".x.qcow2.build-10")]);
    }
}
