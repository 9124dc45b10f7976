//! The per-user image cache: the base images labs boot from, pulled from the catalogue's url,
//! imported from a file, or (elsewhere) built. One standalone qcow2 file per catalogue image,
//! and beside it a record of its sha256, size and mtime (names in [`names::cache`]).
//!
//! A cached image is *verified* while its record exists, agrees with the catalogue's sha256
//! (when the catalogue pins one), and the file still has the recorded size and mtime: so a
//! run need not hash gigabytes again. When the size or mtime changed, [`Cache::verify`] hashes
//! the file once more and refreshes the record if the content is still the recorded one.
//!
//! Virtual size rule: an image the catalogue downloads (it has a url) must have exactly the
//! catalogue's virtual size, since the catalogue describes that very file; an image without
//! url (built locally, or imported in place of a build) may be smaller or equal, because
//! overlays are created with the catalogue's size and qcow2 overlays may grow past their
//! backing image, never shrink below it.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::image::{Catalogue, Image};
use crate::names;

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
        "{path} is qcow2 version {version}, lab reads versions 2 and 3: convert it with `qemu-img convert -O qcow2 {path} OUT.qcow2` and import OUT.qcow2"
    )]
    Qcow2Version { path: PathBuf, version: u32 },
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

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CacheError {
    let path = path.to_path_buf();
    move |source| CacheError::Io {
        action,
        path,
        source,
    }
}

/// The cache root: `$LAB_CACHE_DIR`, else `$XDG_CACHE_HOME/lab`, else `~/.cache/lab`.
pub fn root() -> Result<PathBuf, CacheError> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("LAB_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|p| p.join("lab")))
        .or_else(|| var("HOME").map(|p| p.join(".cache/lab")))
        .ok_or(CacheError::NoRoot)
}

/// How long a download may wait: to connect, and for each read (headers or body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To establish the connection (TLS handshake included).
    pub connect: Duration,
    /// For the response headers, and for each read of the body.
    pub read: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            read: Duration::from_secs(60),
        }
    }
}

/// The image cache under one root, for the images of one catalogue.
#[derive(Debug, Clone)]
pub struct Cache {
    /// The cache root; images live in its `images/` folder.
    pub root: PathBuf,
    /// The images this cache may hold.
    pub catalogue: Catalogue,
    /// Download timeouts.
    pub timeouts: Timeouts,
}

/// One catalogue image as the cache sees it (`lab image list`, `--json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub name: String,
    /// Whether the image file is in the cache (verified or not).
    pub cached: bool,
    /// Where the image is, or would be, cached.
    pub path: PathBuf,
    /// Bytes of the cached file, when cached.
    pub size_on_disk: Option<u64>,
    /// The virtual size the catalogue gives (bytes).
    pub virtual_size: u64,
    /// The virtual size in the cached file's header (bytes), when cached and readable.
    pub file_virtual_size: Option<u64>,
    /// Whether the record vouches for the file without hashing it (see the module doc).
    pub verified: bool,
    /// Bytes of an interrupted download that the next pull resumes.
    pub partial_bytes: Option<u64>,
    /// `true` for images pulled from a url, `false` for images built locally.
    pub downloadable: bool,
}

/// The record beside a cached image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    sha256: String,
    size: u64,
    mtime_secs: i64,
    mtime_nsecs: i64,
}

impl Record {
    fn matches(&self, meta: &fs::Metadata) -> bool {
        self.size == meta.len()
            && self.mtime_secs == meta.mtime()
            && self.mtime_nsecs == meta.mtime_nsec()
    }
}

impl Cache {
    /// A cache under `root` for `catalogue`, with default timeouts.
    pub fn new(root: &Path, catalogue: Catalogue) -> Cache {
        Cache {
            root: root.to_path_buf(),
            catalogue,
            timeouts: Timeouts::default(),
        }
    }

    /// The user's cache ([`root`]) for the built-in catalogue.
    pub fn open() -> Result<Cache, CacheError> {
        Ok(Cache::new(&root()?, Catalogue::builtin()))
    }

    /// Where image `name` is, or would be, cached.
    pub fn image_path(&self, name: &str) -> PathBuf {
        self.root.join(names::cache::image(name))
    }

    /// Where an interrupted download of `name` waits to be resumed.
    pub fn partial_path(&self, name: &str) -> PathBuf {
        self.root.join(names::cache::partial(name))
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.root.join(names::cache::record(name))
    }

