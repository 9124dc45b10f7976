//! Networks: list, define, start, remove.

use super::{Libvirt, call};
use crate::libvirt::{Found, Result};

pub(super) fn list(lv: &Libvirt) -> Result<Vec<Found<bool>>> {
    let all = lv
        .conn
        .list_all_networks(0)
        .map_err(call("list networks on", &lv.uri))?;
    let read = |n: &virt::network::Network| {
        let name = n.name().map_err(call("read a network name on", &lv.uri))?;
        let state = n
            .is_active()
            .map_err(call("read the state of network", &name))?;
        let xml = n
            .xml_desc(0)
            .map_err(call("read the XML of network", &name))?;
        Ok(Found { name, state, xml })
    };
    // A network another client removed since the listing (another lab's `down`) is gone.
    all.iter()
        .map(read)
        .filter(|r| !super::gone(r, virt::sys::VIR_ERR_NO_NETWORK))
        .collect()
}

pub(super) fn define(lv: &Libvirt, xml: &str) -> Result<()> {
    lv.conn
        .define_network_xml(xml)
        .map(drop)
        .map_err(call("define network", &lv.uri))
}

pub(super) fn start(lv: &Libvirt, name: &str) -> Result<()> {
    let n = lv
        .conn
        .lookup_network_by_name(name)
        .map_err(call("find network", name))?;
    n.create().map_err(call("start network", name))
}

pub(super) fn remove(lv: &Libvirt, name: &str) -> Result<()> {
    let n = lv
        .conn
        .lookup_network_by_name(name)
        .map_err(call("find network", name))?;
    if n.is_active()
        .map_err(call("read the state of network", name))?
    {
        n.destroy().map_err(call("stop network", name))?;
    }
    n.undefine().map_err(call("undefine network", name))
}
