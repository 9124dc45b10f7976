//! `lab console` and `lab logs`: parse, delegate to [`crate::app`], print.

use std::io::Write;
use std::time::Duration;

use crate::cli::LabArgs;

/// Attach to a node's serial console (through libvirt, so it works on remote hosts too).
///
/// Ctrl-] leaves. With piped input, the console's output of the second after the input ends
/// is still shown (`printf '\n' | lab console controller` shows the login prompt).
#[derive(Debug, clap::Args)]
pub struct ConsoleArgs {
    node: String,
}

/// Show a node's serial console log (read through libvirt, so remote hosts too) and its
/// provisioning log.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    node: String,
    /// Keep printing what is appended (Ctrl-C ends).
    #[arg(long, short)]
    follow: bool,
    /// Only the serial console log.
    #[arg(long, conflicts_with = "provision")]
    serial: bool,
    /// Only the provisioning log (commands run over SSH and their output).
    #[arg(long)]
    provision: bool,
}

pub fn console(lab: &LabArgs, args: ConsoleArgs) -> crate::failure::Result<()> {
    let t = lab.target()?;
    let (domain, console) = crate::app::open_console(&t, &args.node)?;
    let raw = crate::app::RawMode::enable(std::io::stdin());
    if raw.is_some() {
        eprint!("connected to {domain}'s serial console; escape with Ctrl-]\r\n");
    }
    let linger = Duration::from_secs(if raw.is_some() { 0 } else { 1 });
    crate::app::attach(console, std::io::stdin(), std::io::stdout(), linger)?;
    drop(raw);
    eprintln!();
    Ok(())
}

pub fn logs(lab: &LabArgs, args: LogsArgs) -> crate::failure::Result<()> {
    let t = lab.target()?;
    let mut logs = crate::app::Logs::open(&t, &args.node, !args.provision, !args.serial)?;
    for (title, text) in logs.read_new() {
        match text {
            Ok(text) => println!("==> {title} <==\n{text}"),
            Err(why) => eprintln!("{title}: {why}"),
        }
    }
    if args.follow {
        follow(&mut logs)?;
    }
    Ok(())
}

/// Prints what is appended to the logs, twice a second, until interrupted.
fn follow(logs: &mut crate::app::Logs) -> crate::failure::Result<()> {
    let mut out = std::io::stdout();
    loop {
        for (_, text) in logs.read_new() {
            if let Ok(text) = text {
                out.write_all(text.as_bytes())?;
            }
        }
        out.flush()?;
        std::thread::sleep(Duration::from_millis(500));
    }
}
