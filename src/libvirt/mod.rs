//! The one seam over libvirt: [`Hypervisor`] speaks in object names and XML, so the lifecycle
//! code above it knows nothing of the virt crate. [`Libvirt`] is the real implementation
//! (tested against libvirt's own test driver and a real libvirtd).
//! Every call blocks: callers run them on plain threads, never on an async worker.

mod real;

use std::io::Read;

pub use real::{Libvirt, stop_event_loop};

/// A domain's run state, as libvirt reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Paused,
    /// Shut off with a managed save (`lab stop`): starting it restores its memory.
    Saved,
    ShutOff,
    /// Shutting down, crashed, suspended to RAM or unknown.
    Other,
}

/// As `lab`'s tables print it: `running`, `paused`, `saved`, `shut off`, `other`.
impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Saved => "saved",
            RunState::ShutOff => "shut off",
            RunState::Other => "other",
        })
    }
}

/// A libvirt object as found: its name, whether it runs, and its XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<S> {
    pub name: String,
    pub state: S,
    pub xml: String,
}

/// The size of a host (`virNodeGetInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSize {
    pub memory_bytes: u64,
    pub cpus: u32,
}

/// A storage pool as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolFound {
    pub name: String,
    pub active: bool,
    /// Target directory on the hypervisor host.
    pub path: String,
    pub volumes: Vec<String>,
    /// Size of the filesystem (or device) under it in bytes (`virStoragePoolGetInfo`);
    /// 0 when inactive, or when the driver cannot tell.
    pub capacity: u64,
    /// Bytes free there for new volumes, as of this read (the pool was refreshed).
    pub available: u64,
}

/// What a libvirt call failed on, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LibvirtError {
    #[error(
        "cannot connect to libvirt at {uri}: {message}: is libvirtd running and may you use it? (`lab doctor` checks)"
    )]
    Connect { uri: String, message: String },
    #[error("{action} {object}: {message}")]
    Call {
        action: &'static str,
        object: String,
        message: String,
        /// libvirt's error number (`virErrorNumber`).
        code: i32,
    },
    /// A call failed and the connection is dead: libvirtd was stopped, killed or restarted.
    #[error(
        "libvirt connection lost to {uri} while trying to {action} {object} ({message}): is libvirtd running? start it, then run the command again"
    )]
    ConnectionLost {
        uri: String,
        action: &'static str,
        object: String,
        message: String,
    },
}

impl crate::failure::Classify for LibvirtError {
    fn class(&self) -> crate::failure::ExitClass {
        crate::failure::ExitClass::Host
    }
}

impl LibvirtError {
    /// libvirt's error number of a failed call.
    pub fn code(&self) -> Option<i32> {
        match self {
            LibvirtError::Call { code, .. } => Some(*code),
            LibvirtError::Connect { .. } | LibvirtError::ConnectionLost { .. } => None,
        }
    }

    /// Whether the connection to libvirt is gone ([`LibvirtError::ConnectionLost`]).
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, LibvirtError::ConnectionLost { .. })
    }

    /// This error as it is when the connection to `uri` is `alive`; a failed call on a dead
    /// one as [`LibvirtError::ConnectionLost`].
    pub fn on_connection(self, uri: &str, alive: bool) -> LibvirtError {
        match self {
            LibvirtError::Call {
                action,
                object,
                message,
                ..
            } if !alive => LibvirtError::ConnectionLost {
                uri: uri.to_string(),
                action,
                object,
                message,
            },
            other => other,
        }
    }
}

pub type Result<T> = std::result::Result<T, LibvirtError>;

/// Everything `lab` asks of libvirt. Names are libvirt object names; XML is libvirt's.
pub trait Hypervisor: Send + Sync {
    /// The connection URI, for messages.
    fn uri(&self) -> &str;
    /// Whether the connection still stands (`virConnectIsAlive`): false once libvirtd was
    /// stopped or restarted under it; then a new connection is needed.
    fn is_alive(&self) -> bool {
        true
    }
    /// Free memory of the host in bytes; `None` when the driver cannot tell.
    fn free_memory(&self) -> Result<Option<u64>>;
    /// The host's size: its memory and its CPUs (`virNodeGetInfo`).
    fn node_size(&self) -> Result<NodeSize>;
    /// Asks for the host's and the default emulator's capabilities. A freshly started
    /// libvirtd probes its QEMU binaries for them (seconds to minutes; cached after), and
    /// the first domain definition would wait for that probe silently: calling this first
    /// makes the wait visible. Drivers without the call (the test driver) count as probed.
    fn probe_capabilities(&self) -> Result<()> {
        Ok(())
    }

    /// Every network, with `state` = active.
    fn networks(&self) -> Result<Vec<Found<bool>>>;
    fn define_network(&self, xml: &str) -> Result<()>;
    fn start_network(&self, name: &str) -> Result<()>;
    /// Stops (if active) and undefines a network.
    fn remove_network(&self, name: &str) -> Result<()>;

