//! `lab snapshot` and `lab reset`: parse, delegate to [`crate::app`], print.

use crate::cli::{LabArgs, output::Screen};
use crate::lifecycle;

/// Save, list or delete lab-wide snapshots.
///
/// A lab-wide snapshot pauses all nodes, takes an internal snapshot with memory of each,
/// and resumes them: the nodes' states fit together.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Take a lab-wide snapshot NAME.
    Save { name: String },
    /// List the lab-wide snapshots, oldest first.
    List {
        /// Print JSON (an array of names).
        #[arg(long)]
        json: bool,
    },
    /// Delete a lab-wide snapshot.
    Delete { name: String },
}

/// Revert every node to a lab-wide snapshot.
///
/// All nodes are reverted in parallel and left running. Without NAME: the snapshot `lab up`
/// took of the freshly provisioned lab.
#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    #[arg(default_value = lifecycle::UP_SNAPSHOT)]
    name: String,
}

pub fn run(lab: &LabArgs, cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Save { name } => {
            let t = lab.target()?;
            crate::app::snapshot_save(&t, &name, &Screen::new(false))?;
            println!("snapshot {name} saved");
        }
        Command::List { json } => {
            let t = lab.target()?;
            let names = crate::app::snapshots(&t)?;
            if json {
                println!("{}", serde_json::to_string(&names)?);
            } else {
                names.iter().for_each(|n| println!("{n}"));
            }
        }
        Command::Delete { name } => {
            let t = lab.target()?;
            crate::app::snapshot_delete(&t, &name, &Screen::new(false))?;
            println!("snapshot {name} deleted");
        }
    }
    Ok(())
}

pub fn reset(lab: &LabArgs, args: ResetArgs) -> anyhow::Result<()> {
    let t = lab.target()?;
    let start = std::time::Instant::now();
    crate::app::reset(&t, &args.name, &Screen::new(false))?;
    println!(
        "lab {} reset to {} in {:.1}s",
        t.lab.name,
        args.name,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
