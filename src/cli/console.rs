//! `lab console` and `lab logs`: parse, delegate to [`crate::app`], print.

use std::io::{BufRead, Seek, Write};
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

/// Show a node's serial console log and its provisioning log.
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

pub fn console(lab: &LabArgs, args: ConsoleArgs) -> anyhow::Result<()> {
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

pub fn logs(lab: &LabArgs, args: LogsArgs) -> anyhow::Result<()> {
    let t = lab.target()?;
    let files = crate::app::log_files(&t, &args.node, !args.provision, !args.serial)?;
    for f in &files {
        match std::fs::read_to_string(f) {
            Ok(text) => println!("==> {} <==\n{text}", f.display()),
            Err(e) => eprintln!(
                "{}: {e} (not on this machine, or the node never ran)",
                f.display()
            ),
        }
    }
    if args.follow {
        follow(&files)?;
    }
    Ok(())
}

/// Prints what is appended to `files`, polling twice a second, until interrupted.
fn follow(files: &[std::path::PathBuf]) -> anyhow::Result<()> {
    let mut readers: Vec<_> = files
        .iter()
        .filter_map(|f| {
            let mut file = std::fs::File::open(f).ok()?;
            file.seek(std::io::SeekFrom::End(0)).ok()?;
            Some(std::io::BufReader::new(file))
        })
        .collect();
    let mut out = std::io::stdout();
    loop {
        for r in &mut readers {
            let mut line = String::new();
            while r.read_line(&mut line)? > 0 {
                out.write_all(line.as_bytes())?;
                line.clear();
            }
        }
        out.flush()?;
        std::thread::sleep(Duration::from_millis(500));
    }
}