    fn pool(&self, name: &str) -> Result<Option<PoolFound>>;
    /// The names of the active pools.
    fn pools(&self) -> Result<Vec<String>>;
    /// Defines, builds (creates the directory) and starts a dir pool.
    fn create_pool(&self, xml: &str) -> Result<()>;
    fn start_pool(&self, name: &str) -> Result<()>;
    /// Creates a volume; returns its path on the hypervisor host.
    fn create_volume(&self, pool: &str, xml: &str) -> Result<String>;
    /// Writes `len` bytes from `data` into a volume, through libvirt (works on remote hosts).
    fn upload_volume(&self, pool: &str, volume: &str, data: &mut dyn Read, len: u64) -> Result<()>;
    fn delete_volume(&self, pool: &str, volume: &str) -> Result<()>;
    /// Creates a volume in `pool` from `xml` as a copy of `from` (pool, volume), made on the
    /// hypervisor host: no byte crosses the connection.
    fn copy_volume(&self, pool: &str, xml: &str, from: (&str, &str)) -> Result<()>;
    /// A volume's bytes from `offset` to its end, through libvirt (works on remote hosts);
    /// the pool must have been read ([`Hypervisor::pool`] refreshes it) since the volume
    /// appeared.
    fn read_volume(&self, pool: &str, volume: &str, offset: u64) -> Result<Vec<u8>>;
    /// Stops, deletes (the directory) and undefines a pool.
    fn remove_pool(&self, name: &str) -> Result<()>;

    /// Every domain.
    fn domains(&self) -> Result<Vec<Found<RunState>>>;
    fn define_domain(&self, xml: &str) -> Result<()>;
    fn start_domain(&self, name: &str) -> Result<()>;
    fn suspend_domain(&self, name: &str) -> Result<()>;
    fn resume_domain(&self, name: &str) -> Result<()>;
    /// Saves a running or paused domain's memory to its managed save file and stops it
    /// (`virDomainManagedSave`); the next [`Hypervisor::start_domain`] restores it.
    fn managed_save(&self, name: &str) -> Result<()>;
    /// Drops a domain's managed save (none is fine): its next start boots.
    fn remove_managed_save(&self, name: &str) -> Result<()>;
    /// Asks the guest to power off: through the guest agent, else ACPI; returns at once.
    fn shutdown_domain(&self, name: &str) -> Result<()>;
    /// Powers a domain off at once, as pulling the plug does.
    fn destroy_domain(&self, name: &str) -> Result<()>;
    /// Stops (if running) and undefines a domain with its snapshot metadata.
    fn remove_domain(&self, name: &str) -> Result<()>;

    /// Snapshot names of a domain, oldest first.
    fn snapshots(&self, domain: &str) -> Result<Vec<String>>;
    fn create_snapshot(&self, domain: &str, xml: &str) -> Result<()>;
    /// Reverts and leaves the domain running.
    fn revert_snapshot(&self, domain: &str, snapshot: &str) -> Result<()>;
    fn delete_snapshot(&self, domain: &str, snapshot: &str) -> Result<()>;
    /// Sets the guest clock to the host's through the guest agent (stale after a revert).
    fn sync_clock(&self, domain: &str) -> Result<()>;
    /// Attaches to the domain's serial console (taking it over from another client).
    fn console(&self, domain: &str) -> Result<Box<dyn Console>>;
}

/// A bidirectional byte stream to a console; `recv` blocks, and returns 0 at its end.
pub trait Console: Send + Sync {
    fn recv(&self, buf: &mut [u8]) -> Result<usize>;
    fn send(&self, data: &[u8]) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_start() -> LibvirtError {
        LibvirtError::Call {
            action: "start domain",
            object: "lab-x-compute1".into(),
            message: "End of file while reading data: Input/output error".into(),
            code: 38,
        }
    }

    #[test]
    fn a_failed_call_on_a_dead_connection_is_a_lost_connection_saying_what_to_do() {
        let e = failed_start().on_connection("qemu:///system", false);
        assert!(e.is_connection_lost());
        assert_eq!(e.code(), None);
        assert_eq!(
            e.to_string(),
            "libvirt connection lost to qemu:///system while trying to start domain lab-x-compute1 (End of file while reading data: Input/output error): is libvirtd running? start it, then run the command again"
        );
    }

    #[test]
    fn a_failed_call_on_a_live_connection_stays_what_it_was() {
        let e = failed_start().on_connection("qemu:///system", true);
        assert_eq!(e, failed_start());
        assert!(!e.is_connection_lost());
        let connect = LibvirtError::Connect {
            uri: "qemu:///system".into(),
            message: "Failed to connect socket".into(),
        };
        assert_eq!(
            connect.clone().on_connection("qemu:///system", false),
            connect
        );
    }

    #[test]
    fn the_test_driver_is_alive_and_its_failed_calls_stay_calls() {
        let lv = Libvirt::open("test:///default").unwrap();
        assert!(lv.is_alive());
        let e = lv.start_domain("no-such-domain").unwrap_err();
        assert!(matches!(e, LibvirtError::Call { .. }), "{e:?}");
    }
}
