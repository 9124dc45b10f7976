//! The phases of a build, in order: bootstrap, disk, configure, convert.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cmd::Cmd;
use super::disk::{self, Cleanup, Undo};
use super::recipe::{self, FILES};
use super::{Build, BuildError, Run, exec, make_dir, write};

impl Build<'_> {
    fn tarball(&self) -> PathBuf {
        self.work.join("root.tar")
    }

    fn raw(&self) -> PathBuf {
        self.work.join("disk.raw")
    }

    /// mmdebstrap of the variant into a tarball in the work directory.
    pub(super) fn bootstrap(&self, run: &mut Run) -> Result<(), BuildError> {
        let mirror = self.opts.mirror.as_deref().unwrap_or(&self.recipe.mirror);
        let packages = self.recipe.packages(self.opts.full).len();
        run.begin(
            "bootstrap",
            format!(
                "mmdebstrap {} with {packages} packages from {mirror}",
                self.recipe.suite
            ),
        );
        let cmd = disk::mmdebstrap(self.recipe, self.opts.full, mirror, &self.tarball());
        exec("bootstrap", &cmd)?;
        run.end();
        Ok(())
    }

    /// Raw disk, partition, loop device, filesystem, unpacked tarball; then
    /// [`Build::configure`], then everything but the work directory undone.
    pub(super) fn disk(&self, run: &mut Run, cleanup: &mut Cleanup) -> Result<(), BuildError> {
        let mark = cleanup.len();
        run.begin(
            "disk",
            format!("{} MiB raw disk, ext4, unpack", self.size >> 20),
        );
        let raw = self.raw();
        let file = std::fs::File::create(&raw).and_then(|f| f.set_len(self.size));
        file.map_err(|source| BuildError::Io {
            phase: "disk",
            action: "create",
            path: raw.clone(),
            source,
        })?;
        exec("disk", &disk::sfdisk(&raw))?;
        let dev = exec("disk", &disk::losetup_attach(&raw))?
            .trim()
            .to_string();
        cleanup.push(Undo::Detach(dev.clone()));
        exec("disk", &disk::partx("-a", &dev))?;
        cleanup.push(Undo::Partitions(dev.clone()));
        let part = disk::partition(&dev);
        wait_for_node(&part)?;
        exec("disk", &disk::mkfs(&part, &self.recipe.root_uuid))?;
        let root = self.work.join("root");
        make_dir(&root, "disk")?;
        exec("disk", &disk::mount(&part, &root, false))?;
        cleanup.push(Undo::Unmount(root.clone()));
        exec("disk", &disk::untar(&self.tarball(), &root))?;
        run.end();
        self.configure(run, cleanup, &root, &dev)?;
        run.begin("unmount", "chroot mounts, filesystem, loop device".into());
        cleanup.undo_to(mark).map_err(BuildError::Cleanup)?;
        run.end();
        Ok(())
    }

    /// Makes the unpacked tree a first-boot cloud image: recipe files, fstab, no identity,
    /// grub on the disk, services of the variant disabled.
    fn configure(
        &self,
        run: &mut Run,
        cleanup: &mut Cleanup,
        root: &Path,
        dev: &str,
    ) -> Result<(), BuildError> {
        run.begin("configure", "files, identity, grub".into());
        for (path, text) in FILES {
            let dest = root.join(path);
            make_dir(
                dest.parent().expect("recipe files are under a directory"),
                "configure",
            )?;
            write(&dest, text, "configure")?;
        }
        write(
            &root.join("etc/fstab"),
            &recipe::fstab(&self.recipe.root_uuid),
            "configure",
        )?;
        forget_identity(root)?;
        for dir in ["dev", "proc", "sys"] {
            let target = root.join(dir);
            exec("configure", &disk::mount(&format!("/{dir}"), &target, true))?;
            cleanup.push(Undo::Unmount(target));
        }
        self.grub(root, dev)?;
        let services = self.recipe.disabled_services(self.opts.full);
        if !services.is_empty() {
            let args = ["systemctl", "disable"].map(String::from);
            let cmd = disk::chroot(root, args.iter().chain(services));
            exec("configure", &cmd)?;
        }
        run.end();
        Ok(())
    }

    /// grub-install and update-grub with the image's grub, then root=UUID in grub.cfg.
    fn grub(&self, root: &Path, dev: &str) -> Result<(), BuildError> {
        exec("grub", &disk::grub_install(root, dev))?;
        exec("grub", &disk::chroot(root, ["update-grub"]))?;
        let cfg_path = root.join("boot/grub/grub.cfg");
        let cfg = std::fs::read_to_string(&cfg_path).map_err(|source| BuildError::Io {
            phase: "grub",
            action: "read",
            path: cfg_path.clone(),
            source,
        })?;
        let part = disk::partition(dev);
        let uuid = &self.recipe.root_uuid;
        let fixed = recipe::rewrite_root(&cfg, &part, uuid);
        if !fixed.contains(&format!("root=UUID={uuid}")) {
            return Err(BuildError::GrubRoot(part));
        }
        write(&cfg_path, &fixed, "grub")
    }

    /// qemu-img convert of the raw disk into a temporary file beside `out`, renamed to `out`.
    pub(super) fn convert(&self, run: &mut Run, out: &Path) -> Result<(), BuildError> {
        let compress = if self.opts.compress {
            ", compressed"
        } else {
            ""
        };
        run.begin("convert", format!("qcow2{compress}"));
        let name = out.file_name().unwrap_or_default().to_string_lossy();
        let tmp = out.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let cmd = disk::convert(&self.raw(), &tmp, self.opts.compress);
        // The bar counts bytes of the raw disk: qemu-img reports a percentage of it.
        let size = self.size;
        let mut each = |piece: &str| {
            if let Some(pct) = disk::convert_percent(piece) {
                run.moved((size as f64 * pct / 100.0) as u64, size);
            }
        };
        let converted = cmd
            .run_each(&mut each)
            .map_err(|error| BuildError::Command {
                phase: "convert",
                error,
            });
        let done = converted.and_then(|_| {
            std::fs::rename(&tmp, out).map_err(|source| BuildError::Io {
                phase: "convert",
                action: "rename into place",
                path: out.to_path_buf(),
                source,
            })
        });
        if done.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        done?;
        run.end();
        Ok(())
    }
}

