//! `lab down`: parse and delegate to [`crate::app::down`].

use crate::cli::LabArgs;
use crate::cli::output::{self, Screen};

/// Remove everything the lab owns.
///
/// Domains (with their snapshots), networks, the pool with its volumes, and the lab's state. Objects are found through libvirt's metadata, so this
/// works even if the state directory is gone, and never touches anything else.
/// The image cache stays.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(lab: &LabArgs, _: Args) -> crate::failure::Result<()> {
    let target = lab.target_for_down()?;
    let screen = Screen::new(lab.json);
    let removed = crate::app::down(&target, &screen)?;
    drop(screen);
    let fields = serde_json::json!({
        "lab": target.lab.name,
        "instance": target.instance,
        "uri": target.uri,
        "removed": removed,
    });
    output::result(lab.json, "down", fields, || {
        println!(
            "lab {} is down ({removed} objects removed)",
            target.lab.name
        );
    });
    Ok(())
}
