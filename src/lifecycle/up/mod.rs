//! `lab up`: converge libvirt to the lab. Every object is looked up first and created only
//! when missing; a failed or interrupted run removes what it created, so nothing is left
//! half-made. Before the first volume, the pool's free space must hold what the run may
//! still write there (`space.rs`). An uploaded volume counts only with its completion
//! marker; a call that fails because the object appeared meanwhile (libvirt finishes the
//! calls of a killed client) looks again instead of failing. A lab file that differs from
//! what runs is refused, naming each difference; `recreate` rebuilds nodes from the image.

use std::path::Path;
use std::sync::Mutex;

use super::drift::differences;
use super::inventory::{Clash, Inventory, route_clashes};
use super::{Action, Hv, LifecycleError, Progress, each_parallel, timed};
use crate::interrupt;
use crate::libvirt::RunState;
use crate::model::Lab;
use crate::model::units::ByteSize;
use crate::names;
use crate::render::RenderContext;
use crate::render::libvirt as xml;

mod objects;
mod rollback;
mod space;
mod storage;

use rollback::Created;

pub struct UpOptions<'a> {
    /// The image file on this machine (from the image cache), uploaded once into the pool.
    pub image: &'a Path,
    /// Its sha256 when known: a host where another lab's pool holds the same image whole
    /// copies it from there instead of an upload (it crosses the connection once per host).
    pub image_sha256: Option<&'a str>,
    /// Also check the host's routes (when libvirt runs on this machine).
    pub check_routes: bool,
    /// Nodes to rebuild from the image: domain, disk and seed made anew, with a new
    /// cloud-init instance-id (its generation + 1), so cloud-init runs again.
    pub recreate: &'a [String],
    /// The lab-wide snapshot with memory the caller takes once the lab is up (`lab-up`,
    /// `before-STEP`), if any: its memory state counts in the space the pool must have free,
    /// unless every node has it already.
    pub snapshot: Option<&'a str>,
}

/// One run of `up`: what it works with, and what it created so far (undone on failure).
struct Run<'a> {
    hv: Hv<'a>,
    lab: &'a Lab,
    ctx: &'a RenderContext,
    progress: &'a dyn Progress,
    created: Mutex<Vec<Created>>,
}

/// Brings the lab up: pool, image, seeds, overlays, networks, domains, all running.
/// Returns whether anything changed.
pub fn up(
    hv: Hv,
    lab: &Lab,
    ctx: &RenderContext,
    opts: &UpOptions,
    progress: &dyn Progress,
) -> Result<bool, LifecycleError> {
    let mut inv = Inventory::read(hv, &lab.name, Some(&ctx.secrets.owner))?;
    preflight(hv, lab, ctx, &inv, opts)?;
    let diffs: Vec<_> = differences(lab, ctx, &inv)
        .into_iter()
        .filter(|d| {
            d.node()
                .is_none_or(|n| !opts.recreate.iter().any(|r| r == n))
        })
        .collect();
    if !diffs.is_empty() {
        return Err(LifecycleError::Drift {
            lab: lab.name.clone(),
            diffs,
        });
    }
    let mut ctx = ctx.clone();
    ctx.generations = generations(&inv, lab);
    for node in opts.recreate {
        interrupt::check("before rebuilding a node")?;
        remove_node(hv, lab, &inv, node, &mut ctx, progress)?;
    }
    if !opts.recreate.is_empty() {
        inv = Inventory::read(hv, &lab.name, Some(&ctx.secrets.owner))?;
    }
    let run = Run {
        hv,
        lab,
        ctx: &ctx,
        progress,
        created: Mutex::new(Vec::new()),
    };
    let converged = super::probe::overlapped(hv, lab, &inv, progress, || run.converge(&inv, opts))
        // A stop asked for during the last calls: they finished, and the run is undone all the
        // same, as the message printed at the signal says.
        .and_then(|()| Ok(interrupt::check("once the domains were started")?));
    match converged {
        Ok(()) => Ok(!run.created.lock().unwrap().is_empty()
            || started_any(&inv, lab)
            || !opts.recreate.is_empty()),
        Err(error) => {
            let error = match interrupt::check(
                "during `lab up`: run `lab up` again to go on, or `lab down` to remove the lab",
            ) {
                Err(stop) => LifecycleError::Interrupted(stop),
                Ok(()) => error,
            };
            Err(run.rollback(error))
        }
    }
}

/// Each node's generation, as its domain's owner metadata records it (derived from libvirt,
/// so a re-run renders the same seed, and `lab plan` the seed that runs).
pub fn generations(inv: &Inventory, lab: &Lab) -> std::collections::BTreeMap<String, u64> {
    inv.our_domains(&lab.name)
        .into_iter()
        .filter_map(|(_, o)| Some((o.node?, o.spec?.generation)))
        .collect()
}