    /// The catalogue entry `name`, or an error listing the known names.
    pub fn image(&self, name: &str) -> Result<&Image, CacheError> {
        self.catalogue
            .get(name)
            .ok_or_else(|| CacheError::UnknownImage {
                name: name.to_string(),
                known: self.catalogue.names().join(", "),
            })
    }

    /// Every catalogue image, cached or not, in catalogue order.
    pub fn list(&self) -> Result<Vec<Entry>, CacheError> {
        self.catalogue
            .images
            .iter()
            .map(|i| self.entry(i))
            .collect()
    }

    fn entry(&self, image: &Image) -> Result<Entry, CacheError> {
        let path = self.image_path(&image.name);
        let meta = metadata(&path)?;
        let file_virtual_size = match &meta {
            Some(_) => read_header(&path).ok().map(|h| h.virtual_size),
            None => None,
        };
        let verified = match &meta {
            Some(m) => self.fresh_record(image, m)?.is_some(),
            None => false,
        };
        Ok(Entry {
            name: image.name.clone(),
            cached: meta.is_some(),
            size_on_disk: meta.as_ref().map(|m| m.len()),
            path,
            virtual_size: image.virtual_size.bytes(),
            file_virtual_size,
            verified,
            partial_bytes: metadata(&self.partial_path(&image.name))?.map(|m| m.len()),
            downloadable: image.url.is_some(),
        })
    }

    /// Removes image `name` from the cache, with its record and any partial download.
    /// Returns whether there was anything to remove.
    pub fn remove(&self, name: &str) -> Result<bool, CacheError> {
        self.image(name)?;
        let mut removed = false;
        for path in [
            self.record_path(name),
            self.image_path(name),
            self.partial_path(name),
        ] {
            removed |= remove_file(&path)?;
        }
        Ok(removed)
    }

    /// The verified cached image `name`, or an error with the command that gets it.
    pub fn path_for(&self, name: &str) -> Result<PathBuf, CacheError> {
        self.verify(name, false)
    }

    /// Checks the cached image `name`: trusts a fresh record unless `rehash`, else hashes the
    /// file, compares the sum with the catalogue's (or the recorded one) and records it anew.
    pub fn verify(&self, name: &str, rehash: bool) -> Result<PathBuf, CacheError> {
        let image = self.image(name)?;
        let path = self.image_path(name);
        let Some(meta) = metadata(&path)? else {
            return Err(CacheError::NotCached {
                name: name.to_string(),
                hint: hint(image),
            });
        };
        if !rehash && self.fresh_record(image, &meta)?.is_some() {
            return Ok(path);
        }
        let expected = match (&image.sha256, self.read_record(name)?) {
            (Some(sum), _) => sum.to_ascii_lowercase(),
            (None, Some(record)) => record.sha256,
            (None, None) => {
                return Err(CacheError::Unrecorded {
                    name: name.to_string(),
                    path,
                    hint: hint(image),
                });
            }
        };
        let actual = sha256_file(&path)?;
        if actual != expected {
            return Err(CacheError::Modified {
                name: name.to_string(),
                path,
                expected,
                actual,
                hint: hint(image),
            });
        }
        self.write_record(name, &actual)?;
        Ok(path)
    }

    /// The record of `image` if it vouches for a file with metadata `meta`.
    fn fresh_record(
        &self,
        image: &Image,
        meta: &fs::Metadata,
    ) -> Result<Option<Record>, CacheError> {
        let Some(record) = self.read_record(&image.name)? else {
            return Ok(None);
        };
        let pinned_ok = image
            .sha256
            .as_ref()
            .is_none_or(|s| s.eq_ignore_ascii_case(&record.sha256));
        Ok((pinned_ok && record.matches(meta)).then_some(record))
    }