/// Empties what makes a machine itself, so the first boot of every overlay is a real first
/// boot: machine-id, SSH host keys, cloud-init's state.
fn forget_identity(root: &Path) -> Result<(), BuildError> {
    write(&root.join("etc/machine-id"), "", "configure")?;
    let ssh = root.join("etc/ssh");
    let keys = std::fs::read_dir(&ssh).map_err(|source| BuildError::Io {
        phase: "configure",
        action: "list",
        path: ssh.clone(),
        source,
    })?;
    let host_keys = keys.flatten().map(|e| e.path()).filter(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("ssh_host_"))
    });
    for key in host_keys {
        remove(&key, std::fs::remove_file(&key))?;
    }
    let cloud = root.join("var/lib/cloud");
    if cloud.exists() {
        remove(&cloud, std::fs::remove_dir_all(&cloud))?;
    }
    Ok(())
}

fn remove(path: &Path, res: std::io::Result<()>) -> Result<(), BuildError> {
    res.map_err(|source| BuildError::Io {
        phase: "configure",
        action: "remove",
        path: path.to_path_buf(),
        source,
    })
}

/// Waits for the partition's device node; without devtmpfs (some containers) makes it from
/// sysfs with mknod.
fn wait_for_node(part: &str) -> Result<(), BuildError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if Path::new(part).exists() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let name = part.trim_start_matches("/dev/");
    let numbers = std::fs::read_to_string(format!("/sys/class/block/{name}/dev"))
        .map_err(|_| BuildError::NoPartition(part.to_string()))?;
    let (major, minor) = numbers
        .trim()
        .split_once(':')
        .ok_or_else(|| BuildError::NoPartition(part.to_string()))?;
    let mknod = Cmd::new("mknod").args([part, "b", major, minor]);
    exec("disk", &mknod).map(drop)
}
