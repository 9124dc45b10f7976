//! The per-user, per-lab state directory: the secrets seed, the lab file as brought up, and
//! a lock that keeps two `up`/`down`/`reset` of one lab from running at once. A write the file
//! system refuses (read-only, full, over quota, not this user's) names the directory, cause
//! first ([`unwritable`]).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::class::ClassFile;
use crate::model::instance::Placement;
use crate::names;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// (`error` is printed here, not chained as a source: `lab: ERROR` shows it once.)
    #[error("cannot {action} {path}: {error}")]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    /// A write refused for the file system under the state (see [`unwritable`]).
    #[error("cannot write lab state in {dir} ({cause}): {hint}")]
    Unwritable {
        dir: PathBuf,
        cause: &'static str,
        hint: &'static str,
        error: std::io::Error,
    },
    #[error("lab {lab} is busy: {holder} holds {path}; wait for it to finish")]
    Locked {
        lab: String,
        holder: String,
        path: PathBuf,
    },
    #[error("{path} is damaged: remove the lab with `lab down`, or delete the file")]
    BadSeed { path: PathBuf },
    #[error("no state directory: set LAB_STATE_DIR, XDG_STATE_HOME or HOME")]
    NoRoot,
    #[error(
        "{path} is damaged ({detail}): remove the instance with `lab down --instance NAME`, or delete the file"
    )]
    BadPlacement { path: PathBuf, detail: String },
    #[error(
        "{path} is damaged ({detail}): fix it, or delete it and `lab down --instance NAME` each instance"
    )]
    BadClass { path: PathBuf, detail: String },
}

impl crate::failure::Classify for StateError {
    fn class(&self) -> crate::failure::ExitClass {
        crate::failure::ExitClass::Host
    }
}

/// The actions on state files that write; those of them taking a directory's path.
const WRITES: [&str; 6] = ["create", "protect", "open", "write", "rename", "remove"];
const ON_DIRS: [&str; 2] = ["create", "protect"];

/// Why a directory takes no write, and what to do, when the error is about where the state
/// lives rather than one file: a read-only or full file system, a quota, a directory not
/// this user's. `None` for other errors.
pub fn unwritable(kind: std::io::ErrorKind) -> Option<(&'static str, &'static str)> {
    use std::io::ErrorKind as K;
    Some(match kind {
        K::ReadOnlyFilesystem => (
            "read-only file system",
            "make it writable or set LAB_STATE_DIR",
        ),
        K::StorageFull => (
            "no space left on device",
            "free space there or set LAB_STATE_DIR",
        ),
        K::QuotaExceeded => (
            "disk quota exceeded",
            "free space there or set LAB_STATE_DIR",
        ),
        K::PermissionDenied => (
            "permission denied",
            "make it writable for this user or set LAB_STATE_DIR",
        ),
        _ => return None,
    })
}

/// The error of `action` on `path`: a write refused for the file system (see
/// [`unwritable`]) names the directory, cause first; any other, the action and the path.
fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StateError {
    let path = path.to_path_buf();
    move |error| match unwritable(error.kind()).filter(|_| WRITES.contains(&action)) {
        Some((cause, hint)) => StateError::Unwritable {
            dir: match path.parent() {
                Some(parent) if !ON_DIRS.contains(&action) => parent.to_path_buf(),
                _ => path,
            },
            cause,
            hint,
            error,
        },
        None => StateError::Io {
            action,
            path,
            error,
        },
    }
}

/// The state root: `$LAB_STATE_DIR`, else `$XDG_STATE_HOME/lab`, else `~/.local/state/lab`.
pub fn root() -> Result<PathBuf, StateError> {
    crate::names::user_root("LAB_STATE_DIR", "XDG_STATE_HOME", ".local/state/lab")
        .ok_or(StateError::NoRoot)
}

/// The lab bare commands default to, as the last `lab up` recorded it in the state root:
/// the lab's name and the `--lab` argument that gives it (a shipped lab's name, or the
/// absolute path of its file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub name: String,
    pub arg: String,
}

