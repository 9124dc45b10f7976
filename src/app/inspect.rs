//! The verbs that look at a lab without changing it: `status`, `snapshot list`, `console`,
//! `logs` and `doctor`, each opening libvirt here so the CLI only prints.

use std::sync::Arc;

use super::{Target, host_dirs, is_local};
use crate::doctor::{self, Finding, Level};
use crate::libvirt::{Console, Hypervisor};
use crate::lifecycle::{self, Status};

/// `lab status`: the lab as libvirt has it now.
pub fn status(t: &Target) -> anyhow::Result<Status> {
    Ok(lifecycle::status(&t.connect()?, &t.lab)?)
}

/// `lab snapshot list`: the lab-wide snapshots, oldest first.
pub fn snapshots(t: &Target) -> anyhow::Result<Vec<String>> {
    Ok(lifecycle::list_snapshots(&t.connect()?, &t.lab)?)
}

/// `lab console NODE`: the node's domain name and its serial console, opened through libvirt.
pub fn open_console(t: &Target, node: &str) -> anyhow::Result<(String, Arc<dyn Console>)> {
    let domain = t.domain(node)?;
    let console = Arc::from(t.connect()?.console(&domain)?);
    Ok((domain, console))
}

/// `lab doctor`: every check of [`crate::doctor`] on this host and libvirt.
pub fn doctor(t: &Target) -> anyhow::Result<Vec<Finding>> {
    let (pool_dir, _) = host_dirs(&t.uri, &t.lab.name, t.pool_root.as_deref());
    let mut findings = vec![doctor::accel(), doctor::nested()];
    match t.connect() {
        Ok(hv) => {
            findings.push(doctor::libvirt(&t.uri, &Ok(())));
            findings.extend(doctor::with_libvirt(&t.lab, &hv, is_local(&t.uri)));
        }
        Err(e) => findings.push(Finding {
            check: "libvirt",
            level: Level::Fail,
            detail: format!("{e:#}"),
            fix: "start libvirtd, join the libvirt group, or pass --connect qemu:///session".into(),
        }),
    }
    if is_local(&t.uri) {
        let root = pool_dir.parent().unwrap_or(&pool_dir);
        findings.push(doctor::disk(&t.lab, root, doctor::free_space(root)));
        findings.push(doctor::traversable(&pool_dir));
    }
    findings.push(doctor::image(
        &t.lab,
        crate::cache::Cache::open()?.path_for(&t.lab.image.name),
    ));
    Ok(findings)
}