    /// The record of `name`; a damaged record counts as none (the file is then re-hashed).
    fn read_record(&self, name: &str) -> Result<Option<Record>, CacheError> {
        let path = self.record_path(name);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(serde_json::from_str(&text).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    /// Records `sha256` with the image's current size and mtime, atomically.
    fn write_record(&self, name: &str, sha256: &str) -> Result<(), CacheError> {
        let image = self.image_path(name);
        let meta = fs::metadata(&image).map_err(io("read", &image))?;
        let record = Record {
            sha256: sha256.to_string(),
            size: meta.len(),
            mtime_secs: meta.mtime(),
            mtime_nsecs: meta.mtime_nsec(),
        };
        let text = serde_json::to_string_pretty(&record).expect("a record serializes");
        let tmp = self.root.join(names::cache::record_temp(name));
        let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(io("write", &tmp))?;
        let path = self.record_path(name);
        fs::rename(&tmp, &path).map_err(io("rename", &path))
    }

    fn images_dir(&self) -> Result<PathBuf, CacheError> {
        let dir = self.root.join(names::cache::IMAGES_DIR);
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        Ok(dir)
    }

    /// Copies `file` into the cache as image `name` after checking it is a standalone qcow2
    /// of the right virtual size (see the module doc) and, when the catalogue pins a sha256,
    /// that it has it. The copy is hashed, recorded and renamed into place atomically.
    pub fn import(&self, name: &str, file: &Path) -> Result<PathBuf, CacheError> {
        let image = self.image(name)?.clone();
        check_image(&image, file, &read_header(file)?)?;
        self.images_dir()?;
        let tmp = self.root.join(names::cache::import_temp(name));
        fs::copy(file, &tmp).map_err(io("copy", file))?;
        if crate::interrupt::interrupted() {
            remove_file(&tmp)?;
            return Err(CacheError::Interrupted(
                "nothing was imported; run the import again".into(),
            ));
        }
        let actual = sha256_file(&tmp)?;
        if let Some(expected) = &image.sha256
            && !expected.eq_ignore_ascii_case(&actual)
        {
            remove_file(&tmp)?;
            return Err(CacheError::ChecksumMismatch {
                name: name.to_string(),
                path: file.to_path_buf(),
                expected: expected.to_ascii_lowercase(),
                actual,
                hint: hint(&image),
            });
        }
        self.install(name, &tmp, &actual)
    }

    /// Moves a checked file into place: the old record goes first, so a crash in between
    /// leaves an image that is hashed again rather than one vouched for by a stale record.
    fn install(&self, name: &str, from: &Path, sha256: &str) -> Result<PathBuf, CacheError> {
        File::open(from)
            .and_then(|f| f.sync_all())
            .map_err(io("sync", from))?;
        remove_file(&self.record_path(name))?;
        let path = self.image_path(name);
        fs::rename(from, &path).map_err(io("rename", &path))?;
        self.write_record(name, sha256)?;
        Ok(path)
    }

    /// Downloads image `name` from its url into the cache, resuming an interrupted download,
    /// checking the sha256 before the file is moved into place (a corrupt download is deleted).
    /// An image already cached and verified is not downloaded again.
    pub fn pull(&self, name: &str, progress: &mut dyn Progress) -> Result<PathBuf, CacheError> {
        let image = self.image(name)?.clone();
        let Some(url) = image.url.clone() else {
            return Err(CacheError::NoUrl {
                name: name.to_string(),
            });
        };
        if let Ok(path) = self.path_for(name) {
            progress.note("already cached and verified");
            return Ok(path);
        }
        self.images_dir()?;
        let part = self.partial_path(name);
        let dl = Download {
            name,
            url: &url,
            part: &part,
            agent: agent(&url, self.timeouts),
        };
        dl.run(progress)?;
        let actual = sha256_file(&part)?;
        if let Some(expected) = &image.sha256
            && !expected.eq_ignore_ascii_case(&actual)
        {
            remove_file(&part)?;
            return Err(CacheError::DownloadCorrupt {
                name: name.to_string(),
                url,
                path: part,
                expected: expected.to_ascii_lowercase(),
                actual,
            });
        }
        let header = read_header(&part);
        if let Err(e) = header.and_then(|h| check_image(&image, &part, &h)) {
            remove_file(&part)?;
            return Err(e);
        }
        self.install(name, &part, &actual)
    }
}

/// The command that gets image `image` into the cache.
fn hint(image: &Image) -> String {
    let name = &image.name;
    match image.url {
        Some(_) => format!("run `lab image pull {name}` (or `lab image import {name} FILE`)"),
        None => {
            format!("build it with `lab image build {name}` (or `lab image import {name} FILE`)")
        }
    }
}

fn metadata(path: &Path) -> Result<Option<fs::Metadata>, CacheError> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", path)(e)),
    }
}

/// Removes a file; `false` if it was not there.
fn remove_file(path: &Path) -> Result<bool, CacheError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io("remove", path)(e)),
    }
}

