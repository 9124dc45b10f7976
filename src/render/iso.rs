//! The seed medium: an ISO 9660 image labelled `cidata`, with Rock Ridge and Joliet names,
//! written in memory.

use std::io::Cursor;

use hadris_iso::read::PathSeparator;
use hadris_iso::write::options::{CreationFeatures, IsoFormatOptions};
use hadris_iso::write::{InputEntry, InputMetadata, InputTree, IsoImageWriter};

use super::cloudinit::Seed;

/// The volume label cloud-init's NoCloud datasource looks for.
pub const VOLUME_LABEL: &str = "cidata";

/// Why the seed ISO could not be written.
#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    /// hadris-iso refused or failed to write the image; the cause as it reported it.
    #[error("cannot write the seed iso: {0}")]
    Write(String),
}

impl crate::failure::Classify for IsoError {
    fn class(&self) -> crate::failure::ExitClass {
        crate::failure::ExitClass::Host
    }
}

/// Builds the NoCloud seed ISO of `seed` in memory.
///
/// The plain ISO 9660 names are level 1 (`USER_DAT.;1`); cloud-init reads the Rock Ridge
/// names (`user-data`, `meta-data`, `network-config`), and Joliet carries the same names for
/// readers without Rock Ridge. The image's timestamps are the time of writing, so two runs
/// differ in those bytes only.
pub fn seed_iso(seed: &Seed) -> Result<Vec<u8>, IsoError> {
    let files = [
        ("meta-data", &seed.meta_data),
        ("network-config", &seed.network_config),
        ("user-data", &seed.user_data),
    ];
    let entries = files
        .iter()
        .map(|(name, text)| {
            InputEntry::file(*name, text.as_bytes().to_vec()).with_metadata(read_only())
        })
        .collect();
    let tree = InputTree::new(PathSeparator::ForwardSlash, entries);
    let out = IsoImageWriter::create(Cursor::new(Vec::new()), tree, options())
        .map_err(|e| IsoError::Write(e.to_string()))?;
    Ok(out.into_inner())
}

/// Files owned by root, mode 0444: the seed is read-only media.
fn read_only() -> InputMetadata {
    InputMetadata {
        mode: Some(0o444),
        uid: Some(0),
        gid: Some(0),
        ..InputMetadata::default()
    }
}

fn options() -> IsoFormatOptions {
    IsoFormatOptions {
        volume_name: VOLUME_LABEL.to_string(),
        system_id: None,
        volume_set_id: None,
        publisher_id: None,
        preparer_id: None,
        application_id: Some("lab".to_string()),
        sector_size: 2048,
        path_separator: PathSeparator::ForwardSlash,
        // Rock Ridge + Joliet level 3 over level-1 base names.
        features: CreationFeatures::extensions(),
        // Keep the lowercase label as written (strict mode would upper-case it).
        strict_charset: false,
    }
}
