//! The record beside a cached image (its sha256, size and mtime), and the verification that
//! trusts a fresh record or hashes the file again.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::io;
use super::{Cache, CacheError, hint, metadata};
use crate::image::Image;

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
        if !rehash && self.vouched(image, &meta)? {
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

    /// Whether the record of `image` vouches for a file with metadata `meta`.
    pub(super) fn vouched(&self, image: &Image, meta: &fs::Metadata) -> Result<bool, CacheError> {
        let Some(record) = self.read_record(&image.name)? else {
            return Ok(false);
        };
        let pinned_ok = image
            .sha256
            .as_ref()
            .is_none_or(|s| s.eq_ignore_ascii_case(&record.sha256));
        Ok(pinned_ok && record.matches(meta))
    }

    /// The sha256 recorded for the cached image `name` (trust it after [`Cache::path_for`]).
    pub fn recorded_sha256(&self, name: &str) -> Result<Option<String>, CacheError> {
        Ok(self.read_record(name)?.map(|r| r.sha256))
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
    pub(super) fn write_record(&self, name: &str, sha256: &str) -> Result<(), CacheError> {
        let image = self.image_path(name);
        let meta = fs::metadata(&image).map_err(io("read", &image))?;
        let record = Record {
            sha256: sha256.to_string(),
            size: meta.len(),
            mtime_secs: meta.mtime(),
            mtime_nsecs: meta.mtime_nsec(),
        };
        let text = serde_json::to_string_pretty(&record).expect("a record serializes");
        let path = self.record_path(name);
        crate::atomic::write(&path, text.as_bytes(), 0o666)
            .map_err(|e| io(e.action, &e.path)(e.source))
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
