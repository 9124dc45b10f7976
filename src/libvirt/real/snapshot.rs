//! Snapshots of a domain: list (oldest first), create, revert, delete.

use virt::domain::Domain;
use virt::sys;

use super::{Libvirt, call, domain};
use crate::libvirt::Result;

fn lookup(
    lv: &Libvirt,
    domain: &str,
    name: &str,
    action: &'static str,
) -> Result<virt::domain_snapshot::DomainSnapshot> {
    let d = domain::lookup(lv, domain, action)?;
    Domain::lookup_snapshot_by_name(&d, name, 0)
        .map_err(call(action, &format!("{domain} snapshot {name}")))
}

/// `<creationTime>` of a snapshot's XML, for ordering.
fn creation_time(xml: &str) -> u64 {
    xml.split_once("<creationTime>")
        .and_then(|(_, rest)| rest.split_once('<'))
        .and_then(|(t, _)| t.trim().parse().ok())
        .unwrap_or(0)
}

pub(super) fn list(lv: &Libvirt, domain: &str) -> Result<Vec<String>> {
    let d = domain::lookup(lv, domain, "find domain")?;
    let all = d
        .list_all_snapshots(0)
        .map_err(call("list the snapshots of", domain))?;
    let mut named = all
        .iter()
        .map(|s| {
            let name = s.name().map_err(call("read a snapshot name of", domain))?;
            let xml = s.xml_desc(0).map_err(call("read a snapshot of", domain))?;
            Ok((creation_time(&xml), name))
        })
        .collect::<Result<Vec<_>>>()?;
    named.sort();
    Ok(named.into_iter().map(|(_, n)| n).collect())
}

pub(super) fn create(lv: &Libvirt, domain: &str, xml: &str) -> Result<()> {
    let d = domain::lookup(lv, domain, "find domain")?;
    d.create_snapshot_xml(xml, 0)
        .map(drop)
        .map_err(call("snapshot domain", domain))
}

pub(super) fn revert(lv: &Libvirt, domain: &str, snapshot: &str) -> Result<()> {
    let s = lookup(lv, domain, snapshot, "find snapshot")?;
    s.revert(sys::VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING)
        .map_err(call("revert", &format!("{domain} to snapshot {snapshot}")))
}

pub(super) fn delete(lv: &Libvirt, domain: &str, snapshot: &str) -> Result<()> {
    let s = lookup(lv, domain, snapshot, "find snapshot")?;
    s.delete(0)
        .map_err(call("delete snapshot", &format!("{domain} {snapshot}")))
}
