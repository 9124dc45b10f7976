//! `lab creds`, `lab ssh-config`, `lab inventory`: parse and delegate to
//! [`crate::render::access`] with the lab's state.

use crate::cli::LabArgs;
use crate::render::access;

/// Show the lab's generated passwords (the install guide's password table).
///
/// With --json: {"NAME": "value", ...}.
#[derive(Debug, clap::Args)]
pub struct CredsArgs {}

/// Print an OpenSSH config for the lab's nodes, e.g. `ssh -F <(lab ssh-config) controller`.
///
/// Host keys are pinned (StrictHostKeyChecking yes with the lab's known_hosts), so no
/// prompt ever asks about an unknown host. Works with scp, rsync and VS Code remote too.
/// For a `qemu+ssh://` URI each node goes through the libvirt host (`ProxyJump`).
#[derive(Debug, clap::Args)]
pub struct SshConfigArgs {}

/// Print an Ansible inventory (INI) of the lab: groups controllers and computes, host keys
/// pinned. `ansible all -i <(lab inventory) -m ping`.
#[derive(Debug, clap::Args)]
pub struct InventoryArgs {}

pub fn creds(lab: &LabArgs, _: CredsArgs) -> crate::failure::Result<()> {
    let t = lab.target()?;
    let secrets = crate::app::secrets(&t)?;
    if lab.json {
        crate::cli::output::print_json(&secrets.passwords, true)?;
    } else {
        print!("{}", access::creds(&t.lab, &secrets));
    }
    Ok(())
}

pub fn ssh_config(lab: &LabArgs, _: SshConfigArgs) -> crate::failure::Result<()> {
    let t = lab.target()?;
    let (identity, known_hosts) = crate::app::access_files(&t)?;
    let jump = crate::ssh::config::remote_host(&t.uri)?;
    let config = access::ssh_config(&t.lab, &identity, &known_hosts, jump.as_ref());
    print!("{config}");
    Ok(())
}

pub fn inventory(lab: &LabArgs, _: InventoryArgs) -> crate::failure::Result<()> {
    let t = lab.target()?;
    let (identity, known_hosts) = crate::app::access_files(&t)?;
    let jump = crate::ssh::config::remote_host(&t.uri)?;
    print!(
        "{}",
        access::inventory(&t.lab, &identity, &known_hosts, jump.as_ref())
    );
    Ok(())
}
