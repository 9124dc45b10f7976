//! `lab down`: remove what libvirt says the lab owns, then its state.

use crate::failure::Context;

use super::{Target, host_dirs};
use crate::lifecycle::{self, Progress};
use crate::secrets::LabSecrets;
use crate::state;

/// `lab down`: remove what libvirt says the lab owns, then its state.
pub fn down(t: &Target, progress: &dyn Progress) -> crate::failure::Result<usize> {
    let _lock = t.state.lock("down")?;
    let hv = t.connect()?;
    let (pool_dir, log_dir) = host_dirs(&t.uri, &t.lab.name, t.pool_root.as_deref());
    // Without a state directory there is no identity: every object named for the lab goes.
    let owner = t
        .state
        .existing_seed()?
        .map(|seed| LabSecrets::from_seed(&t.lab, &seed).owner);
    let removed = lifecycle::down(
        &hv,
        &t.lab.name,
        owner.as_deref(),
        Some(&pool_dir),
        Some(&log_dir),
        progress,
    )?;
    t.state
        .remove()
        .context("the lab is down, but its state directory stays")?;
    state::clear_current(&t.state.root, &t.lab.name)?;
    Ok(removed)
}
