//! `lab provision`, `lab verify`, `lab ssh`: parse and delegate to [`crate::app`].

use std::os::unix::process::CommandExt;

use crate::cli::LabArgs;
use crate::cli::output::{Screen, print_checks};
use crate::guest::Guest;
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
    crate::app::secrets(&t)?;
    let _lock = t.state.lock("provision")?;
    let sel = Selection {
        node: args.node,
        step: args.step,
    };
    let timeouts = crate::cli::timeouts(args.timeout);
    let screen = Screen::new(false);
    let events = crate::app::with_guests_reporting(&t, &timeouts, &screen, async |ctx, guests| {
        crate::app::provision(&t, ctx, &guests, &sel, &screen).await
    });
    drop(screen);
    let events = events?;
    let changed = events
        .iter()
        .filter(|e| e.outcome == crate::provision::engine::Outcome::Changed)
        .count();
    println!("{} steps, {changed} changed", events.len());
    Ok(())
}

pub fn verify(lab: &LabArgs, args: VerifyArgs) -> anyhow::Result<()> {
    let t = lab.target()?;
    crate::app::secrets(&t)?;
    let timeouts = crate::cli::timeouts(args.timeout);
    let screen = Screen::new(args.json);
    let checks = crate::app::with_guests_reporting(&t, &timeouts, &screen, async |ctx, guests| {
        Ok(crate::app::verify(&t, ctx, &guests).await?)
    });
    drop(screen);
    let checks = checks?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        print_checks(&checks);
    }
    match checks.iter().filter(|c| !c.passed).count() {
        0 => Ok(()),
        n => Err(crate::app::GuestProblem(format!("{n} of {} checks failed", checks.len())).into()),
    }
}

pub fn ssh(lab: &LabArgs, args: SshArgs) -> anyhow::Result<()> {
    let t = lab.target()?;
    crate::app::secrets(&t)?;
    crate::app::require_running(&t, &t.connect()?, &args.node)?;
    if args.command.is_empty() {
        return Err(interactive(&t, &args.node));
    }
    let script = crate::app::remote_command(&args.command);
    let timeouts = crate::cli::timeouts(60);
    let node = args.node.clone();
    let out = crate::app::with_guests(&t, &timeouts, async |_, guests| {
        let guest = guests
            .iter()
            .find(|g| g.node() == node)
            .expect("every node connected");
        Ok(guest.run(&script).await?)
    })?;
    print!("{}", out.stdout);
    eprint!("{}", out.stderr);
    std::process::exit(i32::try_from(out.status).unwrap_or(255));
}

/// Replaces this process with OpenSSH on the lab's generated config; returns only on error.
fn interactive(t: &crate::app::Target, node: &str) -> anyhow::Error {
    let (identity, known_hosts) = match crate::app::access_files(t) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let config = crate::render::access::ssh_config(&t.lab, &identity, &known_hosts);
    let path = t.state.dir().join("ssh_config");
    if let Err(e) = t.state.write("ssh_config", config.as_bytes()) {
        return e.into();
    }
    let mut cmd = match crate::app::guests_netns() {
        Some(ns) => {
            let mut c = std::process::Command::new("ip");
            c.args(["netns", "exec", &ns, "ssh"]);
            c
        }
        None => std::process::Command::new("ssh"),
    };
    let err = cmd.arg("-F").arg(&path).arg(node).exec();
    anyhow::anyhow!("cannot run ssh: {err}: install openssh-client")
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
