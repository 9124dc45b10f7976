//! `lab provision`, `lab verify` and `lab ssh` as whole operations: the lab's state required,
//! its lock taken where the nodes change, the nodes reached over SSH.

use std::path::{Path, PathBuf};

use super::{Target, access_files, guests, secrets, with_guests};
use crate::guest::{Guest, Output};
use crate::lifecycle::Progress;
use crate::progress::StepEvent;
use crate::provision::engine::Selection;
use crate::provision::verify::CheckResult;
use crate::ssh::Timeouts;
use crate::ssh::config::Destination;

/// `lab provision`: the selected steps on the connected nodes, under the lab's lock.
pub fn provision_nodes(
    t: &Target,
    sel: &Selection,
    timeouts: &Timeouts,
    progress: &dyn Progress,
) -> crate::failure::Result<Vec<StepEvent>> {
    secrets(t)?;
    let _lock = t.state.lock("provision")?;
    // The guests are reached over SSH alone: without libvirt they go unwatched.
    let hv = t.connect().ok();
    let watch = hv.as_ref().map(|hv| hv as &dyn crate::libvirt::Hypervisor);
    super::with_guests_reporting(t, timeouts, progress, watch, async |ctx, guests| {
        let start = crate::provision::engine::Start::Provisioned;
        guests::provision(t, ctx, &guests, sel, start, progress).await
    })
}

/// `lab verify [STEP...]`: every check of those steps (all without any), passed or not
/// (see [`checks_passed`]). An unknown step is refused before any node is reached.
pub fn verify_nodes(
    t: &Target,
    steps: &[String],
    timeouts: &Timeouts,
    progress: &dyn Progress,
) -> crate::failure::Result<Vec<CheckResult>> {
    let checks = crate::provision::verify::select(&t.lab, steps)?;
    secrets(t)?;
    super::with_guests_reporting(t, timeouts, progress, None, async |ctx, guests| {
        Ok(guests::verify(t, ctx, &guests, &checks, progress).await?)
    })
}

/// Failed checks (exit status 4): each printed above with its hint.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} checks failed: the hints above say what the guide sets")]
pub struct ChecksFailed {
    pub failed: usize,
    pub total: usize,
}

/// A node's problem, whose hints are printed with each failed check already.
impl crate::failure::Classify for ChecksFailed {
    fn class(&self) -> crate::failure::ExitClass {
        crate::failure::ExitClass::Guest
    }
    fn hint(&self) -> Option<crate::failure::Hint> {
        None
    }
}

/// An error counting the failed checks, if any failed.
pub fn checks_passed(checks: &[CheckResult]) -> Result<(), ChecksFailed> {
    match checks.iter().filter(|c| !c.passed).count() {
        0 => Ok(()),
        failed => Err(ChecksFailed {
            failed,
            total: checks.len(),
        }),
    }
}

/// An error unless the lab has state and libvirt runs `node`.
fn reachable(t: &Target, node: &str) -> crate::failure::Result<()> {
    secrets(t)?;
    guests::require_running(t, &t.connect()?, node)
}

/// `lab ssh NODE WORDS...`: runs the command line ([`guests::remote_command`]) on the node.
pub fn ssh_run(
    t: &Target,
    node: &str,
    words: &[String],
    timeouts: &Timeouts,
) -> crate::failure::Result<Output> {
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
/// command (inside `LAB_NETNS` when set; through the libvirt host with `-J` for a
/// `qemu+ssh://` URI) that opens a shell on the node with it.
pub fn ssh_command(t: &Target, node: &str) -> crate::failure::Result<std::process::Command> {
    reachable(t, node)?;
    let (identity, known_hosts) = access_files(t)?;
    let jump = crate::ssh::config::remote_host(&t.uri)?;
    let config = crate::render::access::ssh_config(&t.lab, &identity, &known_hosts, jump.as_ref());
    let path: PathBuf = t.state.dir().join(SSH_CONFIG);
    t.state.write(SSH_CONFIG, config.as_bytes())?;
    Ok(openssh(&path, jump.as_ref(), node, guests::netns()))
}

/// `ssh -F CONFIG [-J JUMP] NODE`, inside `netns` when set.
fn openssh(
    config: &Path,
    jump: Option<&Destination>,
    node: &str,
    netns: Option<String>,
) -> std::process::Command {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = std::process::Command::new("ip");
            c.args(["netns", "exec", &ns, "ssh"]);
            c
        }
        None => std::process::Command::new("ssh"),
    };
    cmd.arg("-F").arg(config);
    if let Some(jump) = jump {
        cmd.arg("-J").arg(jump.to_string());
    }
    cmd.arg(node);
    cmd
}

/// The OpenSSH config `lab ssh NODE` starts ssh with, in the lab's state.
const SSH_CONFIG: &str = "ssh_config";

#[cfg(test)]
mod tests {
    use super::*;

    fn words(cmd: &std::process::Command) -> Vec<String> {
        let args = cmd.get_args().map(|a| a.to_string_lossy().into_owned());
        std::iter::once(cmd.get_program().to_string_lossy().into_owned())
            .chain(args)
            .collect()
    }

    #[test]
    fn lab_ssh_goes_through_the_libvirt_host_of_a_remote_uri() {
        let config = Path::new("/s/ssh_config");
        let local = openssh(config, None, "controller", None);
        assert_eq!(words(&local), ["ssh", "-F", "/s/ssh_config", "controller"]);
        let uri = "qemu+ssh://root@kvm1:2222/system";
        let jump = crate::ssh::config::remote_host(uri).unwrap().unwrap();
        let remote = openssh(config, Some(&jump), "controller", Some("lab".into()));
        assert_eq!(
            words(&remote),
            [
                "ip",
                "netns",
                "exec",
                "lab",
                "ssh",
                "-F",
                "/s/ssh_config",
                "-J",
                "root@kvm1:2222",
                "controller"
            ]
        );
    }
}
