//! Lab-wide snapshots under the lab's lock: `lab snapshot save` and `delete`, and
//! `lab reset` (revert, then every clock set and read back).

use super::{Target, check_owner, guests, runtime, until_interrupted};
use crate::libvirt::LibvirtError;
use crate::lifecycle::{self, Progress};
use crate::names;
use crate::render::Accel;

/// `lab snapshot save`: under the lab's lock, with every node resumed whatever happens
/// (a stop asked for meanwhile waits for the few seconds a snapshot takes).
pub fn snapshot_save(t: &Target, name: &str, progress: &dyn Progress) -> anyhow::Result<()> {
    let _lock = t.state.lock("snapshot save")?;
    let hv = t.connect()?;
    check_owner(t, &hv)?;
    Ok(lifecycle::save_snapshot(&hv, &t.lab, name, progress)?)
}

/// `lab snapshot delete`, under the lab's lock.
pub fn snapshot_delete(t: &Target, name: &str, progress: &dyn Progress) -> anyhow::Result<()> {
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
pub fn reset(t: &Target, name: &str, progress: &dyn Progress) -> anyhow::Result<()> {
    let _lock = t.state.lock("reset")?;
    let hv = t.connect()?;
    check_owner(t, &hv)?;
    let unset = lifecycle::reset(&hv, &t.lab, name, progress)?;
    settle_clocks(t, &unset, &format!("lab reset {name}"), progress)
}

/// After a revert or a restore, on every node over SSH: each clock moved to the host's,
/// chrony made to follow its source again, each clock read back. `agent_failed`: the
/// domains whose clock the guest agent could not set, named in the error only when SSH
/// could not set it either; `again` is the command to run again.
pub(super) fn settle_clocks(
    t: &Target,
    agent_failed: &[(String, LibvirtError)],
    again: &str,
    progress: &dyn Progress,
) -> anyhow::Result<()> {
    let ctx = t.context(Accel::Tcg)?;
    let wrong = runtime()?.block_on(until_interrupted(
        &format!("while the clocks were set: the nodes run; `{again}` sets them"),
        async { Ok(guests::resync_clocks(t, &ctx, progress).await) },
    ))?;
    let Some((first, _)) = wrong.first() else {
        return Ok(());
    };
    let agent = |node: &str| {
        let d = names::domain(&t.lab.name, node);
        agent_failed.iter().find(|(u, _)| *u == d).map(|(_, e)| e)
    };
    let lines: Vec<String> = wrong
        .iter()
        .map(|(node, why)| match agent(node) {
            Some(e) => format!("{node}: {why} (the guest agent failed too: {e})"),
            None => format!("{node}: {why}"),
        })
        .collect();
    Err(guests::GuestProblem(format!(
        "{}: see `lab logs {first} --provision`, then run `{again}` again",
        lines.join("; ")
    ))
    .into())
}
