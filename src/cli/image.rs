//! `lab image`: parse, delegate to [`crate::cache`] and [`crate::app`], print.

use std::path::PathBuf;

use crate::cache::Cache;
use crate::cli::LabArgs;
use crate::cli::output::{self, Screen};
use crate::model::units::ByteSize;

/// Manage the base images in the per-user cache (~/.cache/lab/images).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show every catalogue image: cached or not, size, verified.
    ///
    /// With --json: [{name, cached, path, size_on_disk, virtual_size, verified, ...}].
    List,
    /// Download an image, resuming a partial download; the checksum is verified first.
    Pull { name: String },
    /// Take a local qcow2 file as the image NAME (checked for format and checksum).
    Import { name: String, file: PathBuf },
    /// Remove an image from the cache.
    Rm { name: String },
    /// Build an image offline from distribution packages (debian12, with mmdebstrap).
    ///
    /// Needs root and the host packages mmdebstrap, fdisk, e2fsprogs, qemu-utils. The result
    /// goes into the cache (or to --out), recorded with its recipe hash.
    Build {
        name: String,
        /// Also pre-install the packages the provisioning installs (MariaDB, RabbitMQ,
        /// memcached, the OpenStack client), disabled: a lab that provisions offline.
        #[arg(long)]
        full: bool,
        /// Write the image here instead of into the cache.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Debian mirror to build from (a classroom's own).
        #[arg(long, value_name = "URL")]
        mirror: Option<String>,
        /// Compress the qcow2 (about 3x smaller, about 10x slower to write).
        #[arg(long)]
        compress: bool,
    },
    /// Print the hash of an image's build recipe (what an image cache is keyed by).
    RecipeHash {
        name: String,
        #[arg(long)]
        full: bool,
    },
}

pub fn run(lab: &LabArgs, cmd: Command) -> crate::failure::Result<()> {
    let json = lab.json;
    let cache = Cache::open()?;
    match cmd {
        Command::List => list(&cache, json)?,
        Command::Pull { name } => {
            let screen = Screen::new(json);
            let pulled = cache.pull(&name, &screen);
            drop(screen);
            let path = pulled?;
            let fields = serde_json::json!({ "image": name, "path": path });
            output::result(json, "image pull", fields, || {
                println!("{name}: {}", path.display());
            });
        }
        Command::Import { name, file } => {
            let path = cache.import(&name, &file)?;
            let fields = serde_json::json!({ "image": name, "path": path });
            output::result(json, "image import", fields, || {
                println!("{name}: imported as {}", path.display());
            });
        }
        Command::Build {
            name,
            full,
            out,
            mirror,
            compress,
        } => {
            let opts = crate::build::BuildOptions {
                full,
                mirror,
                compress,
            };
            build(&cache, &name, &opts, out, json)?;
        }
        Command::RecipeHash { name, full } => {
            crate::app::buildable(&cache, &name)?;
            let recipe = crate::build::recipe_hash(full);
            let fields = serde_json::json!({ "image": name, "full": full, "recipe": recipe });
            output::result(json, "image recipe-hash", fields, || println!("{recipe}"));
        }
        Command::Rm { name } => {
            let removed = cache.remove(&name)?;
            let fields = serde_json::json!({ "image": name, "removed": removed });
            output::result(json, "image rm", fields, || {
                let what = if removed { "removed" } else { "was not cached" };
                println!("{name}: {what}");
            });
        }
    }
    Ok(())
}

fn list(cache: &Cache, json: bool) -> crate::failure::Result<()> {
    let entries = cache.list()?;
    if json {
        output::print_json(&entries, true)?;
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

fn build(
    cache: &Cache,
    name: &str,
    opts: &crate::build::BuildOptions,
    out: Option<PathBuf>,
    json: bool,
) -> crate::failure::Result<()> {
    let screen = Screen::new(json);
    let built = crate::app::build_image(cache, name, opts, out.as_deref(), &screen);
    drop(screen);
    let (report, path) = built?;
    let fields = serde_json::json!({
        "image": name,
        "path": path,
        "cached": out.is_none(),
        "seconds": report.total.as_secs_f64(),
        "size": report.size,
        "recipe": report.recipe_hash,
    });
    output::result(json, "image build", fields, || {
        let built = format!(
            "{name}: built in {:.0}s ({} MiB, recipe {})",
            report.total.as_secs_f64(),
            report.size >> 20,
            report.recipe_hash
        );
        match out {
            Some(_) => println!("{built} as {}", path.display()),
            None => println!("{built}, cached as {}", path.display()),
        }
    });
    Ok(())
}
