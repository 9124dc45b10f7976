//! `lab image`: parse and delegate to [`crate::cache`].

use std::path::PathBuf;

use crate::cache::{Cache, PlainLines};
use crate::model::units::ByteSize;

/// Manage the base images in the per-user cache (~/.cache/lab/images).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show every catalogue image: cached or not, size, verified.
    List {
        /// Print JSON (fields: name, cached, path, size_on_disk, virtual_size, verified, ...).
        #[arg(long)]
        json: bool,
    },
    /// Download an image, resuming a partial download; the checksum is verified first.
    Pull { name: String },
    /// Take a local qcow2 file as the image NAME (checked for format and checksum).
    Import { name: String, file: PathBuf },
    /// Remove an image from the cache.
    Rm { name: String },
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    let cache = Cache::open()?;
    match cmd {
        Command::List { json } => list(&cache, json)?,
        Command::Pull { name } => {
            let mut progress = PlainLines::new(std::io::stderr(), &name);
            let path = cache.pull(&name, &mut progress)?;
            println!("{name}: {}", path.display());
        }
        Command::Import { name, file } => {
            let path = cache.import(&name, &file)?;
            println!("{name}: imported as {}", path.display());
        }
        Command::Rm { name } => {
            let what = if cache.remove(&name)? {
                "removed"
            } else {
                "was not cached"
            };
            println!("{name}: {what}");
        }
    }
    Ok(())
}

fn list(cache: &Cache, json: bool) -> anyhow::Result<()> {
    let entries = cache.list()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    println!(
        "{:<10} {:<8} {:>10} {:>8}  PATH",
        "IMAGE", "CACHED", "SIZE", "VIRTUAL"
    );
    for e in entries {
        let cached = match (e.cached, e.verified) {
            (true, true) => "yes",
            (true, false) => "unverified",
            (false, _) if e.partial_bytes.is_some() => "partial",
            (false, _) => "no",
        };
        let size = e.size_on_disk.map_or("-".into(), |s| {
            format!("{:.1}GiB", s as f64 / (1u64 << 30) as f64)
        });
        println!(
            "{:<10} {:<8} {:>10} {:>8}  {}",
            e.name,
            cached,
            size,
            ByteSize(e.virtual_size).to_string(),
            e.path.display()
        );
    }
    Ok(())
}
