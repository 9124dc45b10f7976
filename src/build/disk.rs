//! The host-side steps of a build as commands (pure constructors), and [`Cleanup`], the guard
//! that undoes every loop device, partition mapping, mount and work directory a build set up,
//! also when the build fails or panics.

use std::path::{Path, PathBuf};

use super::cmd::{Cmd, CommandError};
use super::recipe::Recipe;

/// The MBR layout: one bootable Linux partition from 1 MiB to the end (room for grub's core).
pub const SFDISK_SCRIPT: &str = "label: dos\nstart=2048, type=83, bootable\n";

/// PATH inside the image's chroot (the host's may lack sbin or name host-only dirs).
const CHROOT_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// mmdebstrap of the variant into the tarball `tar`.
pub fn mmdebstrap(recipe: &Recipe, full: bool, mirror: &str, tar: &Path) -> Cmd {
    Cmd::new("mmdebstrap")
        .arg("--variant=apt")
        .arg("--mode=root")
        .arg(format!("--include={}", recipe.packages(full).join(",")))
        .arg(&recipe.suite)
        .path(tar)
        .arg(mirror)
}

/// sfdisk writing [`SFDISK_SCRIPT`] to the raw disk file.
pub fn sfdisk(raw: &Path) -> Cmd {
    Cmd::new("sfdisk")
        .arg("--quiet")
        .path(raw)
        .stdin(SFDISK_SCRIPT)
}

/// losetup attaching `raw` to a free loop device; prints the device.
pub fn losetup_attach(raw: &Path) -> Cmd {
    Cmd::new("losetup").args(["--find", "--show"]).path(raw)
}

/// partx adding (`-a`) or deleting (`-d`) the partitions of a loop device: the host kernel
/// does not scan MBR partitions of a loop device by itself.
pub fn partx(flag: &str, device: &str) -> Cmd {
    Cmd::new("partx").arg(flag).arg(device)
}

/// The first partition's device node of a loop device: `/dev/loop3` → `/dev/loop3p1`.
pub fn partition(device: &str) -> String {
    format!("{device}p1")
}

/// mkfs.ext4 with the recipe's fixed UUID.
pub fn mkfs(part: &str, uuid: &str) -> Cmd {
    Cmd::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "root", "-U", uuid])
        .arg(part)
}

/// Mounts `source` on `dir`; `bind` for a bind mount of a host directory.
pub fn mount(source: &str, dir: &Path, bind: bool) -> Cmd {
    let cmd = Cmd::new("mount");
    let cmd = if bind { cmd.arg("--bind") } else { cmd };
    cmd.arg(source).path(dir)
}

/// Unpacks mmdebstrap's tarball into `dir`, keeping owners, modes and file capabilities.
pub fn untar(tar: &Path, dir: &Path) -> Cmd {
    Cmd::new("tar")
        .args(["--extract", "--numeric-owner", "--preserve-permissions"])
        .args(["--xattrs", "--xattrs-include=*", "--file"])
        .path(tar)
        .arg("--directory")
        .path(dir)
}

/// `args` run inside the image rooted at `root`.
pub fn chroot<I, S>(root: &Path, args: I) -> Cmd
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    Cmd::new("chroot")
        .path(root)
        .args(args)
        .env("PATH", CHROOT_PATH)
        .env("LC_ALL", "C")
        .env("DEBIAN_FRONTEND", "noninteractive")
}

/// grub-install for BIOS boot on the loop device, run with the image's own grub.
pub fn grub_install(root: &Path, device: &str) -> Cmd {
    chroot(
        root,
        [
            "grub-install",
            "--target=i386-pc",
            "--modules=part_msdos ext2",
            device,
        ],
    )
}

/// qemu-img convert of the raw disk to qcow2, compressed or not, printing its progress
/// (`-p`, read by [`convert_percent`]).
pub fn convert(raw: &Path, qcow2: &Path, compress: bool) -> Cmd {
    let cmd = Cmd::new("qemu-img").args(["convert", "-p", "-O", "qcow2"]);
    let cmd = if compress { cmd.arg("-c") } else { cmd };
    cmd.path(raw).path(qcow2)
}

/// The percentage in a piece of `qemu-img convert -p` output: `    (12.50/100%)`.
pub fn convert_percent(piece: &str) -> Option<f64> {
    let inner = piece.trim().strip_prefix('(')?.strip_suffix("/100%)")?;
    let pct: f64 = inner.trim().parse().ok()?;
    (0.0..=100.0).contains(&pct).then_some(pct)
}

/// One thing a build set up and must undo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// A work directory to delete (only when every unmount before it succeeded).
    RemoveDir(PathBuf),
    /// A loop device to detach.
    Detach(String),
    /// Partition mappings of a loop device to delete.
    Partitions(String),
    /// A mount point to unmount (lazily when a plain unmount fails).
    Unmount(PathBuf),
}

/// Guard over everything a build set up; [`Drop`] undoes it, newest first.
#[derive(Debug, Default)]
pub struct Cleanup {
    stack: Vec<Undo>,
}

impl Cleanup {
    /// Records a step to undo.
    pub fn push(&mut self, undo: Undo) {
        self.stack.push(undo);
    }

