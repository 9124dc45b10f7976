//! `lab list`: parse, delegate to [`crate::app::list`], print.

use crate::app::Listed;
use crate::cli::LabArgs;

/// Show every lab on the libvirt host: instances and class seats too, whoever made them.
///
/// Read from the metadata `lab` writes into each domain and network, so it finds labs made
/// from another machine as well. HERE says whether this machine holds the lab's state (its
/// key, passwords and logs: `no` for a lab made from elsewhere, which only `lab down` can act
/// on from here). Act on one with `lab status --lab FILE` (an instance: `--instance NAME` too).
/// With --json: a list of {lab, nodes[name, state], networks, instance, state_here}.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(lab: &LabArgs, _: Args) -> crate::failure::Result<()> {
    let labs = crate::app::list(&lab.uri)?;
    if lab.json {
        crate::cli::output::print_json(&labs, true)?;
    } else {
        print!("{}", table(&labs, &lab.uri));
    }
    Ok(())
}

/// The human table.
fn table(labs: &[Listed], uri: &str) -> String {
    if labs.is_empty() {
        return format!("no lab on {uri}: `lab up` makes one\n");
    }
    let mut out = format!("{:<22} {:<9} {:<4} NODES\n", "LAB", "INSTANCE", "HERE");
    for l in labs {
        let nodes: Vec<String> = l
            .on_host
            .nodes
            .iter()
            .map(|n| format!("{} {}", n.name, n.state))
            .collect();
        let nodes = if nodes.is_empty() {
            format!("none (networks: {})", l.on_host.networks.join(", "))
        } else {
            nodes.join(", ")
        };
        out.push_str(&format!(
            "{:<22} {:<9} {:<4} {nodes}\n",
            l.on_host.lab,
            l.instance.as_deref().unwrap_or("-"),
            if l.state_here { "yes" } else { "no" },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::libvirt::RunState;
    use crate::lifecycle::{LabOnHost, NodeOnHost};

    fn listed(lab: &str, nodes: &[(&str, RunState)], instance: Option<&str>, here: bool) -> Listed {
        Listed {
            on_host: LabOnHost {
                lab: lab.into(),
                nodes: nodes
                    .iter()
                    .map(|(name, state)| NodeOnHost {
                        name: name.to_string(),
                        state: *state,
                    })
                    .collect(),
                networks: vec!["external".into(), "internal".into()],
                state: None,
            },
            instance: instance.map(str::to_string),
            state_here: here,
        }
    }

    #[test]
    fn the_table_has_a_line_per_lab_with_its_instance_state_and_nodes() {
        let labs = [
            listed(
                "ocata-deb",
                &[
                    ("compute1", RunState::ShutOff),
                    ("controller", RunState::Running),
                ],
                None,
                true,
            ),
            listed("ocata-deb-s1", &[], Some("s1"), false),
        ];
        let text = table(&labs, "qemu:///system");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("LAB "), "{text}");
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            [
                "ocata-deb",
                "-",
                "yes",
                "compute1",
                "shut",
                "off,",
                "controller",
                "running"
            ]
        );
        assert!(
            lines[2].starts_with("ocata-deb-s1")
                && lines[2].ends_with("none (networks: external, internal)"),
            "{text}"
        );
        assert!(
            lines[2].contains(" s1 ") && lines[2].contains(" no "),
            "{text}"
        );
    }

    #[test]
    fn an_empty_host_says_how_to_make_a_lab() {
        assert_eq!(
            table(&[], "qemu:///session"),
            "no lab on qemu:///session: `lab up` makes one\n"
        );
    }
}