/// The sha256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, CacheError> {
    let mut f = File::open(path).map_err(io("open", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// What lab needs from a qcow2 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qcow2Header {
    pub version: u32,
    pub virtual_size: u64,
}

/// Why a header is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProblem {
    /// No `QFI\xfb` magic, or too short: not qcow2 at all.
    NotQcow2,
    /// A qcow2 version other than 2 or 3.
    Version(u32),
    /// The image has a backing file (bytes 8..16 are its offset, non-zero).
    BackingFile,
}

/// Parses the first 32 bytes of a qcow2 file: magic, version 2 or 3, no backing file,
/// virtual size (bytes 24..32, big-endian).
pub fn parse_qcow2_header(bytes: &[u8]) -> Result<Qcow2Header, HeaderProblem> {
    let be32 = |r: std::ops::Range<usize>| u32::from_be_bytes(bytes[r].try_into().unwrap());
    let be64 = |r: std::ops::Range<usize>| u64::from_be_bytes(bytes[r].try_into().unwrap());
    if bytes.len() < 32 || bytes[..4] != *b"QFI\xfb" {
        return Err(HeaderProblem::NotQcow2);
    }
    let version = be32(4..8);
    if !(2..=3).contains(&version) {
        return Err(HeaderProblem::Version(version));
    }
    if be64(8..16) != 0 {
        return Err(HeaderProblem::BackingFile);
    }
    Ok(Qcow2Header {
        version,
        virtual_size: be64(24..32),
    })
}

/// Reads and checks the qcow2 header of a file.
pub fn read_header(path: &Path) -> Result<Qcow2Header, CacheError> {
    let mut bytes = Vec::with_capacity(32);
    File::open(path)
        .and_then(|f| f.take(32).read_to_end(&mut bytes))
        .map_err(io("read", path))?;
    let path = path.to_path_buf();
    parse_qcow2_header(&bytes).map_err(|p| match p {
        HeaderProblem::NotQcow2 => CacheError::NotQcow2 { path },
        HeaderProblem::Version(version) => CacheError::Qcow2Version { path, version },
        HeaderProblem::BackingFile => CacheError::BackingFile { path },
    })
}

/// Applies the virtual size rule of the module doc.
fn check_image(image: &Image, path: &Path, header: &Qcow2Header) -> Result<(), CacheError> {
    let expected = image.virtual_size.bytes();
    let actual = header.virtual_size;
    let (ok, rule) = match image.url {
        Some(_) => (actual == expected, "exactly"),
        None => (actual <= expected, "at most"),
    };
    if ok {
        return Ok(());
    }
    Err(CacheError::VirtualSize {
        name: image.name.clone(),
        path: path.to_path_buf(),
        actual,
        expected,
        rule,
    })
}

/// Receives the progress of a download, so the command line can draw a bar or print lines.
pub trait Progress {
    /// `done` bytes of `total` (when the server tells) are on disk. `done` only grows, except
    /// that it restarts from 0 when a server ignores a resume request.
    fn update(&mut self, done: u64, total: Option<u64>);
    /// Something the user may like to know (a resume, a restart).
    fn note(&mut self, _text: &str) {}
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// The `Range` header that resumes a download after `offset` bytes.
pub fn range_header(offset: u64) -> String {
    format!("bytes={offset}-")
}

/// A parsed `Content-Range`: `bytes START-END/TOTAL` (a range) or `bytes */TOTAL` (416).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    /// First and last byte sent, `None` for the `*` form.
    pub range: Option<(u64, u64)>,
    /// Length of the whole file, `None` when the server wrote `*`.
    pub total: Option<u64>,
}

/// Parses a `Content-Range` header value; `None` if malformed.
pub fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    let range = match range.trim() {
        "*" => None,
        r => {
            let (a, b) = r.split_once('-')?;
            let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (a <= b).then_some((a, b))?;
            Some((a, b))
        }
    };
    Some(ContentRange { range, total })
}

/// What to do with a response to a request for the file from byte `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumePlan {
    /// Append the body to the partial file; the whole file has `total` bytes if known.
    Append { total: Option<u64> },
    /// Write the body from byte 0 (the server ignored or botched the range).
    Restart { total: Option<u64> },
    /// The partial file is already complete (416 naming exactly `offset` bytes).
    Complete,
    /// Drop the partial file and ask again without a range (416 for another length).
    StartOver,
    /// An HTTP status that is not a success.
    Fail(u16),
}

