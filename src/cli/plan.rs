//! `lab plan`: parse and delegate to [`crate::plan`].

use std::path::PathBuf;

use crate::cli::{AccelArg, LabArgs};
use crate::plan::{self, PlanOptions};

/// Show what a lab will create, or write every file of it to a directory
///
/// Touches no libvirt and writes nothing outside --out. Without --out, prints a summary of
/// nodes, sizes, NICs and notes (such as a disk raised to the image size).
///
/// Examples:
///   lab plan --lab openstack-ocata
///   lab plan --lab labs/openstack-debian12.toml --out /tmp/plan
///   lab plan --lab openstack-ocata --json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Write the rendered files here: networks/<net>.xml and nodes/<node>/*.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Domain type to render: auto (kvm only on real hardware virtualization), kvm or tcg.
    #[arg(long, value_enum, default_value = "auto")]
    accel: AccelArg,
}

pub fn run(lab: &LabArgs, args: Args) -> anyhow::Result<()> {
    let options = PlanOptions {
        source: lab.choice().source()?,
        out: args.out,
        json: args.json,
        accel: match args.accel {
            AccelArg::Auto => None,
            AccelArg::Kvm => Some(crate::render::Accel::Kvm),
            AccelArg::Tcg => Some(crate::render::Accel::Tcg),
        },
    };
    plan::run(&options, &mut std::io::stdout().lock())
}
