//! The seed medium: an ISO 9660 image labelled `cidata`, with Rock Ridge and Joliet names,
//! written in memory.

use super::cloudinit::Seed;

#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("cannot write the seed iso: {0}")]
    Write(String),
}

pub fn seed_iso(seed: &Seed) -> Result<Vec<u8>, IsoError> {
    let _ = seed;
    unimplemented!("helper: iso")
}