/// Decides from the status, `Content-Range` and `Content-Length` how to use a response to a
/// request that asked for the file from byte `offset` (0: no `Range` header was sent).
pub fn resume_plan(
    offset: u64,
    status: u16,
    content_range: Option<&str>,
    content_length: Option<u64>,
) -> ResumePlan {
    let cr = content_range.and_then(parse_content_range);
    match status {
        200 => ResumePlan::Restart {
            total: content_length,
        },
        206 => match cr {
            Some(ContentRange {
                range: Some((start, _)),
                total,
            }) if start == offset => ResumePlan::Append { total },
            // A range that starts elsewhere cannot be appended: ask again for all of it.
            _ => ResumePlan::StartOver,
        },
        416 if offset > 0 => match cr.and_then(|c| c.total) {
            Some(total) if total == offset => ResumePlan::Complete,
            _ => ResumePlan::StartOver,
        },
        s => ResumePlan::Fail(s),
    }
}

/// The HTTP client: no redirect limit surprises, statuses handled by [`resume_plan`], and
/// never a proxy for a loopback address.
fn agent(url: &str, timeouts: Timeouts) -> ureq::Agent {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| url.starts_with(p));
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(timeouts.connect))
        .timeout_recv_response(Some(timeouts.read))
        .timeout_per_read(Some(timeouts.read));
    if loopback {
        config = config.proxy(None);
    }
    ureq::Agent::new_with_config(config.build())
}

/// How many requests one pull makes while each one brings new bytes.
const ATTEMPTS: usize = 5;

/// One download into a partial file.
struct Download<'a> {
    name: &'a str,
    url: &'a str,
    part: &'a Path,
    agent: ureq::Agent,
}

/// Why one request ended early: a transport error may be resumed, a file error may not.
enum Stop {
    Transport(String, u64),
    Fatal(Box<CacheError>),
}

fn fatal(e: CacheError) -> Stop {
    Stop::Fatal(Box::new(e))
}

