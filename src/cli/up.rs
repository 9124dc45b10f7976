//! `lab up`: parse and delegate to [`crate::app::up`].

use std::path::PathBuf;

use crate::cli::{AccelArg, LabArgs, output::Lines};

/// Create the lab on libvirt and boot its nodes
///
/// Re-running it changes nothing.
/// Creates (only what is missing): a storage pool with the image, a cloud-init seed and a
/// disk overlay per node, the networks, and the domains, booted concurrently. Before creating
/// anything it checks that no object with the lab's names belongs to someone else, that the
/// networks do not overlap other libvirt networks or host routes, and that the host has the
/// memory. If a step fails, what this run created is removed again.
///
/// Examples:
///   lab image import debian12 ./debian12.qcow2 && lab up --lab openstack-debian12 --no-provision
///   lab up -c qemu:///session --lab openstack-ocata --no-provision
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(flatten)]
    lab: LabArgs,
    /// Domain type: auto (kvm only on real hardware virtualization), kvm or tcg.
    #[arg(long, value_enum, default_value = "auto")]
    accel: AccelArg,
    /// Use this qcow2 file as the base image instead of the cached one (`lab image list`).
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    /// Stop once the nodes are defined and running (no SSH provisioning).
    #[arg(long)]
    no_provision: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if !args.no_provision {
        anyhow::bail!("provisioning over ssh is not built yet: run `lab up --no-provision`");
    }
    let target = args.lab.target()?;
    for note in &target.notes {
        eprintln!("note: {note}");
    }
    let image = match args.image {
        Some(path) => path,
        None => crate::cache::Cache::open()?.path_for(&target.lab.image.name)?,
    };
    let changed = crate::app::up(&target, args.accel.resolve(), &image, &Lines::new())?;
    let what = if changed {
        "is up"
    } else {
        "was already up: nothing changed"
    };
    println!("lab {} {what} on {}", target.lab.name, target.uri);
    Ok(())
}