/// The recorded current lab, while its state directory exists: a lab taken down is no longer
/// current, whoever took it down. A missing or unreadable record is no current lab.
pub fn current(root: &Path) -> Option<Current> {
    let text = fs::read_to_string(root.join(names::state::CURRENT)).ok()?;
    let (name, arg) = text.split_once('\n')?;
    let arg = arg.strip_suffix('\n').unwrap_or(arg);
    let current = Current {
        name: name.to_string(),
        arg: arg.to_string(),
    };
    let usable = !name.is_empty() && !arg.is_empty() && !name.contains(['/', '.']);
    (usable && LabState::new(root, name).exists()).then_some(current)
}

/// Records `current` as the lab bare commands default to (atomically).
pub fn set_current(root: &Path, current: &Current) -> Result<(), StateError> {
    fs::create_dir_all(root).map_err(io("create", root))?;
    let text = format!("{}\n{}\n", current.name, current.arg);
    write_atomic(root, names::state::CURRENT, text.as_bytes(), 0o666)
}

/// Writes `dir/name` atomically with mode `mode` (see [`crate::atomic`]).
fn write_atomic(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    crate::atomic::write(&dir.join(name), bytes, mode).map_err(|e| io(e.action, &e.path)(e.source))
}

/// Forgets the current lab if it is `name` (`lab down` of that lab).
pub fn clear_current(root: &Path, name: &str) -> Result<(), StateError> {
    let path = root.join(names::state::CURRENT);
    let recorded = fs::read_to_string(&path).unwrap_or_default();
    if recorded.split_once('\n').map(|(n, _)| n) != Some(name) {
        return Ok(());
    }
    match fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &path)(e)),
        _ => Ok(()),
    }
}

/// One lab's state directory.
#[derive(Debug, Clone)]
pub struct LabState {
    pub lab: String,
    pub root: PathBuf,
}

/// Held while a command changes a lab; the lock is released when dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl LabState {
    pub fn new(root: &Path, lab: &str) -> LabState {
        LabState {
            lab: lab.to_string(),
            root: root.to_path_buf(),
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.root.join(names::state::lab_dir(&self.lab))
    }

    pub fn exists(&self) -> bool {
        self.dir().is_dir()
    }

    /// Takes the lab's lock at once or fails naming the holder.
    pub fn lock(&self, command: &str) -> Result<Lock, StateError> {
        fs::create_dir_all(&self.root).map_err(io("create", &self.root))?;
        let path = self.root.join(names::state::lock(&self.lab));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("open", &path))?;
        if file.try_lock().is_err() {
            let holder = fs::read_to_string(&path)
                .unwrap_or_default()
                .trim()
                .to_string();
            let holder = if holder.is_empty() {
                "another lab command".into()
            } else {
                holder
            };
            return Err(StateError::Locked {
                lab: self.lab.clone(),
                holder,
                path,
            });
        }
        file.set_len(0).map_err(io("write", &path))?;
        writeln!(file, "`lab {command}` (pid {})", std::process::id())
            .map_err(io("write", &path))?;
        Ok(Lock { _file: file })
    }

    /// The lab's secrets seed if the lab has state; never creates one.
    pub fn existing_seed(&self) -> Result<Option<[u8; 32]>, StateError> {
        if self.dir().join(names::state::SEED).exists() {
            self.seed().map(Some)
        } else {
            Ok(None)
        }
    }

    /// The lab's secrets seed: read it, or create it (0600) on first use.
    pub fn seed(&self) -> Result<[u8; 32], StateError> {
        let path = self.dir().join(names::state::SEED);
        match fs::read_to_string(&path) {
            Ok(text) => parse_seed(text.trim()).ok_or(StateError::BadSeed { path }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let seed =
                    crate::secrets::random_seed().map_err(io("read", Path::new("/dev/urandom")))?;
                let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
                self.write(names::state::SEED, hex.as_bytes())?;
                Ok(seed)
            }
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    /// Writes a file of the state directory atomically, mode 0600 (the directory is 0700).
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        let dir = self.dir();
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(io("protect", &dir))?;
        write_atomic(&dir, name, bytes, 0o600)
    }

    /// Whether the state directory holds file `name`.
    pub fn has(&self, name: &str) -> bool {
        self.dir().join(name).exists()
    }

    /// Removes file `name` of the state directory (a missing one is fine).
    pub fn remove_file(&self, name: &str) -> Result<(), StateError> {
        let path = self.dir().join(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &path)(e)),
            _ => Ok(()),
        }
    }

    /// Where the lab, an instance, lives on its host ([`crate::model::instance`]), as the `up`
    /// that made it recorded it; `None` when no record exists.
    pub fn placement(&self) -> Result<Option<Placement>, StateError> {
        let path = self.dir().join(names::state::PLACEMENT);
        read_toml(path, |path, detail| StateError::BadPlacement {
            path,
            detail,
        })
    }

    /// Records the placement of this instance.
    pub fn write_placement(&self, placement: &Placement) -> Result<(), StateError> {
        let text = toml::to_string(placement).expect("a placement serializes");
        self.write(names::state::PLACEMENT, text.as_bytes())
    }

    /// Removes the lab's state directory (not the lock file, which the caller holds).
    pub fn remove(&self) -> Result<(), StateError> {
        let dir = self.dir();
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &dir)(e)),
            _ => Ok(()),
        }
    }
}

