//! The facts of a disk image as `qemu-img info --output=json` tells them (format, virtual
//! size, backing file, corrupt flag), and the check that a file is a standalone qcow2.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::CacheError;
use crate::build::cmd::{Cmd, CommandError};

/// Why `qemu-img info` gave no facts about a file.
#[derive(Debug, thiserror::Error)]
pub enum InfoError {
    /// qemu-img is missing, or refused the file (its stderr says why: an unsupported qcow2
    /// version, a truncated header). (The command's error is in the message, not a
    /// `source`: printed once.)
    #[error("cannot read the disk image {path}: {error}")]
    Run { path: PathBuf, error: CommandError },
    #[error("cannot understand `qemu-img info` on {path}: {detail}; check the qemu-utils package")]
    Parse { path: PathBuf, detail: String },
}

/// What lab needs to know of a disk image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The format qemu-img found (`qcow2`, `raw`, ...).
    pub format: String,
    /// The size of the disk the image holds (bytes).
    pub virtual_size: u64,
    /// The backing file the image names, if any.
    pub backing_file: Option<String>,
    /// Whether a qcow2 image carries the corrupt flag.
    pub corrupt: bool,
}

/// `qemu-img info`'s JSON, the fields lab reads.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Raw {
    format: String,
    virtual_size: u64,
    backing_filename: Option<String>,
    format_specific: Option<FormatSpecific>,
}

#[derive(Deserialize)]
struct FormatSpecific {
    data: Option<Qcow2Data>,
}

#[derive(Deserialize)]
struct Qcow2Data {
    corrupt: Option<bool>,
}

/// The command that reads the facts of `path`: read-only, sharing the file with a running
/// guest (`--force-share`); the `file:` prefix keeps a `:` in the name from naming a protocol.
pub fn info_cmd(path: &Path) -> Cmd {
    Cmd::new("qemu-img")
        .args(["info", "--output=json", "--force-share"])
        .arg(format!("file:{}", path.to_string_lossy()))
}

/// Parses the JSON of `qemu-img info --output=json`.
pub fn parse_info(json: &str) -> Result<ImageInfo, serde_json::Error> {
    let raw: Raw = serde_json::from_str(json)?;
    let corrupt = raw
        .format_specific
        .and_then(|f| f.data)
        .and_then(|d| d.corrupt)
        .unwrap_or(false);
    Ok(ImageInfo {
        format: raw.format,
        virtual_size: raw.virtual_size,
        backing_file: raw.backing_filename,
        corrupt,
    })
}

/// The facts of the image at `path` (qemu-img reads a header: quick, so it runs to the end
/// even when a stop is asked for).
pub fn info(path: &Path) -> Result<ImageInfo, InfoError> {
    let json = info_cmd(path)
        .run_always()
        .map_err(|error| InfoError::Run {
            path: path.to_path_buf(),
            error,
        })?;
    parse_info(&json).map_err(|e| InfoError::Parse {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

/// The facts of `path` if it is a qcow2 image without backing file nor corrupt flag.
pub fn standalone_qcow2(path: &Path) -> Result<ImageInfo, CacheError> {
    let info = info(path)?;
    let path = path.to_path_buf();
    if info.format != "qcow2" {
        return Err(CacheError::NotQcow2 { path });
    }
    if info.backing_file.is_some() {
        return Err(CacheError::BackingFile { path });
    }
    if info.corrupt {
        return Err(CacheError::Corrupt { path });
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_reads_without_locking_and_keeps_colons_in_the_name() {
        assert_eq!(
            info_cmd(Path::new("/c/images/a:b.qcow2")).to_string(),
            "qemu-img info --output=json --force-share file:/c/images/a:b.qcow2"
        );
    }

    #[test]
    fn info_json_gives_format_size_backing_file_and_corrupt_flag() {
        let v3 = r#"{"virtual-size": 8589934592, "filename": "b.qcow2", "format": "qcow2",
            "format-specific": {"type": "qcow2", "data": {"compat": "1.1", "corrupt": false}},
            "dirty-flag": false}"#;
        assert_eq!(
            parse_info(v3).unwrap(),
            ImageInfo {
                format: "qcow2".into(),
                virtual_size: 8 << 30,
                backing_file: None,
                corrupt: false,
            }
        );
        let v2 = r#"{"virtual-size": 5, "format": "qcow2",
            "format-specific": {"type": "qcow2", "data": {"compat": "0.10"}}}"#;
        assert!(!parse_info(v2).unwrap().corrupt, "version 2 has no flag");
        let overlay = r#"{"virtual-size": 5, "format": "qcow2", "backing-filename": "b.qcow2",
            "format-specific": {"type": "qcow2", "data": {"corrupt": true}}}"#;
        let o = parse_info(overlay).unwrap();
        assert_eq!(o.backing_file.as_deref(), Some("b.qcow2"));
        assert!(o.corrupt);
        let raw = r#"{"virtual-size": 1048576, "filename": "r.raw", "format": "raw"}"#;
        assert_eq!(parse_info(raw).unwrap().format, "raw");
        assert!(parse_info("qemu-img: nothing").is_err());
    }
}
