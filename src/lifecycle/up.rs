//! `lab up`: converge libvirt to the lab. Every object is looked up first and created only
//! when missing; a failed run removes what it created, so nothing is left half-made.

use std::fs::File;
use std::path::Path;
use std::sync::Mutex;

use super::inventory::{Clash, Inventory, route_clashes};
use super::{Action, Hv, LifecycleError, Progress, each_parallel, timed};
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
    let inv = Inventory::read(hv, &lab.name)?;
    preflight(hv, lab, ctx, &inv, opts)?;
    let run = Run {
        hv,
        lab,
        ctx,
        progress,
        created: Mutex::new(Vec::new()),
    };
    match super::probe::overlapped(hv, lab, &inv, progress, || run.converge(&inv, opts.image)) {
        Ok(()) => Ok(!run.created.lock().unwrap().is_empty() || started_any(&inv, lab)),
        Err(error) => Err(run.rollback(error)),
    }
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
        let pool = names::pool(&self.lab.name);
        let volumes = self.pool(inv, &pool)?;
        let image_vol = names::image_volume(&self.lab.image.name);
        if !volumes.contains(&image_vol) {
            self.upload_file(&pool, &image_vol, image)?;
        }
        each_parallel(&self.lab.nodes, |node| self.disks(&pool, &volumes, node))?;
        for net in &self.lab.networks {
            self.network(inv, net)?;
        }
        each_parallel(&self.lab.nodes, |node| {
            self.domain(inv, node).map_err(LifecycleError::from)
        })
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
                timed(p, "pool", pool, Action::Created, || {
                    self.hv.create_pool(&xml)
                })?;
                self.record(Created::Pool(pool.to_string()));
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
        timed(self.progress, "volume", volume, Action::Created, || {
            self.hv.create_volume(pool, &vol_xml)?;
            self.record(Created::Volume(pool.to_string(), volume.to_string()));
            let p = self.progress;
            let mut counted = crate::progress::Counting::new(data, len, "volume", volume, p);
            self.hv.upload_volume(pool, volume, &mut counted, len)
        })?;
        Ok(())
    }

    /// The node's seed ISO and its disk overlay.
    fn disks(&self, pool: &str, volumes: &[String], node: &Node) -> Result<(), LifecycleError> {
        let seed = names::seed_volume(&node.name);
        if !volumes.contains(&seed) {
            let iso = render::iso::seed_iso(&render::cloudinit::seed(self.lab, node, self.ctx))?;
            self.upload(pool, &seed, &mut iso.as_slice(), iso.len() as u64)?;
        }
        let overlay = names::overlay_volume(&node.name);
        if !volumes.contains(&overlay) {
            let vol_xml = xml::overlay_volume_xml(self.lab, node, self.ctx);
            timed(self.progress, "volume", &overlay, Action::Created, || {
                self.hv.create_volume(pool, &vol_xml)
            })?;
            self.record(Created::Volume(pool.to_string(), overlay));
        }
        Ok(())
    }

    fn network(&self, inv: &Inventory, net: &crate::model::Network) -> Result<(), LibvirtError> {
        let name = names::network(&self.lab.name, &net.name);
        let p = self.progress;
        match inv.network(&name) {
            Some(found) if found.state => {
                p.event(super::Event {
                    kind: "network",
                    name,
                    action: Action::Unchanged,
                    elapsed: Default::default(),
                });
                return Ok(());
            }
            Some(_) => {}
            None => {
                let xml = xml::network_xml(self.lab, net);
                timed(p, "network", &name, Action::Created, || {
                    self.hv.define_network(&xml)
                })?;
                self.record(Created::Network(name.clone()));
            }
        }
        timed(p, "network", &name, Action::Started, || {
            self.hv.start_network(&name)
        })
    }

    fn domain(&self, inv: &Inventory, node: &Node) -> Result<(), LibvirtError> {
        let name = names::domain(&self.lab.name, &node.name);
        let p = self.progress;
        let state = inv.domain(&name).map(|d| d.state);
        if state.is_none() {
            let xml = xml::domain_xml(self.lab, node, self.ctx);
            timed(p, "domain", &name, Action::Created, || {
                self.hv.define_domain(&xml)
            })?;
            self.record(Created::Domain(name.clone()));
        }
        match state {
            Some(RunState::Running) => {
                p.event(super::Event {
                    kind: "domain",
                    name,
                    action: Action::Unchanged,
                    elapsed: Default::default(),
                });
                Ok(())
            }
            Some(RunState::Paused) => timed(p, "domain", &name, Action::Resumed, || {
                self.hv.resume_domain(&name)
            }),
            _ => timed(p, "domain", &name, Action::Started, || {
                self.hv.start_domain(&name)
            }),
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
