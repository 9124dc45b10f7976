//! `lab down`: removes every libvirt object the lab owns, found through libvirt's metadata
//! (so it works without the state directory), and never touches anything else.

use super::inventory::Inventory;
use super::{Action, Hv, LifecycleError, Progress, each_parallel, timed};
use crate::names;

/// Removes the lab's domains (with snapshot metadata), networks, and its pools (disks, then
/// logs) with every volume in them; the objects of each kind in parallel. `pool_dir` and
/// `log_dir` (the hypervisor's log directory) say where the lab's pools are: a pool of
/// their name elsewhere is left alone. Returns how many objects were removed. With `owner` (the state's identity),
/// objects of the lab's name that another state directory made are left alone; without
/// (the state directory is gone), every object whose metadata names the lab goes.
pub fn down(
    hv: Hv,
    lab: &str,
    owner: Option<&str>,
    pool_dir: Option<&std::path::Path>,
    log_dir: Option<&std::path::Path>,
    progress: &dyn Progress,
) -> Result<usize, LifecycleError> {
    let inv = Inventory::read(hv, lab, owner)?;
    let domains: Vec<String> = inv
        .our_domains(lab)
        .into_iter()
        .map(|(d, _)| d.name.clone())
        .collect();
    remove_all(progress, "domain", &domains, |d| hv.remove_domain(d))?;
    let networks: Vec<String> = inv
        .our_networks(lab)
        .into_iter()
        .map(|(n, _)| n.name.clone())
        .collect();
    remove_all(progress, "network", &networks, |n| hv.remove_network(n))?;
    let mut removed = domains.len() + networks.len();
    // The pools have no metadata: while another state's objects of this lab exist, their
    // disks and logs are in them, so they stay.
    let rest = Inventory::read(hv, lab, None)?;
    let shared = !rest.our_domains(lab).is_empty() || !rest.our_networks(lab).is_empty();
    if shared {
        return Ok(removed);
    }
    for pool in [&inv.pool, &inv.log_pool].into_iter().flatten() {
        // A pool of this name elsewhere than where the lab puts it is not the lab's.
        let dir = if pool.name == names::log_pool(lab) {
            log_dir.map(|d| d.join(&pool.name))
        } else {
            pool_dir.map(std::path::Path::to_path_buf)
        };
        if dir.is_none_or(|d| d == std::path::Path::new(&pool.path)) {
            removed += remove_pool(hv, &pool.name, !pool.active, progress)?;
        }
    }
    Ok(removed)
}

/// Removes a pool with every volume in it (started first when `inactive`, to list them);
/// returns how many objects went.
pub(super) fn remove_pool(
    hv: Hv,
    pool: &str,
    inactive: bool,
    progress: &dyn Progress,
) -> Result<usize, LifecycleError> {
    if inactive {
        hv.start_pool(pool)?;
    }
    let volumes = hv.pool(pool)?.map(|p| p.volumes).unwrap_or_default();
    remove_all(progress, "volume", &volumes, |v| hv.delete_volume(pool, v))?;
    timed(progress, "pool", pool, Action::Removed, || {
        hv.remove_pool(pool)
    })?;
    Ok(volumes.len() + 1)
}

/// Removes every object of `names` (of `kind`) with `remove`, in parallel, each reported.
fn remove_all(
    progress: &dyn Progress,
    kind: &'static str,
    names: &[String],
    remove: impl Fn(&str) -> Result<(), crate::libvirt::LibvirtError> + Sync,
) -> Result<(), LifecycleError> {
    each_parallel(names, |name| {
        timed(progress, kind, name, Action::Removed, || remove(name)).map_err(LifecycleError::from)
    })
}
