//! `lab provision`, `lab verify`, `lab ssh`: parse and delegate to [`crate::app`].

use std::os::unix::process::CommandExt;

use crate::cli::LabArgs;
use crate::cli::output::{Screen, print_checks};
use crate::provision::engine::Selection;

/// Re-run provisioning steps; steps already done report `ok` and change nothing.
#[derive(Debug, clap::Args)]
pub struct ProvisionArgs {
    /// Only this node.
    #[arg(long)]
    node: Option<String>,
    /// Only this step (e.g. sql, mq-user, memcached; `lab plan --out` lists them).
    #[arg(long)]
    step: Option<String>,
    /// Seconds to wait for the nodes to answer SSH.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    timeout: u64,
}

/// Prove the guide's result from the compute node: MariaDB, RabbitMQ, memcached, chrony,
/// the OpenStack client. Exits 4 when a check fails.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Print JSON: [{name, node, proves, passed, measured, seconds}]; progress goes to stderr
    /// as JSON lines ({kind, name, action, elapsed}).
    #[arg(long)]
    json: bool,
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

pub fn provision(lab: &LabArgs, args: ProvisionArgs) -> anyhow::Result<()> {
    let t = lab.target()?;
    let sel = Selection {
        node: args.node,
        step: args.step,
    };
    let screen = Screen::new(false);
    let timeouts = crate::cli::timeouts(args.timeout);
    let events = crate::app::provision_nodes(&t, &sel, &timeouts, &screen);
    drop(screen);
    let events = events?;
    let changed = events
        .iter()
        .filter(|e| e.outcome == crate::progress::Outcome::Changed)
        .count();
    println!("{} steps, {changed} changed", events.len());
    Ok(())
}

pub fn verify(lab: &LabArgs, args: VerifyArgs) -> anyhow::Result<()> {
    let t = lab.target()?;
    let screen = Screen::new(args.json);
    let checks = crate::app::verify_nodes(&t, &crate::cli::timeouts(args.timeout), &screen);
    drop(screen);
    let checks = checks?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        print_checks(&checks);
    }
    Ok(crate::app::checks_passed(&checks)?)
}

pub fn ssh(lab: &LabArgs, args: SshArgs) -> anyhow::Result<()> {
    let t = lab.target()?;
    if args.command.is_empty() {
        let err = crate::app::ssh_command(&t, &args.node)?.exec();
        anyhow::bail!("cannot run ssh: {err}: install openssh-client");
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
