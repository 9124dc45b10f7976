//! The lab's storage: the pool, uploads (the image read through a [`Counting`] reader, seeds)
//! trusted only with their completion marker, and the disk overlays.

use std::fs::File;
use std::path::Path;

use super::Run;
use super::rollback::Created;
use crate::interrupt::{self, StopReader};
use crate::libvirt::{LibvirtError, PoolFound};
use crate::lifecycle::inventory::Inventory;
use crate::lifecycle::{Action, LifecycleError, timed};
use crate::model::Node;
use crate::names;
use crate::progress::Counting;
use crate::render::{self, libvirt as xml};

impl Run<'_> {
    /// Whether an uploaded volume is there whole. A volume without its completion marker is
    /// half-made (a run was stopped mid-upload): it is deleted here, to be made again. One
    /// that a node's disk already builds on (`in_use`) was made before markers existed: it
    /// is trusted and gets its marker.
    pub(super) fn trusted(
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
                self.create_fresh(pool, &marker, &xml::raw_volume_xml(&marker, 0))
                    .map_err(|e| self.ran_out(pool, volume, 0, e))?;
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
                if !self.volume_exists(pool, volume)? {
                    return Err(e);
                }
                self.hv.delete_volume(pool, volume)?;
                self.hv.create_volume(pool, xml).map(drop)
            }
        }
    }

    /// Creates or starts the lab's pool; returns the volumes it holds.
    pub(super) fn pool(&self, inv: &Inventory, pool: &str) -> Result<Vec<String>, LifecycleError> {
        let xml = xml::pool_xml(self.lab, self.ctx);
        self.dir_pool(inv.pool.as_ref(), pool, &xml, &self.ctx.pool_dir)
    }

    /// Creates or starts the lab's log pool, so its directory is there before any domain
    /// starts (libvirt's log daemon writes the serial logs in it).
    pub(super) fn log_pool(&self, inv: &Inventory) -> Result<(), LifecycleError> {
        let name = names::log_pool(&self.lab.name);
        let xml = xml::log_pool_xml(self.lab, self.ctx);
        let dir = xml::log_pool_dir(self.lab, self.ctx);
        self.dir_pool(inv.log_pool.as_ref(), &name, &xml, &dir)
            .map(drop)
    }

    /// Creates (from `xml`) or starts the dir pool `pool`; returns the volumes it holds.
    fn dir_pool(
        &self,
        found: Option<&PoolFound>,
        pool: &str,
        xml: &str,
        dir: &Path,
    ) -> Result<Vec<String>, LifecycleError> {
        let p = self.progress;
        match found {
            Some(found) if found.active => return Ok(found.volumes.clone()),
            Some(_) => timed(p, "pool", pool, Action::Started, || {
                self.hv.start_pool(pool)
            })?,
            None => {
                let made = timed(p, "pool", pool, Action::Created, || {
                    self.hv.create_pool(xml)
                });
                match (made, self.hv.pool(pool)?) {
                    (Ok(()), _) => self.record(Created::Pool(pool.to_string())),
                    // A stopped run's define finished after we looked: use it.
                    (Err(_), Some(found)) if found.path == dir.to_string_lossy() => {
                        if !found.active {
                            self.hv.start_pool(pool)?;
                        }
                    }
                    (Err(e), _) => return Err(e.into()),
                }
            }
        }
        Ok(self.volumes_now(pool)?)
    }

    /// Puts the image into the lab's pool: copied on the host from another pool holding it
    /// whole with the same sha256, else uploaded; then its sha256 marker tells the next lab.
    pub(super) fn image(
        &self,
        pool: &str,
        volume: &str,
        path: &Path,
        sha256: Option<&str>,
    ) -> Result<(), LifecycleError> {
        let source = match sha256 {
            Some(sum) => self.image_elsewhere(pool, volume, sum)?,
            None => None,
        };
        match source {
            Some(from) => self.copy_image(pool, volume, &from)?,
            None => self.upload_file(pool, volume, path)?,
        }
        if let Some(sum) = sha256 {
            let marker = names::sha256_marker(volume, sum);
            self.create_fresh(pool, &marker, &xml::raw_volume_xml(&marker, 0))
                .map_err(|e| self.ran_out(pool, volume, 0, e))?;
            self.record(Created::Volume(pool.to_string(), marker));
        }
        Ok(())
    }

    /// Another active pool of the host holding `volume` whole with the sha256 `sum`.
    fn image_elsewhere(
        &self,
        pool: &str,
        volume: &str,
        sum: &str,
    ) -> Result<Option<String>, LibvirtError> {
        let needed = [
            volume.to_string(),
            names::complete_marker(volume),
            names::sha256_marker(volume, sum),
        ];
        for other in self.hv.pools()? {
            if other == pool {
                continue;
            }
            let holds = |p: &PoolFound| needed.iter().all(|v| p.volumes.contains(v));
            // A pool another run uploads into is busy (libvirt refuses to refresh it while
            // the upload lasts): not a source now, whatever it holds.
            let Ok(found) = self.hv.pool(&other) else {
                continue;
            };
            if found.is_some_and(|p| holds(&p)) {
                return Ok(Some(other));
            }
        }
        Ok(None)
    }

    /// Copies the image from pool `from` on the host, then marks it whole.
    fn copy_image(&self, pool: &str, volume: &str, from: &str) -> Result<(), LifecycleError> {
        let marker = names::complete_marker(volume);
        timed(self.progress, "volume", volume, Action::Copied, || {
            self.hv
                .copy_volume(pool, &xml::image_copy_xml(volume), (from, volume))?;
            self.record(Created::Volume(pool.to_string(), volume.to_string()));
            self.create_fresh(pool, &marker, &xml::raw_volume_xml(&marker, 0))?;
            self.record(Created::Volume(pool.to_string(), marker.clone()));
            Ok::<(), LibvirtError>(())
        })
        .map_err(|e| self.ran_out(pool, volume, 0, e))
    }

    pub(super) fn upload_file(
        &self,
        pool: &str,
        volume: &str,
        path: &Path,
    ) -> Result<(), LifecycleError> {
        let image_err = |error| LifecycleError::Image {
            path: path.to_path_buf(),
            error,
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
            let mut counted = Counting::new(stoppable, len, "volume", volume, p);
            self.hv.upload_volume(pool, volume, &mut counted, len)?;
            self.create_fresh(pool, &marker, &xml::raw_volume_xml(&marker, 0))?;
            self.record(Created::Volume(pool.to_string(), marker.clone()));
            Ok(())
        })
        .map_err(|e| self.ran_out(pool, volume, len, e))
    }

    /// The node's seed ISO and its disk overlay.
    pub(super) fn disks(
        &self,
        pool: &str,
        volumes: &[String],
        node: &Node,
    ) -> Result<(), LifecycleError> {
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
                Err(e) => return Err(self.ran_out(pool, &overlay, 0, e)),
            }
        }
        Ok(())
    }

    /// The volumes `pool` holds now (none when it is gone).
    fn volumes_now(&self, pool: &str) -> Result<Vec<String>, LibvirtError> {
        Ok(self.hv.pool(pool)?.map(|p| p.volumes).unwrap_or_default())
    }

    fn volume_exists(&self, pool: &str, volume: &str) -> Result<bool, LibvirtError> {
        Ok(self.volumes_now(pool)?.iter().any(|v| v == volume))
    }
}