impl Download<'_> {
    /// Requests until the partial file is complete; retries while each attempt made progress.
    fn run(&self, progress: &mut dyn Progress) -> Result<(), CacheError> {
        let mut detail = String::new();
        for _ in 0..ATTEMPTS {
            match self.once(progress, true) {
                Ok(()) => return Ok(()),
                Err(Stop::Fatal(e)) => return Err(*e),
                Err(Stop::Transport(d, received)) => {
                    detail = d;
                    if received == 0 {
                        break;
                    }
                    progress.note("connection lost; resuming");
                }
            }
        }
        Err(CacheError::Download {
            name: self.name.to_string(),
            url: self.url.to_string(),
            detail,
        })
    }

    /// One request, from the end of the partial file.
    fn once(&self, progress: &mut dyn Progress, may_start_over: bool) -> Result<(), Stop> {
        let offset = metadata(self.part).map_err(fatal)?.map_or(0, |m| m.len());
        let mut request = self.agent.get(self.url);
        if offset > 0 {
            request = request.header("Range", range_header(offset));
            progress.note(&format!("resuming after {}", mib(offset)));
        }
        let response = request
            .call()
            .map_err(|e| Stop::Transport(e.to_string(), 0))?;
        let content_range = response
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok());
        let length = response.body().content_length();
        let plan = resume_plan(offset, response.status().as_u16(), content_range, length);
        let (append, total) = match plan {
            ResumePlan::Append { total } => (true, total),
            ResumePlan::Restart { total } => (false, total),
            ResumePlan::Complete => return Ok(()),
            ResumePlan::StartOver if may_start_over => {
                remove_file(self.part).map_err(fatal)?;
                progress.note("the server refused the resume; starting over");
                return self.once(progress, false);
            }
            ResumePlan::StartOver | ResumePlan::Fail(_) => {
                let status = response.status().as_u16();
                return Err(fatal(CacheError::Http {
                    name: self.name.to_string(),
                    url: self.url.to_string(),
                    status,
                }));
            }
        };
        if !append && offset > 0 {
            progress.note("the server ignored the resume request; starting over");
        }
        let start = if append { offset } else { 0 };
        let body = response.into_body().into_reader();
        self.write(body, start, total, progress)
    }

    /// Streams `body` into the partial file (appending after `start` bytes, or from 0).
    fn write(
        &self,
        mut body: impl Read,
        start: u64,
        total: Option<u64>,
        progress: &mut dyn Progress,
    ) -> Result<(), Stop> {
        let fatal = |a| move |e| Stop::Fatal(Box::new(io(a, self.part)(e)));
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(start > 0)
            .truncate(start == 0)
            .open(self.part)
            .map_err(fatal("open"))?;
        let mut done = start;
        progress.update(done, total);
        let mut buf = vec![0u8; 256 << 10];
        loop {
            if crate::interrupt::interrupted() {
                let _ = file.sync_all();
                return Err(Stop::Fatal(Box::new(CacheError::Interrupted(format!(
                    "the download stopped after {done} bytes; `lab image pull` resumes it"
                )))));
            }
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Stop::Transport(e.to_string(), done - start)),
            };
            file.write_all(&buf[..n]).map_err(fatal("write"))?;
            done += n as u64;
            progress.update(done, total);
        }
        match total {
            Some(t) if t != done => Err(Stop::Transport(
                format!("the server sent {done} of {t} bytes"),
                done - start,
            )),
            _ => file.sync_all().map_err(fatal("sync")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: u32, backing: u64, size: u64) -> Vec<u8> {
        let mut h = b"QFI\xfb".to_vec();
        h.extend(version.to_be_bytes());
        h.extend(backing.to_be_bytes());
        h.extend([0u8; 8]);
        h.extend(size.to_be_bytes());
        h.extend([0u8; 40]);
        h
    }

    #[test]
    fn qcow2_header_is_parsed_and_refused_for_the_right_reasons() {
        assert_eq!(
            parse_qcow2_header(&header(3, 0, 8 << 30)),
            Ok(Qcow2Header {
                version: 3,
                virtual_size: 8 << 30
            })
        );
        assert_eq!(parse_qcow2_header(&header(2, 0, 5)).unwrap().version, 2);
        assert_eq!(
            parse_qcow2_header(&header(4, 0, 5)),
            Err(HeaderProblem::Version(4))
        );
        assert_eq!(
            parse_qcow2_header(&header(3, 0x1000, 5)),
            Err(HeaderProblem::BackingFile)
        );
        assert_eq!(
            parse_qcow2_header(&header(3, 0, 5)[..31]),
            Err(HeaderProblem::NotQcow2)
        );
        let mut raw = header(3, 0, 5);
        raw[3] = 0xfa;
        assert_eq!(parse_qcow2_header(&raw), Err(HeaderProblem::NotQcow2));
        assert_eq!(
            parse_qcow2_header(&[0u8; 512]),
            Err(HeaderProblem::NotQcow2)
        );
    }

    #[test]
    fn content_range_forms() {
        assert_eq!(range_header(100), "bytes=100-");
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some(ContentRange {
                range: Some((100, 199)),
                total: Some(200)
            })
        );
        assert_eq!(
            parse_content_range("bytes 0-9/*"),
            Some(ContentRange {
                range: Some((0, 9)),
                total: None
            })
        );
        assert_eq!(
            parse_content_range("bytes */200"),
            Some(ContentRange {
                range: None,
                total: Some(200)
            })
        );
        for bad in [
            "",
            "bytes",
            "bytes 5-4/10",
            "items 0-1/2",
            "bytes 0-x/2",
            "bytes 0-1",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn resume_plans() {
        use ResumePlan::*;
        assert_eq!(
            resume_plan(0, 200, None, Some(10)),
            Restart { total: Some(10) }
        );
        assert_eq!(
            resume_plan(5, 200, None, Some(10)),
            Restart { total: Some(10) },
            "a server that ignores Range restarts the file"
        );
        assert_eq!(
            resume_plan(5, 206, Some("bytes 5-9/10"), Some(5)),
            Append { total: Some(10) }
        );
        assert_eq!(resume_plan(5, 206, Some("bytes 0-9/10"), None), StartOver);
        assert_eq!(resume_plan(5, 206, None, None), StartOver);
        assert_eq!(resume_plan(10, 416, Some("bytes */10"), None), Complete);
        assert_eq!(resume_plan(12, 416, Some("bytes */10"), None), StartOver);
        assert_eq!(resume_plan(0, 416, None, None), Fail(416));
        assert_eq!(resume_plan(0, 404, None, None), Fail(404));
    }
}
