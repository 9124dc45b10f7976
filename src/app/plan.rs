//! `lab plan`: the summary of the chosen lab and its files, rendered with the context `lab up`
//! uses. For a lab that was brought up that is its own keys, passwords and instance-ids, so
//! the files are those `lab up` created; a lab without state gets throwaway keys, and a note.

use std::path::{Path, PathBuf};

use crate::failure::Context;

use super::Target;
use crate::lifecycle::{self, Inventory};
use crate::plan::{self, Summary};
use crate::render::{Accel, RenderContext};

/// What `lab plan` found and wrote.
#[derive(Debug)]
pub struct Planned {
    pub summary: Summary,
    /// The files written under `--out`.
    pub written: Option<Vec<PathBuf>>,
}

/// `lab plan`: the summary with its notes; with `out`, every file written there. `accel`
/// `None` detects it. Writes nothing outside `out`; libvirt is only read, for the instance-ids
/// of a lab that has state.
pub fn plan(
    t: &Target,
    accel: Option<Accel>,
    out: Option<&Path>,
) -> crate::failure::Result<Planned> {
    let accel = accel.unwrap_or_else(|| crate::host::detect_accel().accel);
    let mut summary = plan::summary(&t.lab, &t.source.path, accel, &t.notes);
    let nested = crate::host::nested_virt();
    summary
        .notes
        .extend(plan::nested_notes(&t.lab, accel, nested));
    let host = crate::host::host_size();
    summary.notes.extend(plan::host_notes(&t.lab, &host));
    let Some(dir) = out else {
        return Ok(Planned {
            summary,
            written: None,
        });
    };
    let (ctx, note) = context(t, accel)?;
    summary.notes.extend(note);
    let written = plan::write_files(dir, &t.lab, &ctx)?;
    Ok(Planned {
        summary,
        written: Some(written),
    })
}

/// The context `lab up` renders with, without creating state: the lab's own secrets and each
/// node's generation as libvirt records it. Without state: throwaway secrets; either way a
/// note says what the files cannot match.
fn context(t: &Target, accel: Accel) -> crate::failure::Result<(RenderContext, Option<String>)> {
    let Some(seed) = t.state.existing_seed()? else {
        let seed =
            crate::secrets::random_seed().context("cannot read /dev/urandom for the lab's keys")?;
        let note = format!(
            "lab {} has no state: the files hold throwaway keys and passwords, not those `{}` will make",
            t.lab.name,
            t.command("up")
        );
        return Ok((t.context_with(&seed, accel), Some(note)));
    };
    let mut ctx = t.context_with(&seed, accel);
    let generations = t.connect().and_then(|hv| {
        let inv = Inventory::read(&hv, &t.lab.name, Some(&ctx.secrets.owner))?;
        Ok(lifecycle::generations(&inv, &t.lab))
    });
    match generations {
        Ok(generations) => {
            ctx.generations = generations;
            Ok((ctx, None))
        }
        Err(e) => {
            let note = format!(
                "cannot read the nodes' generations ({e:#}): the instance-ids assume no node was recreated"
            );
            Ok((ctx, Some(note)))
        }
    }
}
