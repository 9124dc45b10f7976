//! `lab plan`: parse, delegate to [`crate::app::plan`], print.

use std::io::Write;
use std::path::PathBuf;

use crate::cli::output::{self, Screen};
use crate::cli::{AccelArg, LabArgs};
use crate::progress::{Event, Progress};

/// Show what a lab will create, or write every file of it to a directory
///
/// Writes nothing outside --out. Without --out, prints a summary of nodes, sizes, NICs and
/// notes (such as a disk raised to the image size). For a lab that was brought up, the files
/// are those `lab up` created (its keys, passwords and instance-ids; libvirt is read for the
/// latter); for any other lab they hold throwaway keys.
///
/// Examples:
///   lab plan --lab openstack-ocata
///   lab plan --lab labs/openstack-debian12.toml --out /tmp/plan
///   lab plan --lab openstack-ocata --json
///   lab plan --lab openstack-debian12 --instance s7   # before `lab up --instance s7`
///
/// With --json: the summary as JSON (with --out too, instead of the count of files).
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Write the rendered files here: networks/<net>.xml and nodes/<node>/*. Files holding
    /// private keys or passwords are 0600.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Domain type to render: auto (kvm only on real hardware virtualization), kvm or tcg.
    #[arg(long, value_enum, default_value = "auto")]
    accel: AccelArg,
}

pub fn run(lab: &LabArgs, args: Args) -> crate::failure::Result<()> {
    let t = lab.target_for_plan()?;
    if let Some(instance) = &t.instance
        && t.state.placement()?.is_none()
    {
        let subnets: Vec<String> = t
            .lab
            .networks
            .iter()
            .filter(|n| n.kind == crate::model::NetKind::Nat)
            .map(|n| format!("{} {}", n.name, n.cidr))
            .collect();
        let note = format!(
            "instance {instance} is not made yet: `lab up --instance {instance}` takes each nat network's subnet from the first free one of {} (shown here as the lab file's: {})",
            lab.subnet_pool,
            subnets.join(", ")
        );
        Screen::new(lab.json).event(Event::Note(note));
    }
    let accel = match args.accel {
        AccelArg::Auto => None,
        AccelArg::Kvm => Some(crate::render::Accel::Kvm),
        AccelArg::Tcg => Some(crate::render::Accel::Tcg),
    };
    let planned = crate::app::plan(&t, accel, args.out.as_deref())?;
    if lab.json {
        return Ok(output::print_json(&planned.summary, true)?);
    }
    let mut out = std::io::stdout().lock();
    if let (Some(dir), Some(written)) = (&args.out, &planned.written) {
        writeln!(out, "wrote {} files under {}", written.len(), dir.display())?;
    }
    crate::plan::print_table(&planned.summary, &t.lab, &mut out)?;
    Ok(())
}
