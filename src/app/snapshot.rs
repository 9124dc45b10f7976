//! Lab-wide snapshots under the lab's lock: `lab snapshot save` and `delete`, and
//! `lab reset` (revert, then every clock set and read back).

use super::clock::settle_clocks;
use super::{Target, check_owner};
use crate::lifecycle::{self, Progress};

/// `lab snapshot save`: under the lab's lock, with every node resumed whatever happens
/// (a stop asked for meanwhile waits for the few seconds a snapshot takes).
pub fn snapshot_save(
    t: &Target,
    name: &str,
    progress: &dyn Progress,
) -> crate::failure::Result<()> {
    let _lock = t.state.lock("snapshot save")?;
    let hv = t.connect()?;
    check_owner(t, &hv)?;
    Ok(lifecycle::save_snapshot(&hv, &t.lab, name, progress)?)
}

/// `lab snapshot delete`, under the lab's lock.
pub fn snapshot_delete(
    t: &Target,
    name: &str,
    progress: &dyn Progress,
) -> crate::failure::Result<()> {
    let _lock = t.state.lock("snapshot delete")?;
    let hv = t.connect()?;
    check_owner(t, &hv)?;
    Ok(lifecycle::delete_snapshot(&hv, &t.lab, name, progress)?)
}

/// `lab reset`: revert every node and set its clock through the guest agent at once, then
/// over SSH move each clock to the host's (where the agent was late or failed), make chrony
/// follow its source again and read each clock back. A node SSH cannot reach, whose chrony
/// does not follow its source or whose clock is more than 0.5 s off the host's is an error
/// naming it (exit status 4); the guest agent's failure is named only then.
pub fn reset(t: &Target, name: &str, progress: &dyn Progress) -> crate::failure::Result<()> {
    let _lock = t.state.lock("reset")?;
    let hv = t.connect()?;
    check_owner(t, &hv)?;
    let reverted = lifecycle::reset(&hv, &t.lab, name, progress)?;
    settle_clocks(t, &hv, &reverted, &format!("lab reset {name}"), progress)
}