    /// Undoes steps, newest first, down to (not including) the first `keep` ones; returns
    /// the first error. A work directory is never deleted after a failed unmount: it would
    /// still hold the image and the host's /dev, /proc and /sys.
    pub fn undo_to(&mut self, keep: usize) -> Result<(), CommandError> {
        let mut first = None;
        while self.stack.len() > keep {
            let step = self.stack.pop().expect("stack longer than keep");
            let res = match &step {
                Undo::RemoveDir(dir) if first.is_some() => {
                    leave(dir);
                    Ok(())
                }
                other => undo(other),
            };
            if let Err(e) = res {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Undoes everything.
    pub fn undo_all(&mut self) -> Result<(), CommandError> {
        self.undo_to(0)
    }

    /// Number of recorded steps (a mark for [`Cleanup::undo_to`]).
    pub fn len(&self) -> usize {
        self.stack.len()
    }

    /// Whether nothing is left to undo.
    pub fn is_empty(&self) -> bool {
        self.stack.is_empty()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Err(e) = self.undo_all() {
            eprintln!("lab: build cleanup: {e}");
        }
    }
}

/// Undoes one step.
fn undo(step: &Undo) -> Result<(), CommandError> {
    match step {
        Undo::RemoveDir(dir) => std::fs::remove_dir_all(dir).map_err(|e| CommandError::Failed {
            command: format!("rm -r {}", dir.display()),
            detail: format!("{e}: remove it by hand"),
        }),
        Undo::Detach(dev) => Cmd::new("losetup").args(["-d", dev]).run_always().map(drop),
        Undo::Partitions(dev) => partx("-d", dev).run_always().map(drop),
        Undo::Unmount(dir) => Cmd::new("umount")
            .path(dir)
            .run_always()
            .or_else(|_| Cmd::new("umount").arg("--lazy").path(dir).run_always())
            .map(drop),
    }
}

/// Says why a work directory stays behind.
fn leave(dir: &Path) {
    eprintln!(
        "lab: leaving {} in place: something under it could not be unmounted",
        dir.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_what_the_recipe_says() {
        let r = Recipe::debian12();
        let m = mmdebstrap(&r, false, "http://m/debian", Path::new("/w/root.tar"));
        assert_eq!(m.args[0], "--variant=apt");
        assert!(m.args[2].starts_with("--include=linux-image-cloud-amd64,"));
        assert!(!m.args[2].contains("rabbitmq"));
        assert_eq!(&m.args[3..], ["bookworm", "/w/root.tar", "http://m/debian"]);
        let full = mmdebstrap(&r, true, "http://m/debian", Path::new("/w/root.tar"));
        assert!(full.args[2].contains(",python3-openstackclient"));
        assert_eq!(
            sfdisk(Path::new("/w/d.raw")).stdin.as_deref(),
            Some(SFDISK_SCRIPT)
        );
        assert_eq!(
            mkfs("/dev/loop3p1", "u").to_string(),
            "mkfs.ext4 -q -F -L root -U u /dev/loop3p1"
        );
        assert_eq!(partition("/dev/loop3"), "/dev/loop3p1");
    }

    #[test]
    fn chroot_commands_run_the_images_tools() {
        let g = grub_install(Path::new("/w/mnt"), "/dev/loop3");
        assert_eq!(
            g.to_string(),
            "chroot /w/mnt grub-install --target=i386-pc '--modules=part_msdos ext2' /dev/loop3"
        );
        assert!(g.env.contains(&("LC_ALL".into(), "C".into())));
        let c = convert(Path::new("a.raw"), Path::new("b.tmp"), true);
        assert_eq!(c.to_string(), "qemu-img convert -p -O qcow2 -c a.raw b.tmp");
        let b = mount("/dev", Path::new("/w/mnt/dev"), true);
        assert_eq!(b.to_string(), "mount --bind /dev /w/mnt/dev");
    }

    #[test]
    fn cleanup_removes_dirs_newest_first_and_on_drop() {
        let base = std::env::temp_dir().join(format!("lab-cleanup-test-{}", std::process::id()));
        let inner = base.join("inner");
        std::fs::create_dir_all(&inner).unwrap();
        let mut c = Cleanup::default();
        c.push(Undo::RemoveDir(base.clone()));
        c.push(Undo::RemoveDir(inner.clone()));
        let mark = 1;
        c.undo_to(mark).unwrap();
        assert!(!inner.exists() && base.exists());
        assert_eq!(c.len(), 1);
        drop(c);
        assert!(!base.exists());
    }

    #[test]
    fn cleanup_keeps_the_work_dir_when_an_unmount_fails() {
        let base = std::env::temp_dir().join(format!("lab-cleanup-keep-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let mut c = Cleanup::default();
        c.push(Undo::RemoveDir(base.clone()));
        c.push(Undo::Unmount(base.join("not-a-mount-point")));
        assert!(c.undo_all().is_err());
        assert!(base.exists() && c.is_empty());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn convert_progress_is_read_from_qemu_img_pieces() {
        assert_eq!(convert_percent("    (0.00/100%)"), Some(0.0));
        assert_eq!(convert_percent("    (12.50/100%)"), Some(12.5));
        assert_eq!(convert_percent("(100.00/100%)"), Some(100.0));
        assert_eq!(convert_percent("(101.00/100%)"), None);
        assert_eq!(convert_percent("qemu-img: warning"), None);
        assert_eq!(convert_percent("    (x/100%)"), None);
    }
}
