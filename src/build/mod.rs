//! `lab image build`: makes a bootable Debian 12 qcow2 offline from Debian packages, with no
//! cloud image download: mmdebstrap into a tarball, a raw MBR disk on a loop device, grub
//! from the image itself, then qemu-img convert. The recipe is data (`profiles/debian12/image/`,
//! see [`recipe`]); the host commands are data too (see [`disk`], [`cmd`]).
//!
//! Needs root (loop devices, mount, chroot) and the host packages mmdebstrap, fdisk, mount,
//! util-linux, e2fsprogs and qemu-utils. Everything set up is undone by a guard
//! ([`disk::Cleanup`]) also when a step fails.

pub mod cmd;
pub mod disk;
pub mod recipe;
pub mod reclaim;

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::image::Image;
use crate::names;
use crate::progress::{Action, Progress, Work};
use cmd::{Cmd, CommandError};
use disk::{Cleanup, Undo};
use recipe::Recipe;

pub use recipe::recipe_hash;

/// How to build.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildOptions {
    /// Add the guide's controller services (installed, disabled).
    pub full: bool,
    /// Debian mirror to bootstrap from; `None` uses the recipe's (deb.debian.org). A
    /// classroom without internet points this at its local mirror.
    pub mirror: Option<String>,
    /// Compress the qcow2 clusters (`qemu-img convert -c`): smaller, slower to build.
    pub compress: bool,
}

/// What a successful build made.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildReport {
    /// The qcow2 written.
    pub out: PathBuf,
    /// [`recipe_hash`] of the variant, also written to [`recipe_file`].
    pub recipe_hash: String,
    /// Size of the qcow2 file in bytes.
    pub size: u64,
    /// Seconds spent per phase, in order.
    pub phases: Vec<(&'static str, f64)>,
    /// Whole build.
    pub total: Duration,
}

/// Why a build failed. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "image {0} has no build recipe: only debian12 is built; fetch the others with `lab image pull`"
    )]
    NoRecipe(String),
    #[error("building an image needs root (loop devices, mount, chroot): run it as root")]
    NotRoot,
    /// (The command's error is in the message, not a `source`: printed once.)
    #[error("{phase}: {error}")]
    Command {
        phase: &'static str,
        error: CommandError,
    },
    #[error("{phase}: cannot {action} {}: {source}", path.display())]
    Io {
        phase: &'static str,
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "disk: partition {0} did not appear after `partx -a`: check the loop driver (modprobe loop) and that /dev is a devtmpfs"
    )]
    NoPartition(String),
    #[error(
        "grub: update-grub wrote no root={0} kernel argument to rewrite: check /boot/grub/grub.cfg in the image recipe"
    )]
    GrubRoot(String),
    #[error("cleanup: {0}: unmount and detach by hand (see `losetup -a`, `findmnt`)")]
    Cleanup(CommandError),
}

impl crate::failure::Classify for BuildError {
    fn class(&self) -> crate::failure::ExitClass {
        crate::failure::ExitClass::Host
    }
}

/// Where the recipe hash of the image at `out` is recorded: beside it.
pub fn recipe_file(out: &Path) -> PathBuf {
    let name = out.file_name().unwrap_or_default().to_string_lossy();
    out.with_file_name(names::image_recipe_file(&name))
}

/// Whether `out` exists and was built from the current recipe of the variant.
pub fn is_current(out: &Path, full: bool) -> bool {
    out.is_file()
        && std::fs::read_to_string(recipe_file(out)).is_ok_and(|h| h.trim() == recipe_hash(full))
}

/// Builds `image` into `out` (a qcow2, written to a temporary file and renamed), reporting
/// each phase to `progress` (kind: the phase, name: what it does) as running, then done or
/// failed; the convert phase also reports the bytes of the raw disk converted so far.
pub fn build(
    image: &Image,
    opts: &BuildOptions,
    out: &Path,
    progress: &dyn Progress,
) -> Result<BuildReport, BuildError> {
    let start = Instant::now();
    if image.name != "debian12" {
        return Err(BuildError::NoRecipe(image.name.clone()));
    }
    check_host()?;
    for what in reclaim::reclaim(out).map_err(BuildError::Cleanup)? {
        progress.event(Work::now("reclaim", &what, Action::Removed).into());
    }
    let recipe = Recipe::debian12();
    let mut run = Run::new(progress);
    let work = work_dir(out);
    let mut cleanup = Cleanup::default();
    make_dir(&work, "prepare")?;
    cleanup.push(Undo::RemoveDir(work.clone()));
    let b = Build {
        recipe: &recipe,
        opts,
        work: &work,
        size: image.virtual_size.bytes(),
    };
    b.bootstrap(&mut run)?;
    b.disk(&mut run, &mut cleanup)?;
    b.convert(&mut run, out)?;
    cleanup.undo_all().map_err(BuildError::Cleanup)?;
    let hash = recipe_hash(opts.full);
    write(&recipe_file(out), &format!("{hash}\n"), "record")?;
    let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    let total = start.elapsed();
    Ok(BuildReport {
        out: out.to_path_buf(),
        recipe_hash: hash,
        size,
        phases: std::mem::take(&mut run.phases),
        total,
    })
}

