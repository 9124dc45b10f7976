//! [`Hypervisor`] over the virt crate (libvirt's C API): the connection here, each kind of
//! object in a file of its own.

mod console;
mod domain;
mod host;
mod network;
mod snapshot;
mod storage;

use std::io::Read;

use virt::connect::Connect;
use virt::sys;

use super::{Console, Found, Hypervisor, LibvirtError, NodeSize, PoolFound, Result, RunState};

/// A connection to a libvirt daemon (or driver) at a URI.
pub struct Libvirt {
    conn: Connect,
    uri: String,
}

fn call(action: &'static str, object: &str) -> impl FnOnce(virt::error::Error) -> LibvirtError {
    let object = object.to_string();
    move |e| LibvirtError::Call {
        action,
        object,
        message: e.message().to_string(),
        code: e.code().to_raw() as i32,
    }
}

fn is(e: &virt::error::Error, code: sys::virErrorNumber) -> bool {
    e.code().to_raw() == code
}

/// Whether a read of a listed object failed because the object no longer exists (`code`).
fn gone<T>(read: &Result<T>, code: sys::virErrorNumber) -> bool {
    matches!(read, Err(e) if e.code() == i32::try_from(code).ok())
}

/// Seconds between keepalive probes, and how many may go unanswered before libvirt closes
/// the connection (virsh's own defaults are 5 and 6). Seen here with libvirt 9.0: a call in
/// flight over a qemu+ssh link cut silently still waits for its reply (until the link is
/// back), so this does not bound such a call.
const KEEPALIVE: (i32, u32) = (5, 3);

/// libvirt's default event loop, run on a thread of its own: keepalive needs one, and it must
/// be registered before the first connection opens. Once per process.
fn event_loop() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if virt::event::event_register_default_impl().is_err() {
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("libvirt-events".into())
            .spawn(|| while virt::event::event_run_default_impl().is_ok() {});
        drop(spawned);
    });
}

impl Libvirt {
    /// Opens `uri` read-write, with keepalive where the driver has it (a daemon's; not the
    /// test driver). libvirt's own printing of errors to stderr is silenced: its errors come
    /// back as [`LibvirtError`]s instead.
    pub fn open(uri: &str) -> Result<Libvirt> {
        virt::error::clear_error_callback();
        event_loop();
        let conn = Connect::open(Some(uri)).map_err(|e| LibvirtError::Connect {
            uri: uri.to_string(),
            message: e.message().to_string(),
        })?;
        // Refused by drivers without it, and by daemons too old for it: calls then block as
        // before, which is no reason to fail.
        let _ = conn.set_keep_alive(KEEPALIVE.0, KEEPALIVE.1);
        Ok(Libvirt {
            conn,
            uri: uri.to_string(),
        })
    }

    /// `r`, with a failed call on a connection that is no longer alive (libvirtd stopped or
    /// restarted under it) as [`LibvirtError::ConnectionLost`]: every call goes through here.
    fn checked<T>(&self, r: Result<T>) -> Result<T> {
        r.map_err(|e| e.on_connection(&self.uri, self.is_alive()))
    }
}

impl Hypervisor for Libvirt {
    fn uri(&self) -> &str {
        &self.uri
    }

    fn is_alive(&self) -> bool {
        // A connection that cannot even tell counts as standing: its errors stay as they are.
        !matches!(self.conn.is_alive(), Ok(false))
    }

    fn free_memory(&self) -> Result<Option<u64>> {
        self.checked(host::free_memory(self))
    }

    fn node_size(&self) -> Result<NodeSize> {
        self.checked(host::node_size(self))
    }

    fn probe_capabilities(&self) -> Result<()> {
        self.checked(host::probe_capabilities(self))
    }

    fn networks(&self) -> Result<Vec<Found<bool>>> {
        self.checked(network::list(self))
    }

    fn define_network(&self, xml: &str) -> Result<()> {
        self.checked(network::define(self, xml))
    }

    fn start_network(&self, name: &str) -> Result<()> {
        self.checked(network::start(self, name))
    }

    fn remove_network(&self, name: &str) -> Result<()> {
        self.checked(network::remove(self, name))
    }

    fn pool(&self, name: &str) -> Result<Option<PoolFound>> {
        self.checked(storage::pool(self, name))
    }

    fn create_pool(&self, xml: &str) -> Result<()> {
        self.checked(storage::create_pool(self, xml))
    }

    fn start_pool(&self, name: &str) -> Result<()> {
        self.checked(storage::start_pool(self, name))
    }

    fn create_volume(&self, pool: &str, xml: &str) -> Result<String> {
        self.checked(storage::create_volume(self, pool, xml))
    }

    fn upload_volume(&self, pool: &str, volume: &str, data: &mut dyn Read, len: u64) -> Result<()> {
        self.checked(storage::upload_volume(self, pool, volume, data, len))
    }

    fn delete_volume(&self, pool: &str, volume: &str) -> Result<()> {
        self.checked(storage::delete_volume(self, pool, volume))
    }
    fn pools(&self) -> Result<Vec<String>> {
        self.checked(storage::pools(self))
    }
    fn copy_volume(&self, pool: &str, xml: &str, from: (&str, &str)) -> Result<()> {
        self.checked(storage::copy_volume(self, pool, xml, from))
    }
    fn read_volume(&self, pool: &str, volume: &str, offset: u64) -> Result<Vec<u8>> {
        self.checked(storage::read_volume(self, pool, volume, offset))
    }

    fn remove_pool(&self, name: &str) -> Result<()> {
        self.checked(storage::remove_pool(self, name))
    }

    fn domains(&self) -> Result<Vec<Found<RunState>>> {
        self.checked(domain::list(self))
    }

    fn define_domain(&self, xml: &str) -> Result<()> {
        self.checked(domain::define(self, xml))
    }

    fn start_domain(&self, name: &str) -> Result<()> {
        self.checked(domain::start(self, name))
    }

    fn suspend_domain(&self, name: &str) -> Result<()> {
        self.checked(domain::suspend(self, name))
    }

    fn resume_domain(&self, name: &str) -> Result<()> {
        self.checked(domain::resume(self, name))
    }

    fn remove_domain(&self, name: &str) -> Result<()> {
        self.checked(domain::remove(self, name))
    }

    fn managed_save(&self, name: &str) -> Result<()> {
        self.checked(domain::managed_save(self, name))
    }

    fn remove_managed_save(&self, name: &str) -> Result<()> {
        self.checked(domain::remove_managed_save(self, name))
    }

    fn shutdown_domain(&self, name: &str) -> Result<()> {
        self.checked(domain::shutdown(self, name))
    }

    fn destroy_domain(&self, name: &str) -> Result<()> {
        self.checked(domain::destroy(self, name))
    }

    fn snapshots(&self, domain: &str) -> Result<Vec<String>> {
        self.checked(snapshot::list(self, domain))
    }

    fn create_snapshot(&self, domain: &str, xml: &str) -> Result<()> {
        self.checked(snapshot::create(self, domain, xml))
    }

    fn revert_snapshot(&self, domain: &str, snapshot: &str) -> Result<()> {
        self.checked(snapshot::revert(self, domain, snapshot))
    }

    fn sync_clock(&self, domain: &str) -> Result<()> {
        self.checked(domain::sync_clock(self, domain))
    }

    fn console(&self, domain: &str) -> Result<Box<dyn Console>> {
        self.checked(console::open(self, domain))
    }

    fn delete_snapshot(&self, domain: &str, snapshot: &str) -> Result<()> {
        self.checked(snapshot::delete(self, domain, snapshot))
    }
}
