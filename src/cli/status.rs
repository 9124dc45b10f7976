//! `lab status`: parse, delegate to [`crate::app::status`], print.

use crate::cli::LabArgs;
use crate::lifecycle::Status;

/// Show the lab as libvirt has it now.
///
/// Each node's state and addresses, the networks, lab-wide snapshots, and objects with the
/// lab's names that belong to someone else. With --json: lab, uri, nodes[name, domain,
/// state, addresses], networks[name, libvirt_name, active], pool, snapshots, foreign.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(lab: &LabArgs, _: Args) -> crate::failure::Result<()> {
    let target = lab.target()?;
    let status = crate::app::status(&target)?;
    if lab.json {
        crate::cli::output::print_json(&status, true)?;
    } else {
        let commands = (target.command("up"), target.command("start"));
        print!("{}", table(&status, &commands.0, &commands.1));
    }
    Ok(())
}

/// The human table; `up` is the command that creates the lab, `start` the one that brings
/// a stopped lab back.
fn table(s: &Status, up: &str, start: &str) -> String {
    let mut out = format!("lab {} on {}\n", s.lab, s.uri);
    if s.is_gone() {
        out.push_str(&format!(
            "not created: run `{up}` (`lab list` shows the labs on this host)\n"
        ));
    }
    if crate::lifecycle::is_stopped(s) {
        let networks = if s.networks.iter().any(|n| n.active == Some(false)) {
            " and its networks inactive (as after a host reboot)"
        } else {
            ""
        };
        out.push_str(&format!(
            "stopped: every node is saved or shut off{networks}; `{start}` brings it back\n"
        ));
    }
    for n in &s.nodes {
        let state = n.state.map_or("missing".to_string(), |st| st.to_string());
        out.push_str(&format!(
            "node    {:<12} {:<9} {}\n",
            n.name,
            state,
            n.addresses.join(" ")
        ));
    }
    for n in &s.networks {
        let state = match n.active {
            None => "missing",
            Some(true) => "active",
            Some(false) => "inactive",
        };
        out.push_str(&format!("network {:<12} {state}\n", n.name));
    }
    if !s.snapshots.is_empty() {
        out.push_str(&format!("snapshots {}\n", s.snapshots.join(", ")));
    }
    for f in &s.foreign {
        out.push_str(&format!("foreign {f}: not this lab's, blocks `{up}`\n"));
    }
    out
}
