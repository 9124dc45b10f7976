//! `lab down`: removes every libvirt object the lab owns, found through libvirt's metadata
//! (so it works without the state directory), and never touches anything else.

use super::inventory::Inventory;
use super::{Action, Hv, LifecycleError, Progress, each_parallel, timed};

/// Removes the lab's domains (with snapshot metadata), networks, and its pool with every
/// volume in it; the objects of each kind in parallel. Returns how many objects were removed. With `owner` (the state's identity),
/// objects of the lab's name that another state directory made are left alone; without
/// (the state directory is gone), every object whose metadata names the lab goes.
pub fn down(
    hv: Hv,
    lab: &str,
    owner: Option<&str>,
    pool_dir: Option<&std::path::Path>,
    progress: &dyn Progress,
) -> Result<usize, LifecycleError> {
    let inv = Inventory::read(hv, lab, owner)?;
    let domains: Vec<String> = inv
        .our_domains(lab)
        .into_iter()
        .map(|(d, _)| d.name.clone())
        .collect();
    each_parallel(&domains, |name| {
        timed(progress, "domain", name, Action::Removed, || {
            hv.remove_domain(name)
        })
        .map_err(LifecycleError::from)
    })?;
    let networks: Vec<String> = inv
        .our_networks(lab)
        .into_iter()
        .map(|(n, _)| n.name.clone())
        .collect();
    each_parallel(&networks, |name| {
        timed(progress, "network", name, Action::Removed, || {
            hv.remove_network(name)
        })
        .map_err(LifecycleError::from)
    })?;
    let mut removed = domains.len() + networks.len();
    // The pool has no metadata: while another state's objects of this lab exist, their
    // disks are in it, so it stays.
    let rest = Inventory::read(hv, lab, None)?;
    let shared = !rest.our_domains(lab).is_empty() || !rest.our_networks(lab).is_empty();
    if let Some(pool) = inv.pool.as_ref().filter(|_| !shared) {
        // A pool of this name elsewhere than where the lab puts it is not the lab's.
        if pool_dir.is_none_or(|d| d == std::path::Path::new(&pool.path)) {
            if !pool.active {
                hv.start_pool(&pool.name)?;
            }
            let pool_now = hv.pool(&pool.name)?.map(|p| p.volumes).unwrap_or_default();
            each_parallel(&pool_now, |vol| {
                timed(progress, "volume", vol, Action::Removed, || {
                    hv.delete_volume(&pool.name, vol)
                })
                .map_err(LifecycleError::from)
            })?;
            removed += pool_now.len();
            timed(progress, "pool", &pool.name, Action::Removed, || {
                hv.remove_pool(&pool.name)
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}