/// The placements of every instance with state under `root` (a damaged record is skipped:
/// its own commands report it).
pub fn placements(root: &Path) -> Vec<Placement> {
    let Ok(dirs) = fs::read_dir(root) else {
        return Vec::new();
    };
    dirs.flatten()
        .filter_map(|d| {
            let lab = d.file_name().to_str()?.to_string();
            LabState::new(root, &lab).placement().ok().flatten()
        })
        .collect()
}

/// The class file of class `name` ([`crate::class::ClassFile`]), if there is one.
pub fn read_class(root: &Path, name: &str) -> Result<Option<ClassFile>, StateError> {
    let path = root.join(names::state::class_file(name));
    read_toml(path, |path, detail| StateError::BadClass { path, detail })
}

/// A TOML file of the state as `T`; `None` when it does not exist, `damaged` when it does not
/// parse.
fn read_toml<T: serde::de::DeserializeOwned>(
    path: PathBuf,
    damaged: impl FnOnce(PathBuf, String) -> StateError,
) -> Result<Option<T>, StateError> {
    match fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text)
            .map(Some)
            .map_err(|e| damaged(path, e.message().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", &path)(e)),
    }
}

/// Writes class `name`'s file; with no instance left, removes it.
pub fn write_class(root: &Path, name: &str, class: &ClassFile) -> Result<(), StateError> {
    let path = root.join(names::state::class_file(name));
    if class.instances.is_empty() {
        return match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &path)(e)),
            _ => Ok(()),
        };
    }
    let dir = root.join(names::state::CLASSES_DIR);
    fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    let text = toml::to_string(class).expect("a class file serializes");
    let file = path
        .file_name()
        .expect("a class file has a name")
        .to_string_lossy();
    write_atomic(&dir, &file, text.as_bytes(), 0o644)
}

/// Held while an instance's subnets are chosen and recorded, so two `up --instance` cannot
/// pick the same one; waits for the holder. Released when dropped.
pub fn placement_lock(root: &Path) -> Result<Lock, StateError> {
    fs::create_dir_all(root).map_err(io("create", root))?;
    let path = root.join(names::state::PLACEMENT_LOCK);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io("open", &path))?;
    file.lock().map_err(io("lock", &path))?;
    Ok(Lock { _file: file })
}

