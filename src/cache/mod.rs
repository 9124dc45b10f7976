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

mod error;
mod http;
mod import;
pub mod qemu_img;
mod record;
mod resume;

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::image::{Catalogue, Image};
use crate::names;
use error::io;

pub use error::CacheError;
pub use http::Timeouts;
pub use record::sha256_file;
pub use resume::{ContentRange, ResumePlan, parse_content_range, range_header, resume_plan};

/// The cache root: `$LAB_CACHE_DIR`, else `$XDG_CACHE_HOME/lab`, else `~/.cache/lab`.
pub fn root() -> Result<PathBuf, CacheError> {
    crate::names::user_root("LAB_CACHE_DIR", "XDG_CACHE_HOME", ".cache/lab")
        .ok_or(CacheError::NoRoot)
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
            Some(_) => qemu_img::info(&path).ok().map(|i| i.virtual_size),
            None => None,
        };
        let verified = match &meta {
            Some(m) => self.vouched(image, m)?,
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

    fn images_dir(&self) -> Result<PathBuf, CacheError> {
        let dir = self.root.join(names::cache::IMAGES_DIR);
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        Ok(dir)
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
