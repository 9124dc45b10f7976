//! `lab up`: converge libvirt to the lab. Every object is looked up first and created only
//! when missing; a failed or interrupted run removes what it created, so nothing is left
//! half-made. An uploaded volume counts only with its completion marker; a call that fails
//! because the object appeared meanwhile (libvirt finishes the calls of a killed client)
//! looks again instead of failing. A lab file that differs from what runs is refused, naming
//! each difference; `recreate` rebuilds nodes from the image.

use std::fs::File;
use std::path::Path;
use std::sync::Mutex;

use super::drift::differences;
use super::inventory::{Clash, Inventory, route_clashes};
use super::{Action, Hv, LifecycleError, Progress, Work, each_parallel, timed};
use crate::interrupt::{self, StopReader};
use crate::libvirt::{LibvirtError, RunState};
use crate::model::units::ByteSize;
use crate::model::{Lab, Node};
use crate::names;
use crate::render::{self, RenderContext, libvirt as xml};

pub struct UpOptions<'a> {
    /// The image file on this machine (from the image cache), uploaded once into the pool.
    pub image: &'a Path,
    /// Also check the host's routes (when libvirt runs on this machine).
    pub check_routes: bool,
    /// Nodes to rebuild from the image: domain, disk and seed made anew, with a new
    /// cloud-init instance-id (its generation + 1), so cloud-init runs again.
    pub recreate: &'a [String],
}