fn parse_seed(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_is_created_once_private_and_stable() {
        let tmp = tempfile::tempdir().unwrap();
        let s = LabState::new(tmp.path(), "t");
        let a = s.seed().unwrap();
        assert_eq!(a, s.seed().unwrap());
        let meta = fs::metadata(s.dir().join(names::state::SEED)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(s.dir()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        s.remove().unwrap();
        assert!(!s.exists());
        assert_ne!(a, s.seed().unwrap(), "a removed lab gets new secrets");
    }

    #[test]
    fn a_second_lock_fails_at_once_naming_the_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let s = LabState::new(tmp.path(), "t");
        let held = s.lock("up").unwrap();
        let err = s.lock("down").unwrap_err().to_string();
        assert!(
            err.contains("`lab up`") && err.contains(&std::process::id().to_string()),
            "{err}"
        );
        drop(held);
        // Another test's child may hold a copy of the descriptor between its fork and its exec
        // (close-on-exec closes it only then), so the release is awaited, bounded.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while let Err(e) = s.lock("down") {
            assert!(std::time::Instant::now() < deadline, "never released: {e}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn the_current_lab_is_recorded_followed_while_its_state_exists_and_cleared_by_its_down() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        assert_eq!(current(root), None, "nothing recorded");
        let deb = Current {
            name: "ocata-deb".into(),
            arg: "openstack-debian12".into(),
        };
        set_current(root, &deb).unwrap();
        assert_eq!(current(root), None, "a lab without state is not current");
        LabState::new(root, "ocata-deb").seed().unwrap();
        assert_eq!(current(root), Some(deb.clone()));
        clear_current(root, "ocata").unwrap();
        assert_eq!(current(root), Some(deb), "another lab's down keeps it");
        clear_current(root, "ocata-deb").unwrap();
        assert_eq!(current(root), None);
        assert!(!root.join(names::state::CURRENT).exists());
    }

    #[test]
    fn a_file_system_that_takes_no_write_is_named_cause_first_with_what_to_do() {
        use nix::errno::Errno;
        use std::io::Error;
        let root = Path::new("/x/state");
        let said = |action, path: &Path, errno: Errno| {
            io(action, path)(Error::from_raw_os_error(errno as i32)).to_string()
        };
        assert_eq!(
            said("open", &root.join("ocata-deb.lock"), Errno::EROFS),
            "cannot write lab state in /x/state (read-only file system): make it writable or set LAB_STATE_DIR"
        );
        assert_eq!(
            said("create", root, Errno::EROFS),
            "cannot write lab state in /x/state (read-only file system): make it writable or set LAB_STATE_DIR",
            "a directory that cannot be made is named itself"
        );
        assert_eq!(
            said(
                "write",
                &root.join("ocata-deb/.lab.toml.a1B2c3"),
                Errno::ENOSPC
            ),
            "cannot write lab state in /x/state/ocata-deb (no space left on device): free space there or set LAB_STATE_DIR",
            "the directory of a temporary file, not the file"
        );
        assert_eq!(
            said("rename", &root.join("current.txt"), Errno::EDQUOT),
            "cannot write lab state in /x/state (disk quota exceeded): free space there or set LAB_STATE_DIR"
        );
        for errno in [Errno::EACCES, Errno::EPERM] {
            assert_eq!(
                said("protect", &root.join("ocata-deb"), errno),
                "cannot write lab state in /x/state/ocata-deb (permission denied): make it writable for this user or set LAB_STATE_DIR"
            );
        }
        assert_eq!(
            said("read", &root.join("ocata-deb/seed"), Errno::EACCES),
            "cannot read /x/state/ocata-deb/seed: Permission denied (os error 13)",
            "a read is no write"
        );
        assert_eq!(
            said("write", &root.join("ocata-deb.lock"), Errno::EIO),
            "cannot write /x/state/ocata-deb.lock: Input/output error (os error 5)",
            "other errors as they are"
        );
        assert_eq!(unwritable(std::io::ErrorKind::NotFound), None);
    }

    #[test]
    fn an_error_says_its_cause_once() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, "").unwrap();
        let s = LabState::new(&file, "t");
        let err = anyhow::Error::from(s.lock("up").unwrap_err());
        let text = format!("{err:#}");
        assert_eq!(text.matches("os error").count(), 1, "{text}");
    }

    #[test]
    fn a_damaged_seed_is_an_error_not_a_new_identity() {
        let tmp = tempfile::tempdir().unwrap();
        let s = LabState::new(tmp.path(), "t");
        s.write(names::state::SEED, b"zz").unwrap();
        assert!(matches!(s.seed(), Err(StateError::BadSeed { .. })));
    }
}