/// Removes a node's domain, disk overlay and seed (for `recreate`), and moves it to its next
/// generation.
fn remove_node(
    hv: Hv,
    lab: &Lab,
    inv: &Inventory,
    node: &str,
    ctx: &mut RenderContext,
    progress: &dyn Progress,
) -> Result<(), LifecycleError> {
    let Some(n) = lab.node(node) else {
        return Err(LifecycleError::no_such_node(lab, node));
    };
    let domain = names::domain(&lab.name, &n.name);
    if inv.our_domain_names(&lab.name).contains(&domain) {
        timed(progress, "domain", &domain, Action::Removed, || {
            hv.remove_domain(&domain)
        })?;
    }
    let next = ctx.generation(&n.name) + 1;
    ctx.generations.insert(n.name.clone(), next);
    let pool = names::pool(&lab.name);
    let volumes = inv
        .pool
        .as_ref()
        .map(|p| p.volumes.clone())
        .unwrap_or_default();
    let seed = names::seed_volume(&n.name);
    for vol in [
        names::overlay_volume(&n.name),
        names::complete_marker(&seed),
        seed.clone(),
    ] {
        if volumes.contains(&vol) {
            timed(progress, "volume", &vol, Action::Removed, || {
                hv.delete_volume(&pool, &vol)
            })?;
        }
    }
    Ok(())
}

fn started_any(inv: &Inventory, lab: &Lab) -> bool {
    lab.nodes.iter().any(|n| {
        let name = names::domain(&lab.name, &n.name);
        inv.domain(&name)
            .is_none_or(|d| d.state != RunState::Running)
    }) || lab.networks.iter().any(|n| {
        let name = names::network(&lab.name, &n.name);
        inv.network(&name).is_none_or(|n| !n.state)
    })
}

fn preflight(
    hv: Hv,
    lab: &Lab,
    ctx: &RenderContext,
    inv: &Inventory,
    opts: &UpOptions,
) -> Result<(), LifecycleError> {
    let mut clashes = inv.clashes(lab);
    let pools = [
        (&inv.pool, ctx.pool_dir.clone()),
        (&inv.log_pool, xml::log_pool_dir(lab, ctx)),
    ];
    for (found, dir) in pools {
        if let Some(pool) = found
            && Path::new(&pool.path) != dir
        {
            clashes.push(Clash::Foreign {
                kind: "storage pool",
                name: pool.name.clone(),
            });
        }
    }
    if opts.check_routes {
        let table = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        clashes.extend(route_clashes(lab, &table));
    }
    let need: u64 = lab
        .nodes
        .iter()
        .filter(|n| {
            inv.domain(&names::domain(&lab.name, &n.name))
                .is_none_or(|d| matches!(d.state, RunState::ShutOff | RunState::Saved))
        })
        .map(|n| n.memory.bytes())
        .sum();
    if let Some(free) = hv.free_memory()?
        && need > free
    {
        clashes.push(Clash::Memory {
            need: ByteSize(need),
            free: ByteSize(free),
        });
    }
    if clashes.is_empty() {
        Ok(())
    } else {
        Err(LifecycleError::Clashes {
            lab: lab.name.clone(),
            clashes,
        })
    }
}

impl Run<'_> {
    fn converge(&self, inv: &Inventory, opts: &UpOptions) -> Result<(), LifecycleError> {
        let (image, sha256) = (opts.image, opts.image_sha256);
        let stop = |what: &str| interrupt::check(&format!("before {what}"));
        let pool = names::pool(&self.lab.name);
        stop("the pool")?;
        let volumes = self.pool(inv, &pool)?;
        // The pool had to exist to be asked; if this run made it, a refusal removes it.
        self.check_space(inv, &pool, &volumes, (image, opts.snapshot))?;
        let image_vol = names::image_volume(&self.lab.image.name);
        let overlays = self
            .lab
            .nodes
            .iter()
            .map(|n| names::overlay_volume(&n.name));
        let in_use = overlays.clone().any(|o| volumes.contains(&o));
        if !self.trusted(&pool, &volumes, &image_vol, in_use)? {
            stop("the image upload")?;
            self.image(&pool, &image_vol, image, sha256)?;
        }
        each_parallel(&self.lab.nodes, |node| self.disks(&pool, &volumes, node))?;
        stop("the log pool")?;
        self.log_pool(inv)?;
        for net in &self.lab.networks {
            stop("the networks")?;
            self.network(inv, net)?;
        }
        each_parallel(&self.lab.nodes, |node| {
            stop("the domains")?;
            self.domain(inv, node).map_err(LifecycleError::from)
        })
    }
}
