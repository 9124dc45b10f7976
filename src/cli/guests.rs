//! `lab provision`, `lab verify`, `lab ssh`: parse and delegate to [`crate::app`].

use crate::failure::Failure;
use std::os::unix::process::CommandExt;

use crate::cli::LabArgs;
use crate::cli::output::{self, Screen, print_checks};
use crate::provision::engine::Selection;

/// Re-run provisioning steps; steps already done report `ok` and change nothing.
#[derive(Debug, clap::Args)]
pub struct ProvisionArgs {
    /// Only this node.
    #[arg(long)]
    node: Option<String>,
    /// Only this step (e.g. sql, mq-user, memcached; `lab steps` lists them).
    #[arg(long)]
    step: Option<String>,
    /// Seconds to wait for the nodes to answer SSH.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    timeout: u64,
}

/// Prove every line of the guide, with a hint for each check that fails (exit 4)
///
/// The checks: packages, services enabled at boot,
/// chrony serving the management network and followed by the compute node, MariaDB's
/// openstack.cnf (its server variables and sockets) and secure installation, RabbitMQ's
/// user and its rights (spoken over AMQP from compute1), memcached's listen list, the
/// OpenStack client. A failing check says what is missing and which file or command of the
/// guide sets it. Checks only read: they change nothing on the nodes. Exits 4 when a check
/// fails. With --json: [{step, name, node, proves, passed, measured, hint, seconds}] on
/// stdout, progress on stderr as JSON lines.
///
/// Examples:
///   lab verify                 # every check
///   lab verify mq              # RabbitMQ's checks (mq and mq-user, which finishes it)
///   lab verify sql memcached --json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct VerifyArgs {
    /// Only the checks of these steps (`lab steps` lists them).
    #[arg(value_name = "STEP")]
    steps: Vec<String>,
    /// Seconds to wait for the nodes to answer SSH.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    timeout: u64,
}

/// Run a command on a node as root, or open a shell (OpenSSH with the lab's key and pinned
/// host keys; no host-key prompt).
///
/// As with ssh, the words of the command are joined with spaces and the node's shell runs
/// the line; its exit status becomes `lab ssh`'s.
///
/// Examples:
///   lab ssh controller
///   lab ssh controller -- touch /root/x
///   lab ssh controller 'systemctl status mariadb | head'
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct SshArgs {
    /// The node, by its name in the lab file (controller, compute1).
    node: String,
    /// The command line (after `--`, or from its first word on).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<String>,
}

pub fn provision(lab: &LabArgs, args: ProvisionArgs) -> crate::failure::Result<()> {
    let t = lab.target()?;
    let sel = Selection {
        node: args.node,
        step: args.step,
        before: None,
    };
    let screen = Screen::new(lab.json);
    let timeouts = crate::cli::timeouts(args.timeout);
    let events = crate::app::provision_nodes(&t, &sel, &timeouts, &screen);
    drop(screen);
    let events = events?;
    let changed = events
        .iter()
        .filter(|e| e.outcome == crate::progress::Outcome::Changed)
        .count();
    let fields = serde_json::json!({
        "lab": t.lab.name,
        "instance": t.instance,
        "uri": t.uri,
        "steps": events,
        "changed": changed,
    });
    output::result(lab.json, "provision", fields, || {
        println!("{} steps, {changed} changed", events.len());
    });
    Ok(())
}

pub fn verify(lab: &LabArgs, args: VerifyArgs) -> crate::failure::Result<()> {
    let t = lab.target()?;
    let screen = Screen::new(lab.json);
    let timeouts = crate::cli::timeouts(args.timeout);
    let checks = crate::app::verify_nodes(&t, &args.steps, &timeouts, &screen);
    drop(screen);
    let checks = checks?;
    if lab.json {
        output::print_json(&checks, true)?;
    } else {
        print_checks(&checks);
    }
    Ok(crate::app::checks_passed(&checks)?)
}

/// List the provisioning steps in the install guide's order, with the checks of each
///
/// For the lab's profile: each step's guide section, the nodes it runs on, what it does and
/// the checks that prove it.
///
/// A step's name goes to `lab up --stop-before STEP`, `lab guide STEP`, `lab verify STEP`
/// and `lab provision --step STEP`.
///
/// With --json: [{id, section, part_of, reason, nodes, checks}].
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct StepsArgs {}

