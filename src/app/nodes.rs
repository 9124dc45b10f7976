//! `lab provision`, `lab verify` and `lab ssh` as whole operations: the lab's state required,
//! its lock taken where the nodes change, the nodes reached over SSH.

use std::path::PathBuf;

use super::{GuestProblem, Target, access_files, guests, secrets, with_guests};
use crate::guest::{Guest, Output};
use crate::lifecycle::Progress;
use crate::progress::StepEvent;
use crate::provision::engine::Selection;
use crate::provision::verify::CheckResult;
use crate::ssh::Timeouts;

/// `lab provision`: the selected steps on the connected nodes, under the lab's lock.
pub fn provision_nodes(
    t: &Target,
    sel: &Selection,
    timeouts: &Timeouts,
    progress: &dyn Progress,
) -> anyhow::Result<Vec<StepEvent>> {
    secrets(t)?;
    let _lock = t.state.lock("provision")?;
    super::with_guests_reporting(t, timeouts, progress, async |ctx, guests| {
        guests::provision(t, ctx, &guests, sel, progress).await
    })
}

/// `lab verify`: every check, passed or not (see [`checks_passed`]).
pub fn verify_nodes(
    t: &Target,
    timeouts: &Timeouts,
    progress: &dyn Progress,
) -> anyhow::Result<Vec<CheckResult>> {
    secrets(t)?;
    super::with_guests_reporting(t, timeouts, progress, async |ctx, guests| {
        Ok(guests::verify(t, ctx, &guests, progress).await?)
    })
}

/// An error (exit status 4) counting the failed checks, if any failed.
pub fn checks_passed(checks: &[CheckResult]) -> Result<(), GuestProblem> {
    match checks.iter().filter(|c| !c.passed).count() {
        0 => Ok(()),
        n => Err(GuestProblem(format!(
            "{n} of {} checks failed",
            checks.len()
        ))),
    }
}

/// An error unless the lab has state and libvirt runs `node`.
fn reachable(t: &Target, node: &str) -> anyhow::Result<()> {
    secrets(t)?;
    guests::require_running(t, &t.connect()?, node)
}

/// `lab ssh NODE WORDS...`: runs the command line ([`guests::remote_command`]) on the node.
pub fn ssh_run(
    t: &Target,
    node: &str,
    words: &[String],
    timeouts: &Timeouts,
) -> anyhow::Result<Output> {
    reachable(t, node)?;
    let script = guests::remote_command(words);
    with_guests(t, timeouts, async |_, guests| {
        let guest = guests
            .iter()
            .find(|g| g.node() == node)
            .expect("every node connected");
        Ok(guest.run(&script).await?)
    })
}

/// `lab ssh NODE`: writes the lab's OpenSSH config into its state and returns the `ssh`
/// command (inside `LAB_NETNS` when set) that opens a shell on the node with it.
pub fn ssh_command(t: &Target, node: &str) -> anyhow::Result<std::process::Command> {
    reachable(t, node)?;
    let (identity, known_hosts) = access_files(t)?;
    let config = crate::render::access::ssh_config(&t.lab, &identity, &known_hosts);
    let path: PathBuf = t.state.dir().join(SSH_CONFIG);
    t.state.write(SSH_CONFIG, config.as_bytes())?;
    let mut cmd = match guests::netns() {
        Some(ns) => {
            let mut c = std::process::Command::new("ip");
            c.args(["netns", "exec", &ns, "ssh"]);
            c
        }
        None => std::process::Command::new("ssh"),
    };
    cmd.arg("-F").arg(&path).arg(node);
    Ok(cmd)
}

/// The OpenSSH config `lab ssh NODE` starts ssh with, in the lab's state.
const SSH_CONFIG: &str = "ssh_config";
