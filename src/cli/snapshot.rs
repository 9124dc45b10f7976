//! `lab snapshot` and `lab reset`: parse, delegate to [`crate::app`], print.

use crate::cli::LabArgs;
use crate::cli::output::{self, Screen};
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
    ///
    /// With --json: an array of names.
    List,
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

pub fn run(lab: &LabArgs, cmd: Command) -> crate::failure::Result<()> {
    match cmd {
        Command::Save { name } => {
            let t = lab.target()?;
            let screen = Screen::new(lab.json);
            crate::app::snapshot_save(&t, &name, &screen)?;
            drop(screen);
            output::result(lab.json, "snapshot save", fields(&t, &name), || {
                println!("snapshot {name} saved");
            });
        }
        Command::List => {
            let t = lab.target()?;
            let names = crate::app::snapshots(&t)?;
            if lab.json {
                output::print_json(&names, false)?;
            } else {
                names.iter().for_each(|n| println!("{n}"));
            }
        }
        Command::Delete { name } => {
            let t = lab.target()?;
            let screen = Screen::new(lab.json);
            crate::app::snapshot_delete(&t, &name, &screen)?;
            drop(screen);
            output::result(lab.json, "snapshot delete", fields(&t, &name), || {
                println!("snapshot {name} deleted");
            });
        }
    }
    Ok(())
}

/// The lab and the snapshot, as the fields of a JSON result.
fn fields(t: &crate::app::Target, snapshot: &str) -> serde_json::Value {
    serde_json::json!({
        "lab": t.lab.name,
        "instance": t.instance,
        "uri": t.uri,
        "snapshot": snapshot,
    })
}

pub fn reset(lab: &LabArgs, args: ResetArgs) -> crate::failure::Result<()> {
    let t = lab.target()?;
    let start = std::time::Instant::now();
    let screen = Screen::new(lab.json);
    crate::app::reset(&t, &args.name, &screen)?;
    drop(screen);
    let seconds = start.elapsed().as_secs_f64();
    let mut fields = fields(&t, &args.name);
    fields["seconds"] = seconds.into();
    output::result(lab.json, "reset", fields, || {
        println!("lab {} reset to {} in {seconds:.1}s", t.lab.name, args.name);
    });
    Ok(())
}
