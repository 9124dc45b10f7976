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
/// back), so this does not bound such a call: [`SSH_WRAPPER`] does.
const KEEPALIVE: (i32, u32) = (5, 3);

/// The program libvirt runs for an `+ssh` transport, in lab's hands: OpenSSH with its own
/// liveness probes, so a link cut silently ends the transport (and a call in flight fails)
/// within about 20 s instead of at TCP's timeout (15 minutes).
const SSH_WRAPPER: &str = "#!/bin/sh\n\
# lab: libvirt's ssh transport with OpenSSH's liveness probes\n\
exec ssh -o ServerAliveInterval=5 -o ServerAliveCountMax=3 \"$@\"\n";

/// `uri` with libvirt's `command` parameter set to `ssh` (the program libvirt runs for the
/// transport), when `uri` is a `+ssh` URI that names none; `None` otherwise.
fn with_ssh_command(uri: &str, ssh: &str) -> Option<String> {
    let (scheme, _) = uri.split_once("://")?;
    if !scheme.ends_with("+ssh") {
        return None;
    }
    let query = uri.split_once('?').map(|(_, q)| q).unwrap_or("");
    if query.split('&').any(|kv| kv.starts_with("command=")) {
        return None;
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    Some(format!("{uri}{sep}command={ssh}"))
}

/// Opens `uri`, an `+ssh` one through [`SSH_WRAPPER`] (written to a private temporary
/// directory for the open, which spawns ssh, and removed after). Where the wrapper cannot be
/// written, the URI as it is.
fn connect(uri: &str) -> std::result::Result<Connect, virt::error::Error> {
    let dir = tempfile::Builder::new().prefix("lab-ssh.").tempdir().ok();
    let wrapped = dir.as_ref().and_then(|d| {
        let path = d.path().join("ssh");
        write_wrapper(&path).ok()?;
        with_ssh_command(uri, path.to_str()?)
    });
    Connect::open(Some(wrapped.as_deref().unwrap_or(uri)))
}

fn write_wrapper(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, SSH_WRAPPER)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

/// libvirt's default event loop, run on a thread of its own: keepalive needs one, and it must
/// be registered before the first connection opens. Once per process; [`stop_event_loop`]
/// ends it.
fn event_loop() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if virt::event::event_register_default_impl().is_err() {
            return;
        }
        let (ended, end) = std::sync::mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("libvirt-events".into())
            .spawn(move || {
                // Each round blocks in poll until an event, a timer or a wake-up.
                loop {
                    if EVENTS_STOP.load(std::sync::atomic::Ordering::SeqCst)
                        || virt::event::event_run_default_impl().is_err()
                    {
                        break;
                    }
                }
                drop(ended);
            });
        if spawned.is_ok() {
            *EVENTS_ENDED.lock().unwrap_or_else(|e| e.into_inner()) = Some(end);
        }
    });
}

/// Asks the event loop's thread to stop after its current round.
static EVENTS_STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Disconnected once the event loop's thread has ended.
static EVENTS_ENDED: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>> =
    std::sync::Mutex::new(None);

/// Ends libvirt's event loop thread, if it runs, and waits (2 s at most) until it has: called
/// once every connection is closed, before the process exits. A closed connection's
/// keepalive timer is freed by that thread in its next round; a process exiting meanwhile
/// tore libvirt down under it (a heap corruption seen once in CI, at the end of `lab class
/// reset`).
pub fn stop_event_loop() {
    let Some(end) = EVENTS_ENDED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    else {
        return;
    };
    EVENTS_STOP.store(true, std::sync::atomic::Ordering::SeqCst);
    // A timeout due at once wakes the loop from its poll; it then sees the stop.
    let woken = virt::event::event_add_timeout(0, |_, _| {}, std::ptr::null_mut());
    if woken.is_ok() {
        let _ = end.recv_timeout(std::time::Duration::from_secs(2));
    }
}

impl Libvirt {
    /// Opens `uri` read-write, with keepalive where the driver has it (a daemon's; not the
    /// test driver). libvirt's own printing of errors to stderr is silenced: its errors come
    /// back as [`LibvirtError`]s instead.
    pub fn open(uri: &str) -> Result<Libvirt> {
        virt::error::clear_error_callback();
        event_loop();
        let conn = connect(uri).map_err(|e| LibvirtError::Connect {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ssh_uris_without_a_command_get_the_wrapper() {
        let w = "/tmp/lab-ssh.x/ssh";
        assert_eq!(
            with_ssh_command("qemu+ssh://root@host/system", w).as_deref(),
            Some("qemu+ssh://root@host/system?command=/tmp/lab-ssh.x/ssh")
        );
        assert_eq!(
            with_ssh_command("qemu+ssh://host:2222/system?keyfile=/k", w).as_deref(),
            Some("qemu+ssh://host:2222/system?keyfile=/k&command=/tmp/lab-ssh.x/ssh")
        );
        for as_is in [
            "qemu+ssh://host/system?command=/usr/local/bin/ssh",
            "qemu+libssh2://host/system",
            "qemu:///system",
            "test:///default",
        ] {
            assert_eq!(with_ssh_command(as_is, w), None, "{as_is}");
        }
    }

    #[test]
    fn the_wrapper_is_valid_sh_that_runs_ssh_with_its_probes_and_every_argument() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ssh");
        write_wrapper(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // A stand-in `ssh` first on PATH prints what it was given.
        let fake = dir.path().join("bin");
        std::fs::create_dir(&fake).unwrap();
        std::fs::write(fake.join("ssh"), "#!/bin/sh\nprintf '%s|' \"$@\"\n").unwrap();
        std::fs::set_permissions(fake.join("ssh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path_var = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap());
        let out = std::process::Command::new(&path)
            .args(["-l", "root", "host", "sh -c 'x y'"])
            .env("PATH", path_var)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "-o|ServerAliveInterval=5|-o|ServerAliveCountMax=3|-l|root|host|sh -c 'x y'|"
        );
    }
}
