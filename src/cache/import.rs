//! Import of a local file into the cache, and the checks any file passes before it enters the
//! cache (a pull's download too): a standalone qcow2 of the right virtual size.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::error::io;
use super::qemu_img::standalone_qcow2;
use super::{Cache, CacheError, hint, remove_file, sha256_file};
use crate::image::Image;
use crate::names;

impl Cache {
    /// Copies `file` into the cache as image `name` after checking it is a standalone qcow2
    /// of the right virtual size (see the module doc) and, when the catalogue pins a sha256,
    /// that it has it. The copy is hashed, recorded and renamed into place atomically.
    pub fn import(&self, name: &str, file: &Path) -> Result<PathBuf, CacheError> {
        let image = self.image(name)?.clone();
        check_image(&image, file)?;
        let tmp = self.copy_in(name, file)?;
        if crate::interrupt::interrupted() {
            return Err(CacheError::Interrupted(
                "nothing was imported; run the import again".into(),
            ));
        }
        let actual = sha256_file(tmp.path())?;
        if let Some(expected) = &image.sha256
            && !expected.eq_ignore_ascii_case(&actual)
        {
            return Err(CacheError::ChecksumMismatch {
                name: name.to_string(),
                path: file.to_path_buf(),
                expected: expected.to_ascii_lowercase(),
                actual,
                hint: hint(&image),
            });
        }
        self.install(name, &actual, |path| {
            tmp.persist(path)
                .map(drop)
                .map_err(|e| io("rename", path)(e.error))
        })
    }

    /// A synced copy of `file` in the images folder, with the file's permissions (as
    /// `fs::copy` keeps them); removed when dropped.
    fn copy_in(&self, name: &str, file: &Path) -> Result<NamedTempFile, CacheError> {
        let dir = self.images_dir()?;
        let mut tmp = tempfile::Builder::new()
            .prefix(&names::cache::import_temp_prefix(name))
            .tempfile_in(&dir)
            .map_err(io("create", &dir))?;
        let permissions = fs::metadata(file).map_err(io("read", file))?.permissions();
        let mut from = File::open(file).map_err(io("open", file))?;
        std::io::copy(&mut from, tmp.as_file_mut()).map_err(io("copy", file))?;
        let copy = tmp.as_file();
        copy.set_permissions(permissions)
            .and_then(|_| copy.sync_all())
            .map_err(io("write", tmp.path()))?;
        Ok(tmp)
    }

    /// Puts a checked file in place with `place`: the old record goes first, so a crash in
    /// between leaves an image that is hashed again rather than one vouched for by a stale
    /// record.
    pub(super) fn install(
        &self,
        name: &str,
        sha256: &str,
        place: impl FnOnce(&Path) -> Result<(), CacheError>,
    ) -> Result<PathBuf, CacheError> {
        remove_file(&self.record_path(name))?;
        let path = self.image_path(name);
        place(&path)?;
        self.write_record(name, sha256)?;
        Ok(path)
    }
}

/// Checks that `path` is a standalone qcow2 (see [`standalone_qcow2`]) with the virtual size
/// the rule of the module doc asks of `image`.
pub(super) fn check_image(image: &Image, path: &Path) -> Result<(), CacheError> {
    let expected = image.virtual_size.bytes();
    let actual = standalone_qcow2(path)?.virtual_size;
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