/// Print the guide's commands from STEP on, with this lab's addresses and passwords
///
/// STEP and every step after it (all steps without STEP): what a student types after
/// `lab up --stop-before STEP`, the CentOS commands for the CentOS lab, Debian's for the
/// Debian lab.
#[derive(Debug, clap::Args)]
pub struct GuideArgs {
    /// The first step to print (`lab steps` lists them).
    step: Option<String>,
}

pub fn steps(lab: &LabArgs, _: StepsArgs) -> crate::failure::Result<()> {
    let t = lab.target()?;
    let steps = crate::provision::guide_steps(&t.lab);
    let checks = crate::provision::verify::checks(&t.lab);
    let names = |id: &str| {
        let mut names: Vec<&str> = checks
            .iter()
            .filter(|c| c.step == id)
            .map(|c| c.name)
            .collect();
        names.dedup();
        names
    };
    if lab.json {
        let rows: Vec<serde_json::Value> = steps
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).expect("a step serializes");
                v["checks"] = serde_json::json!(names(s.id));
                v
            })
            .collect();
        output::print_json(&rows, true)?;
        return Ok(());
    }
    println!(
        "{} ({}): the steps in the install guide's order",
        t.lab.name, t.lab.image.name
    );
    for (i, s) in steps.iter().enumerate() {
        let part = s
            .part_of
            .map(|p| format!(", finishes {p}"))
            .unwrap_or_default();
        println!(
            "{:>2}  {:<15} {}{part}; on {}",
            i + 1,
            s.id,
            s.section,
            s.nodes.join(", ")
        );
        println!("    {}", s.reason);
        println!("    checks: {}", names(s.id).join(", "));
    }
    Ok(())
}

pub fn guide(lab: &LabArgs, args: GuideArgs) -> crate::failure::Result<()> {
    let t = lab.target()?;
    if let Some(step) = &args.step {
        crate::provision::require_step(&t.lab, step)?;
    }
    let secrets = crate::app::secrets(&t)?;
    let text = crate::provision::guide::text(&t.lab, &secrets, args.step.as_deref());
    // Its `lab ...` commands name this lab (and instance) when a bare one would pick another.
    let (flag, instance) = (t.choice.flag(), t.instance.as_deref());
    print!(
        "{}",
        crate::app::name_the_lab(&text.unwrap_or_default(), &flag, instance)
    );
    Ok(())
}

pub fn ssh(lab: &LabArgs, args: SshArgs) -> crate::failure::Result<()> {
    let t = lab.target()?;
    if args.command.is_empty() {
        let err = crate::app::ssh_command(&t, &args.node)?.exec();
        return Err(Failure::host(format!(
            "cannot run ssh: {err}: install openssh-client"
        )));
    }
    let timeouts = crate::cli::timeouts(60);
    let out = crate::app::ssh_run(&t, &args.node, &args.command, &timeouts)?;
    print!("{}", out.stdout);
    eprint!("{}", out.stderr);
    std::process::exit(i32::try_from(out.status).unwrap_or(255));
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn ssh_words(line: &[&str]) -> (String, Vec<String>, Option<String>) {
        let cli = Cli::try_parse_from(line).unwrap();
        match cli.command {
            Command::Ssh(a) => (a.node, a.command, cli.lab.lab),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_command_is_taken_with_or_without_dashes_and_its_options_stay_its_own() {
        let (node, words, _) =
            ssh_words(&["lab", "ssh", "controller", "systemctl status x | head"]);
        assert_eq!(
            (node.as_str(), words),
            ("controller", vec!["systemctl status x | head".to_string()])
        );
        let (_, words, _) = ssh_words(&["lab", "ssh", "controller", "--", "touch", "/root/x"]);
        assert_eq!(words, ["touch", "/root/x"]);
        let (_, words, lab) = ssh_words(&[
            "lab",
            "-l",
            "x.toml",
            "ssh",
            "controller",
            "ls",
            "-l",
            "--lab",
        ]);
        assert_eq!(
            (words, lab.as_deref()),
            (
                vec!["ls".to_string(), "-l".into(), "--lab".into()],
                Some("x.toml")
            )
        );
        let (_, words, lab) = ssh_words(&["lab", "ssh", "controller", "--lab", "y.toml"]);
        assert_eq!((words.len(), lab.as_deref()), (0, Some("y.toml")));
    }
}
