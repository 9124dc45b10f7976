//! Lab-wide snapshots under the lab's lock: `lab snapshot save` and `delete`, and
//! `lab reset` (revert, then every clock set and read back).

use super::{Target, check_owner, guests, runtime};
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
/// follow its source again and read each clock back. A node SSH cannot reach, whose chrony does not follow its source or
/// whose clock is more than 0.5 s off the host's is an error naming it (exit status 4).
/// Returns a note per node whose clock the guest agent could not set.
pub fn reset(t: &Target, name: &str, progress: &dyn Progress) -> anyhow::Result<Vec<String>> {
    let _lock = t.state.lock("reset")?;
    let hv = t.connect()?;
    check_owner(t, &hv)?;
    let unset_domains = lifecycle::reset(&hv, &t.lab, name, progress)?;
    let unset: Vec<String> = t
        .lab
        .nodes
        .iter()
        .filter(|n| {
            let d = names::domain(&t.lab.name, &n.name);
            unset_domains.iter().any(|(u, _)| *u == d)
        })
        .map(|n| n.name.clone())
        .collect();
    let ctx = t.context(Accel::Tcg)?;
    let wrong = runtime()?.block_on(guests::resync_clocks(t, &ctx, progress));
    let agent = |node: &str| {
        let d = names::domain(&t.lab.name, node);
        unset_domains.iter().find(|(u, _)| *u == d).map(|(_, e)| e)
    };
    if wrong.is_empty() {
        let notes = unset
            .iter()
            .filter_map(|node| {
                let e = agent(node)?;
                Some(format!("{node}: clock set over ssh, the guest agent failed ({e}): is qemu-guest-agent running in it?"))
            })
            .collect();
        return Ok(notes);
    }
    let lines: Vec<String> = wrong
        .iter()
        .map(|(node, why)| match agent(node) {
            Some(e) => format!("{node}: {why} (the guest agent failed too: {e})"),
            None => format!("{node}: {why}"),
        })
        .collect();
    let first = &wrong[0].0;
    Err(guests::GuestProblem(format!(
        "{}: see `lab logs {first} --provision`, then run `lab reset {name}` again",
        lines.join("; ")
    ))
    .into())
}
