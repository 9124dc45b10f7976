//! Domains: list, define, start, pause, resume, save, shut down, remove, and the guest clock.

use virt::domain::{Domain, DomainState};
use virt::sys;

use super::{Libvirt, call};
use crate::libvirt::{Found, Result, RunState};

pub(super) fn lookup(lv: &Libvirt, name: &str, action: &'static str) -> Result<Domain> {
    lv.conn
        .lookup_domain_by_name(name)
        .map_err(call(action, name))
}

fn run_state(d: &Domain, name: &str) -> Result<RunState> {
    let (state, _) = d.state().map_err(call("read the state of domain", name))?;
    Ok(match state {
        virt::enumutil::Enum::Known(DomainState::Running | DomainState::Blocked) => {
            RunState::Running
        }
        virt::enumutil::Enum::Known(DomainState::Paused) => RunState::Paused,
        virt::enumutil::Enum::Known(DomainState::Shutoff) => {
            let saved = d
                .has_managed_save(0)
                .map_err(call("read the managed save of domain", name))?;
            if saved {
                RunState::Saved
            } else {
                RunState::ShutOff
            }
        }
        _ => RunState::Other,
    })
}

pub(super) fn list(lv: &Libvirt) -> Result<Vec<Found<RunState>>> {
    let all = lv
        .conn
        .list_all_domains(0)
        .map_err(call("list domains on", &lv.uri))?;
    let read = |d: &Domain| {
        let name = d.name().map_err(call("read a domain name on", &lv.uri))?;
        let state = run_state(d, &name)?;
        let xml = d
            .xml_desc(0)
            .map_err(call("read the XML of domain", &name))?;
        Ok(Found { name, state, xml })
    };
    // A domain another client removed since the listing (another lab's `down`) is gone.
    all.iter()
        .map(read)
        .filter(|r| !super::gone(r, sys::VIR_ERR_NO_DOMAIN))
        .collect()
}

pub(super) fn define(lv: &Libvirt, xml: &str) -> Result<()> {
    lv.conn
        .define_domain_xml(xml)
        .map(drop)
        .map_err(call("define domain", &lv.uri))
}

pub(super) fn start(lv: &Libvirt, name: &str) -> Result<()> {
    lookup(lv, name, "find domain")?
        .create()
        .map(drop)
        .map_err(call("start domain", name))
}

pub(super) fn suspend(lv: &Libvirt, name: &str) -> Result<()> {
    lookup(lv, name, "find domain")?
        .suspend()
        .map(drop)
        .map_err(call("pause domain", name))
}

pub(super) fn resume(lv: &Libvirt, name: &str) -> Result<()> {
    lookup(lv, name, "find domain")?
        .resume()
        .map(drop)
        .map_err(call("resume domain", name))
}

pub(super) fn managed_save(lv: &Libvirt, name: &str) -> Result<()> {
    lookup(lv, name, "find domain")?
        .managed_save(0)
        .map_err(call("save the memory of domain", name))
}

pub(super) fn remove_managed_save(lv: &Libvirt, name: &str) -> Result<()> {
    let d = lookup(lv, name, "find domain")?;
    if d.has_managed_save(0)
        .map_err(call("read the managed save of domain", name))?
    {
        d.managed_save_remove(0)
            .map_err(call("remove the managed save of domain", name))?;
    }
    Ok(())
}

pub(super) fn shutdown(lv: &Libvirt, name: &str) -> Result<()> {
    let flags = sys::VIR_DOMAIN_SHUTDOWN_GUEST_AGENT | sys::VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN;
    let d = lookup(lv, name, "find domain")?;
    // Without an agent connected (the test driver, a guest still booting) ACPI alone.
    d.shutdown_flags(flags)
        .or_else(|_| d.shutdown_flags(sys::VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN))
        .or_else(|_| d.shutdown())
        .map_err(call("shut down domain", name))
}

pub(super) fn destroy(lv: &Libvirt, name: &str) -> Result<()> {
    lookup(lv, name, "find domain")?
        .destroy()
        .map_err(call("power off domain", name))
}

pub(super) fn remove(lv: &Libvirt, name: &str) -> Result<()> {
    let d = lookup(lv, name, "find domain")?;
    if d.is_active()
        .map_err(call("read the state of domain", name))?
    {
        d.destroy().map_err(call("stop domain", name))?;
    }
    // Lab domains boot BIOS (no NVRAM): internal snapshots with memory need it.
    let flags = sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE;
    d.undefine_flags(flags)
        .map_err(call("undefine domain", name))
}

pub(super) fn sync_clock(lv: &Libvirt, domain: &str) -> Result<()> {
    let d = lookup(lv, domain, "find domain")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let nanos = i32::try_from(now.subsec_nanos()).unwrap_or(0);
    d.set_time(secs, nanos, 0)
        .map_err(call("set the clock of", domain))
}