/// Fails early, before minutes of bootstrapping, when not root or a host tool is missing.
fn check_host() -> Result<(), BuildError> {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    if uid != 0 {
        return Err(BuildError::NotRoot);
    }
    let tools = [
        "mmdebstrap",
        "sfdisk",
        "losetup",
        "partx",
        "mkfs.ext4",
        "mount",
        "umount",
        "tar",
        "chroot",
        "qemu-img",
    ];
    match tools.iter().find(|t| cmd::find_program(t).is_none()) {
        Some(t) => Err(BuildError::Command {
            phase: "check",
            error: CommandError::Missing {
                program: t.to_string(),
                package: cmd::package_of(t),
            },
        }),
        None => Ok(()),
    }
}

/// The work directory: beside `out` (same filesystem for the final rename; the tarball and
/// raw disk are too big for a tmpfs /tmp).
fn work_dir(out: &Path) -> PathBuf {
    let name = out.file_name().unwrap_or_default().to_string_lossy();
    out.with_file_name(format!(".{name}.build-{}", std::process::id()))
}

/// Phase timing and progress events. A phase begun and not ended (its step failed) is
/// reported failed when the run is dropped.
struct Run<'a> {
    progress: &'a dyn Progress,
    phases: Vec<(&'static str, f64)>,
    /// The phase running: its name, what it does, since when.
    current: Option<(&'static str, String, Instant)>,
}

impl<'a> Run<'a> {
    fn new(progress: &'a dyn Progress) -> Run<'a> {
        Run {
            progress,
            phases: Vec::new(),
            current: None,
        }
    }

    /// Announces a phase and starts its clock.
    fn begin(&mut self, phase: &'static str, what: String) {
        self.progress.event(Work::running(phase, &what).into());
        self.current = Some((phase, what, Instant::now()));
    }

    /// Reports how far the running phase is: `done` of `total` bytes.
    fn moved(&self, done: u64, total: u64) {
        if let Some((phase, what, started)) = &self.current {
            let moved = Action::Moved {
                done,
                total: Some(total),
            };
            let work = Work::since(phase, what, moved, *started);
            self.progress.event(work.into());
        }
    }

    /// Ends the running phase: records and reports its seconds.
    fn end(&mut self) {
        self.finish(Action::Done);
    }

    fn finish(&mut self, action: Action) {
        if let Some((phase, what, started)) = self.current.take() {
            let elapsed = started.elapsed();
            self.progress
                .event(Work::since(phase, &what, action, started).into());
            if action == Action::Done {
                self.phases.push((phase, elapsed.as_secs_f64()));
            }
        }
    }
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        self.finish(Action::Failed);
    }
}

/// One build's fixed inputs.
struct Build<'a> {
    recipe: &'a Recipe,
    opts: &'a BuildOptions,
    work: &'a Path,
    size: u64,
}

/// Runs `cmd` as part of `phase`.
fn exec(phase: &'static str, cmd: &Cmd) -> Result<String, BuildError> {
    cmd.run()
        .map_err(|error| BuildError::Command { phase, error })
}

fn make_dir(dir: &Path, phase: &'static str) -> Result<(), BuildError> {
    std::fs::create_dir_all(dir).map_err(|source| BuildError::Io {
        phase,
        action: "create",
        path: dir.to_path_buf(),
        source,
    })
}

fn write(path: &Path, text: &str, phase: &'static str) -> Result<(), BuildError> {
    std::fs::write(path, text).map_err(|source| BuildError::Io {
        phase,
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}

mod steps;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Catalogue;

    #[test]
    fn files_beside_the_output() {
        let out = Path::new("/cache/debian12-base-abc.qcow2");
        assert_eq!(
            recipe_file(out),
            Path::new("/cache/debian12-base-abc.qcow2.recipe")
        );
        let work = work_dir(out);
        assert_eq!(work.parent(), Some(Path::new("/cache")));
        assert!(
            work.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".debian12-base-abc.qcow2.build-")
        );
        assert!(!is_current(Path::new("/nonexistent/x.qcow2"), false));
    }

    #[test]
    fn only_debian12_has_a_recipe() {
        let cat = Catalogue::builtin();
        let centos = cat.get("centos7").unwrap();
        let quiet = crate::progress::Quiet;
        let err = build(centos, &BuildOptions::default(), Path::new("/x"), &quiet).unwrap_err();
        assert!(matches!(err, BuildError::NoRecipe(_)));
        assert!(err.to_string().contains("lab image pull"), "{err}");
    }

    #[test]
    fn is_current_compares_the_recorded_hash() {
        let dir = std::env::temp_dir().join(format!("lab-build-current-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("d.qcow2");
        std::fs::write(&out, "qcow2").unwrap();
        std::fs::write(recipe_file(&out), "0000\n").unwrap();
        assert!(!is_current(&out, false));
        std::fs::write(recipe_file(&out), format!("{}\n", recipe_hash(false))).unwrap();
        assert!(is_current(&out, false));
        assert!(!is_current(&out, true));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
