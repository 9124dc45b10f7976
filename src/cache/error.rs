//! Everything that can go wrong in the cache, each saying what to do about it.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in the cache, each saying what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A stop was asked for; says where things stand and how to go on.
    #[error("interrupted: {0}")]
    Interrupted(String),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no cache directory: set LAB_CACHE_DIR, XDG_CACHE_HOME or HOME")]
    NoRoot,
    #[error("no image {name:?} in the catalogue: use one of {known}")]
    UnknownImage { name: String, known: String },
    #[error(
        "{path} is not a qcow2 image: convert it with `qemu-img convert -O qcow2 {path} OUT.qcow2` and import OUT.qcow2"
    )]
    NotQcow2 { path: PathBuf },
    #[error(
        "{path} is marked corrupt: repair it with `qemu-img check -r all {path}`, or get the file again"
    )]
    Corrupt { path: PathBuf },
    /// `qemu-img info` could not read the file (it names why: an unsupported qcow2 version,
    /// a truncated header, a missing qemu-img).
    #[error(transparent)]
    ImageInfo(#[from] super::qemu_img::InfoError),
    #[error(
        "{path} has a backing file, but a cached image must stand alone: flatten it with `qemu-img convert -O qcow2 {path} OUT.qcow2` and import OUT.qcow2"
    )]
    BackingFile { path: PathBuf },
    #[error(
        "{path} has a virtual size of {actual} bytes but image {name} needs {rule} {expected} bytes: check this is the right file for {name}"
    )]
    VirtualSize {
        name: String,
        path: PathBuf,
        actual: u64,
        expected: u64,
        rule: &'static str,
    },
    #[error(
        "{path} is not image {name}: the catalogue pins sha256 {expected} but the file has sha256 {actual}; get the genuine file ({hint})"
    )]
    ChecksumMismatch {
        name: String,
        path: PathBuf,
        expected: String,
        actual: String,
        hint: String,
    },
    #[error(
        "the download of {name} from {url} is corrupt: expected sha256 {expected}, got sha256 {actual}; deleted {path}, run `lab image pull {name}` to download it again"
    )]
    DownloadCorrupt {
        name: String,
        url: String,
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("image {name} has no download url: build it with `lab image build {name}`")]
    NoUrl { name: String },
    #[error(
        "cannot download {name} from {url}: {detail}; run `lab image pull {name}` again to resume"
    )]
    Download {
        name: String,
        url: String,
        detail: String,
    },
    #[error(
        "{url} answered HTTP {status}: check the catalogue's url for {name} or try again later"
    )]
    Http {
        name: String,
        url: String,
        status: u16,
    },
    #[error("image {name} is not cached: {hint}")]
    NotCached { name: String, hint: String },
    #[error(
        "{path} changed since it was cached (sha256 {actual}, expected {expected}): remove it with `lab image rm {name}` and {hint}"
    )]
    Modified {
        name: String,
        path: PathBuf,
        expected: String,
        actual: String,
        hint: String,
    },
    #[error(
        "{path} has no valid record of its checksum, so lab cannot vouch for it: remove it with `lab image rm {name}` and {hint}"
    )]
    Unrecorded {
        name: String,
        path: PathBuf,
        hint: String,
    },
}

impl crate::failure::Classify for CacheError {
    fn class(&self) -> crate::failure::ExitClass {
        crate::failure::ExitClass::Host
    }
}

pub(super) fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CacheError {
    let path = path.to_path_buf();
    move |source| CacheError::Io {
        action,
        path,
        source,
    }
}