/// An object this run created, to undo on failure.
#[derive(Debug, Clone)]
enum Created {
    Pool(String),
    Volume(String, String),
    Network(String),
    Domain(String),
}

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
    let converged =
        super::probe::overlapped(hv, lab, &inv, progress, || run.converge(&inv, opts.image));
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
        return Err(LifecycleError::NoSuchNode {
            lab: lab.name.clone(),
            node: node.to_string(),
            known: lab
                .nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
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
    if let Some(pool) = &inv.pool
        && Path::new(&pool.path) != ctx.pool_dir
    {
        clashes.push(Clash::Foreign {
            kind: "storage pool",
            name: pool.name.clone(),
        });
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
                .is_none_or(|d| d.state == RunState::ShutOff)
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
    fn record(&self, c: Created) {
        self.created.lock().unwrap().push(c);
    }

    fn converge(&self, inv: &Inventory, image: &Path) -> Result<(), LifecycleError> {
        let stop = |what: &str| interrupt::check(&format!("before {what}"));
        let pool = names::pool(&self.lab.name);
        stop("the pool")?;
        let volumes = self.pool(inv, &pool)?;
        let image_vol = names::image_volume(&self.lab.image.name);
        let overlays = self
            .lab
            .nodes
            .iter()
            .map(|n| names::overlay_volume(&n.name));
        let in_use = overlays.clone().any(|o| volumes.contains(&o));
        if !self.trusted(&pool, &volumes, &image_vol, in_use)? {
            stop("the image upload")?;
            self.upload_file(&pool, &image_vol, image)?;
        }
        each_parallel(&self.lab.nodes, |node| self.disks(&pool, &volumes, node))?;
        for net in &self.lab.networks {
            stop("the networks")?;
            self.network(inv, net)?;
        }
        each_parallel(&self.lab.nodes, |node| {
            stop("the domains")?;
            self.domain(inv, node).map_err(LifecycleError::from)
        })
    }

    /// Whether an uploaded volume is there whole. A volume without its completion marker is
    /// half-made (a run was stopped mid-upload): it is deleted here, to be made again. One
    /// that a node's disk already builds on (`in_use`) was made before markers existed: it
    /// is trusted and gets its marker.
    fn trusted(
        &self,
        pool: &str,
        volumes: &[String],
        volume: &str,
        in_use: bool,
    ) -> Result<bool, LifecycleError> {
        let marker = names::complete_marker(volume);
        let (has_volume, has_marker) = (
            volumes.iter().any(|v| v == volume),
            volumes.contains(&marker),
        );
        match (has_volume, has_marker) {
            (true, true) => Ok(true),
            (true, false) if in_use => {
                self.create_fresh(pool, &marker, &xml::raw_volume_xml(&marker, 0))?;
                Ok(true)
            }
            (true, false) => {
                timed(self.progress, "volume", volume, Action::Removed, || {
                    self.hv.delete_volume(pool, volume)
                })?;
                Ok(false)
            }
            (false, true) => {
                self.hv.delete_volume(pool, &marker)?;
                Ok(false)
            }
            (false, false) => Ok(false),
        }
    }

    /// Creates a volume; one that appeared meanwhile (a stopped run's late call) is replaced.
    fn create_fresh(&self, pool: &str, volume: &str, xml: &str) -> Result<(), LibvirtError> {
        match self.hv.create_volume(pool, xml) {
            Ok(_) => Ok(()),
            Err(e) => {
                let now = self.hv.pool(pool)?.map(|p| p.volumes).unwrap_or_default();
                if !now.iter().any(|v| v == volume) {
                    return Err(e);
                }
                self.hv.delete_volume(pool, volume)?;
                self.hv.create_volume(pool, xml).map(drop)
            }
        }
    }

    /// Creates or starts the lab's pool; returns the volumes it holds.
    fn pool(&self, inv: &Inventory, pool: &str) -> Result<Vec<String>, LifecycleError> {
        let p = self.progress;
        match &inv.pool {
            Some(found) if found.active => return Ok(found.volumes.clone()),
            Some(_) => timed(p, "pool", pool, Action::Started, || {
                self.hv.start_pool(pool)
            })?,
            None => {
                let xml = xml::pool_xml(self.lab, self.ctx);
                let made = timed(p, "pool", pool, Action::Created, || {
                    self.hv.create_pool(&xml)
                });
                match (made, self.hv.pool(pool)?) {
                    (Ok(()), _) => self.record(Created::Pool(pool.to_string())),
                    // A stopped run's define finished after we looked: use it.
                    (Err(_), Some(found)) if found.path == self.ctx.pool_dir.to_string_lossy() => {
                        if !found.active {
                            self.hv.start_pool(pool)?;
                        }
                    }
                    (Err(e), _) => return Err(e.into()),
                }
            }
        }
        Ok(self.hv.pool(pool)?.map(|f| f.volumes).unwrap_or_default())
    }

    fn upload_file(&self, pool: &str, volume: &str, path: &Path) -> Result<(), LifecycleError> {
        let image_err = |source| LifecycleError::Image {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(image_err)?;
        let len = file.metadata().map_err(image_err)?.len();
        self.upload(pool, volume, &mut file, len)
    }

    fn upload(
        &self,
        pool: &str,
        volume: &str,
        data: &mut dyn std::io::Read,
        len: u64,
    ) -> Result<(), LifecycleError> {
        let vol_xml = xml::raw_volume_xml(volume, len);
        let marker = names::complete_marker(volume);
        timed(self.progress, "volume", volume, Action::Created, || {
            self.create_fresh(pool, volume, &vol_xml)?;
            self.record(Created::Volume(pool.to_string(), volume.to_string()));
            let p = self.progress;
            let stoppable = StopReader { inner: data };
            let mut counted = crate::progress::Counting::new(stoppable, len, "volume", volume, p);
            self.hv.upload_volume(pool, volume, &mut counted, len)?;
            self.create_fresh(pool, &marker, &xml::raw_volume_xml(&marker, 0))?;
            self.record(Created::Volume(pool.to_string(), marker.clone()));
            Ok(())
        })?;
        Ok(())
    }

    /// The node's seed ISO and its disk overlay.
    fn disks(&self, pool: &str, volumes: &[String], node: &Node) -> Result<(), LifecycleError> {
        let seed = names::seed_volume(&node.name);
        let overlay = names::overlay_volume(&node.name);
        if !self.trusted(pool, volumes, &seed, volumes.contains(&overlay))? {
            interrupt::check("before the seeds")?;
            let iso = render::iso::seed_iso(&render::cloudinit::seed(self.lab, node, self.ctx))?;
            self.upload(pool, &seed, &mut iso.as_slice(), iso.len() as u64)?;
        }
        if !volumes.contains(&overlay) {
            interrupt::check("before the disks")?;
            let vol_xml = xml::overlay_volume_xml(self.lab, node, self.ctx);
            let made = timed(self.progress, "volume", &overlay, Action::Created, || {
                self.hv.create_volume(pool, &vol_xml)
            });
            match made {
                Ok(_) => self.record(Created::Volume(pool.to_string(), overlay)),
                // A stopped run's create finished after we looked: the overlay is whole.
                Err(_) if self.volume_exists(pool, &overlay)? => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn volume_exists(&self, pool: &str, volume: &str) -> Result<bool, LibvirtError> {
        let now = self.hv.pool(pool)?.map(|p| p.volumes).unwrap_or_default();
        Ok(now.iter().any(|v| v == volume))
    }

    /// The lab's object of `name` as libvirt has it now, if ours (to look again after a call
    /// failed because a stopped run's late call made it meanwhile).
    fn ours_now(&self, name: &str) -> Result<Option<crate::libvirt::RunState>, LibvirtError> {
        let inv = Inventory::read(self.hv, &self.lab.name, Some(&self.ctx.secrets.owner))?;
        if let Some((d, _)) = inv
            .our_domains(&self.lab.name)
            .into_iter()
            .find(|(d, _)| d.name == name)
        {
            return Ok(Some(d.state));
        }
        let net = inv
            .our_networks(&self.lab.name)
            .into_iter()
            .find(|(n, _)| n.name == name);
        Ok(net.map(|(n, _)| {
            if n.state {
                RunState::Running
            } else {
                RunState::ShutOff
            }
        }))
    }

    fn network(&self, inv: &Inventory, net: &crate::model::Network) -> Result<(), LibvirtError> {
        let name = names::network(&self.lab.name, &net.name);
        let p = self.progress;
        match inv.network(&name) {
            Some(found) if found.state => {
                p.event(Work::now("network", &name, Action::Unchanged).into());
                return Ok(());
            }
            Some(_) => {}
            None => {
                let xml = xml::network_xml(self.lab, net, self.ctx);
                let made = timed(p, "network", &name, Action::Created, || {
                    self.hv.define_network(&xml)
                });
                match (made, self.ours_now(&name)?) {
                    (Ok(()), _) => self.record(Created::Network(name.clone())),
                    (Err(_), Some(RunState::Running)) => return Ok(()),
                    (Err(_), Some(_)) => {}
                    (Err(e), None) => return Err(e),
                }
            }
        }
        let started = timed(p, "network", &name, Action::Started, || {
            self.hv.start_network(&name)
        });
        match (started, || self.ours_now(&name)) {
            (Ok(()), _) => Ok(()),
            (Err(e), look) => match look()? {
                Some(RunState::Running) => Ok(()),
                _ => Err(e),
            },
        }
    }

    fn domain(&self, inv: &Inventory, node: &Node) -> Result<(), LibvirtError> {
        let name = names::domain(&self.lab.name, &node.name);
        let p = self.progress;
        let mut state = inv.domain(&name).map(|d| d.state);
        if state.is_none() {
            let xml = xml::domain_xml(self.lab, node, self.ctx);
            let made = timed(p, "domain", &name, Action::Created, || {
                self.hv.define_domain(&xml)
            });
            match made {
                Ok(()) => self.record(Created::Domain(name.clone())),
                Err(e) => {
                    // "already exists": a stopped run's define finished after we looked.
                    state = Some(self.ours_now(&name)?.ok_or(e)?);
                }
            }
        }
        let start = || {
            let started = self.hv.start_domain(&name);
            match started {
                Err(e) if self.ours_now(&name)? != Some(RunState::Running) => Err(e),
                _ => Ok(()),
            }
        };
        match state {
            Some(RunState::Running) => {
                p.event(Work::now("domain", &name, Action::Unchanged).into());
                Ok(())
            }
            Some(RunState::Paused) => timed(p, "domain", &name, Action::Resumed, || {
                self.hv.resume_domain(&name)
            }),
            _ => timed(p, "domain", &name, Action::Started, start),
        }
    }

    /// Undoes what this run created, newest first; reports what could not be undone.
    fn rollback(&self, error: LifecycleError) -> LifecycleError {
        let created = std::mem::take(&mut *self.created.lock().unwrap());
        if created.is_empty() {
            return error;
        }
        let mut undone = Vec::new();
        for c in created.iter().rev() {
            let (what, result) = match c {
                Created::Domain(n) => (format!("domain {n}"), self.hv.remove_domain(n)),
                Created::Network(n) => (format!("network {n}"), self.hv.remove_network(n)),
                Created::Volume(p, v) => (format!("volume {p}/{v}"), self.hv.delete_volume(p, v)),
                Created::Pool(n) => (format!("pool {n}"), self.hv.remove_pool(n)),
            };
            match result {
                Ok(()) => undone.push(what),
                Err(e) => undone.push(format!("{what} NOT removed ({e})")),
            }
        }
        LifecycleError::RolledBack {
            error: Box::new(error),
            rolled_back: undone.join(", "),
        }
    }
}
