//! [`Hypervisor`] over the virt crate (libvirt's C API).

use std::io::Read;

use virt::connect::Connect;
use virt::domain::{Domain, DomainState};
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::stream::Stream;
use virt::sys;

use super::{Found, Hypervisor, LibvirtError, PoolFound, Result, RunState};

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

impl Libvirt {
    /// Opens `uri` read-write. libvirt's own printing of errors to stderr is silenced: its
    /// errors come back as [`LibvirtError`]s instead.
    pub fn open(uri: &str) -> Result<Libvirt> {
        virt::error::clear_error_callback();
        let conn = Connect::open(Some(uri)).map_err(|e| LibvirtError::Connect {
            uri: uri.to_string(),
            message: e.message().to_string(),
        })?;
        Ok(Libvirt {
            conn,
            uri: uri.to_string(),
        })
    }

    fn domain(&self, name: &str, action: &'static str) -> Result<Domain> {
        self.conn
            .lookup_domain_by_name(name)
            .map_err(call(action, name))
    }

    fn pool_handle(&self, name: &str, action: &'static str) -> Result<StoragePool> {
        self.conn
            .lookup_storage_pool_by_name(name)
            .map_err(call(action, name))
    }

    fn volume(&self, pool: &str, volume: &str, action: &'static str) -> Result<StorageVol> {
        let object = format!("{pool}/{volume}");
        let p = self.pool_handle(pool, action)?;
        p.lookup_storage_vol_by_name(volume)
            .map_err(call(action, &object))
    }

    fn snapshot(
        &self,
        domain: &str,
        name: &str,
        action: &'static str,
    ) -> Result<virt::domain_snapshot::DomainSnapshot> {
        let d = self.domain(domain, action)?;
        Domain::lookup_snapshot_by_name(&d, name, 0)
            .map_err(call(action, &format!("{domain} snapshot {name}")))
    }
}

fn run_state(d: &Domain, name: &str) -> Result<RunState> {
    let (state, _) = d.state().map_err(call("read the state of domain", name))?;
    Ok(match state {
        virt::enumutil::Enum::Known(DomainState::Running | DomainState::Blocked) => {
            RunState::Running
        }
        virt::enumutil::Enum::Known(DomainState::Paused) => RunState::Paused,
        virt::enumutil::Enum::Known(DomainState::Shutoff) => RunState::ShutOff,
        _ => RunState::Other,
    })
}

/// Memory the host can give guests: free + buffers + page cache, summed over all cells
/// (`virNodeGetMemoryStats`; the virt crate has no wrapper). `virNodeGetFreeMemory` is not
/// used: it counts only NUMA cells' free pages and misses memory outside them.
fn available_memory(conn: &Connect) -> Option<u64> {
    let cells = sys::VIR_NODE_MEMORY_STATS_ALL_CELLS;
    let mut n: std::os::raw::c_int = 0;
    // SAFETY: a null params array with nparams 0 asks libvirt for the number of fields.
    let rc = unsafe {
        sys::virNodeGetMemoryStats(conn.as_ptr(), cells, std::ptr::null_mut(), &mut n, 0)
    };
    if rc < 0 || n <= 0 {
        return None;
    }
    let empty = sys::_virNodeMemoryStats {
        field: [0; 80],
        value: 0,
    };
    let mut params = vec![empty; n as usize];
    // SAFETY: params has room for n entries, as libvirt said.
    let rc =
        unsafe { sys::virNodeGetMemoryStats(conn.as_ptr(), cells, params.as_mut_ptr(), &mut n, 0) };
    if rc < 0 {
        return None;
    }
    let kib: u64 = params[..n as usize]
        .iter()
        .filter(|p| {
            // SAFETY: libvirt fills `field` with a NUL-terminated name.
            let name = unsafe { std::ffi::CStr::from_ptr(p.field.as_ptr()) };
            matches!(name.to_bytes(), b"free" | b"buffers" | b"cached")
        })
        .map(|p| p.value)
        .sum();
    Some(kib * 1024)
}

/// `<creationTime>` of a snapshot's XML, for ordering.
fn creation_time(xml: &str) -> u64 {
    xml.split_once("<creationTime>")
        .and_then(|(_, rest)| rest.split_once('<'))
        .and_then(|(t, _)| t.trim().parse().ok())
        .unwrap_or(0)
}

impl Hypervisor for Libvirt {
    fn uri(&self) -> &str {
        &self.uri
    }

    fn free_memory(&self) -> Result<Option<u64>> {
        // Some drivers (the test driver) cannot tell: then there is nothing to check against.
        Ok(available_memory(&self.conn))
    }

    fn probe_capabilities(&self) -> Result<()> {
        let action = "read the emulator capabilities of";
        self.conn.capabilities().map_err(call(action, &self.uri))?;
        match self.conn.domain_capabilities(None, None, None, None, 0) {
            Err(e) if !is(&e, sys::VIR_ERR_NO_SUPPORT) => Err(call(action, &self.uri)(e)),
            _ => Ok(()),
        }
    }

    fn networks(&self) -> Result<Vec<Found<bool>>> {
        let all = self
            .conn
            .list_all_networks(0)
            .map_err(call("list networks on", &self.uri))?;
        all.iter()
            .map(|n| {
                let name = n
                    .name()
                    .map_err(call("read a network name on", &self.uri))?;
                let state = n
                    .is_active()
                    .map_err(call("read the state of network", &name))?;
                let xml = n
                    .xml_desc(0)
                    .map_err(call("read the XML of network", &name))?;
                Ok(Found { name, state, xml })
            })
            .collect()
    }

    fn define_network(&self, xml: &str) -> Result<()> {
        self.conn
            .define_network_xml(xml)
            .map(drop)
            .map_err(call("define network", &self.uri))
    }

    fn start_network(&self, name: &str) -> Result<()> {
        let n = self
            .conn
            .lookup_network_by_name(name)
            .map_err(call("find network", name))?;
        n.create().map_err(call("start network", name))
    }

    fn remove_network(&self, name: &str) -> Result<()> {
        let n = self
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

    fn pool(&self, name: &str) -> Result<Option<PoolFound>> {
        let p = match self.conn.lookup_storage_pool_by_name(name) {
            Ok(p) => p,
            Err(e) if is(&e, sys::VIR_ERR_NO_STORAGE_POOL) => return Ok(None),
            Err(e) => return Err(call("find pool", name)(e)),
        };
        let active = p
            .is_active()
            .map_err(call("read the state of pool", name))?;
        let xml = p.xml_desc(0).map_err(call("read the XML of pool", name))?;
        let path = xml
            .split_once("<path>")
            .and_then(|(_, r)| r.split_once("</path>"))
            .map_or(String::new(), |(p, _)| p.to_string());
        let volumes = if active {
            p.refresh(0).map_err(call("refresh pool", name))?;
            p.list_volumes()
                .map_err(call("list the volumes of pool", name))?
        } else {
            Vec::new()
        };
        Ok(Some(PoolFound {
            name: name.to_string(),
            active,
            path,
            volumes,
        }))
    }

    fn create_pool(&self, xml: &str) -> Result<()> {
        let p = self
            .conn
            .define_storage_pool_xml(xml, 0)
            .map_err(call("define pool", &self.uri))?;
        let name = p
            .name()
            .map_err(call("read the name of a pool on", &self.uri))?;
        let started = p
            .build(0)
            .and_then(|_| p.create(0))
            .map_err(call("build and start pool", &name));
        if started.is_err() {
            let _ = p.undefine();
        }
        started.map(drop)
    }

    fn start_pool(&self, name: &str) -> Result<()> {
        self.pool_handle(name, "find pool")?
            .create(0)
            .map(drop)
            .map_err(call("start pool", name))
    }

    fn create_volume(&self, pool: &str, xml: &str) -> Result<String> {
        let p = self.pool_handle(pool, "find pool")?;
        let v =
            StorageVol::create_xml(&p, xml, 0).map_err(call("create a volume in pool", pool))?;
        v.path()
            .map_err(call("read the path of a volume in pool", pool))
    }

    fn upload_volume(&self, pool: &str, volume: &str, data: &mut dyn Read, len: u64) -> Result<()> {
        let object = format!("{pool}/{volume}");
        let v = self.volume(pool, volume, "find volume")?;
        let stream = Stream::new(&self.conn, 0).map_err(call("open a stream to", &object))?;
        v.upload(&stream, 0, len, 0)
            .map_err(call("upload to volume", &object))?;
        match send_all(&stream, data, &object) {
            Ok(()) => stream
                .finish()
                .map_err(call("finish the upload to", &object)),
            Err(e) => {
                let _ = stream.abort();
                Err(e)
            }
        }
    }

    fn delete_volume(&self, pool: &str, volume: &str) -> Result<()> {
        let v = self.volume(pool, volume, "find volume")?;
        v.delete(0)
            .map_err(call("delete volume", &format!("{pool}/{volume}")))
    }

    fn remove_pool(&self, name: &str) -> Result<()> {
        let p = self.pool_handle(name, "find pool")?;
        if p.is_active()
            .map_err(call("read the state of pool", name))?
        {
            p.destroy().map_err(call("stop pool", name))?;
        }
        p.delete(0)
            .map_err(call("delete the directory of pool", name))?;
        p.undefine().map_err(call("undefine pool", name))
    }

    fn domains(&self) -> Result<Vec<Found<RunState>>> {
        let all = self
            .conn
            .list_all_domains(0)
            .map_err(call("list domains on", &self.uri))?;
        all.iter()
            .map(|d| {
                let name = d.name().map_err(call("read a domain name on", &self.uri))?;
                let state = run_state(d, &name)?;
                let xml = d
                    .xml_desc(0)
                    .map_err(call("read the XML of domain", &name))?;
                Ok(Found { name, state, xml })
            })
            .collect()
    }

    fn define_domain(&self, xml: &str) -> Result<()> {
        self.conn
            .define_domain_xml(xml)
            .map(drop)
            .map_err(call("define domain", &self.uri))
    }

    fn start_domain(&self, name: &str) -> Result<()> {
        self.domain(name, "find domain")?
            .create()
            .map(drop)
            .map_err(call("start domain", name))
    }

    fn suspend_domain(&self, name: &str) -> Result<()> {
        self.domain(name, "find domain")?
            .suspend()
            .map(drop)
            .map_err(call("pause domain", name))
    }

    fn resume_domain(&self, name: &str) -> Result<()> {
        self.domain(name, "find domain")?
            .resume()
            .map(drop)
            .map_err(call("resume domain", name))
    }

    fn remove_domain(&self, name: &str) -> Result<()> {
        let d = self.domain(name, "find domain")?;
        if d.is_active()
            .map_err(call("read the state of domain", name))?
        {
            d.destroy().map_err(call("stop domain", name))?;
        }
        // Lab domains boot BIOS (no NVRAM): internal snapshots with memory need it.
        let flags =
            sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE;
        d.undefine_flags(flags)
            .map_err(call("undefine domain", name))
    }

    fn snapshots(&self, domain: &str) -> Result<Vec<String>> {
        let d = self.domain(domain, "find domain")?;
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

    fn create_snapshot(&self, domain: &str, xml: &str) -> Result<()> {
        let d = self.domain(domain, "find domain")?;
        d.create_snapshot_xml(xml, 0)
            .map(drop)
            .map_err(call("snapshot domain", domain))
    }

    fn revert_snapshot(&self, domain: &str, snapshot: &str) -> Result<()> {
        let s = self.snapshot(domain, snapshot, "find snapshot")?;
        s.revert(sys::VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING)
            .map_err(call("revert", &format!("{domain} to snapshot {snapshot}")))
    }

    fn sync_clock(&self, domain: &str) -> Result<()> {
        let d = self.domain(domain, "find domain")?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let nanos = i32::try_from(now.subsec_nanos()).unwrap_or(0);
        d.set_time(secs, nanos, 0)
            .map_err(call("set the clock of", domain))
    }

    fn console(&self, domain: &str) -> Result<Box<dyn super::Console>> {
        let d = self.domain(domain, "find domain")?;
        let stream = Stream::new(&self.conn, 0).map_err(call("open a stream to", domain))?;
        d.open_console(None, &stream, sys::VIR_DOMAIN_CONSOLE_FORCE)
            .map_err(call("attach to the console of", domain))?;
        Ok(Box::new(ConsoleStream {
            stream,
            domain: domain.to_string(),
        }))
    }

    fn delete_snapshot(&self, domain: &str, snapshot: &str) -> Result<()> {
        let s = self.snapshot(domain, snapshot, "find snapshot")?;
        s.delete(0)
            .map_err(call("delete snapshot", &format!("{domain} {snapshot}")))
    }
}

/// A domain's console over a libvirt stream.
struct ConsoleStream {
    stream: Stream,
    domain: String,
}

impl super::Console for ConsoleStream {
    fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        let n = self
            .stream
            .recv(buf)
            .map_err(call("read the console of", &self.domain))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn send(&self, data: &[u8]) -> Result<()> {
        let mut sent = 0;
        while sent < data.len() {
            let n = self
                .stream
                .send(&data[sent..])
                .map_err(call("write to the console of", &self.domain))?;
            sent += usize::try_from(n).unwrap_or(0).max(1);
        }
        Ok(())
    }
}

fn send_all(stream: &Stream, data: &mut dyn Read, object: &str) -> Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = data.read(&mut buf).map_err(|e| LibvirtError::Call {
            action: "read the data for",
            object: object.to_string(),
            message: e.to_string(),
            code: 0,
        })?;
        if n == 0 {
            return Ok(());
        }
        let mut sent = 0;
        while sent < n {
            let k = stream
                .send(&buf[sent..n])
                .map_err(call("send data to", object))?;
            sent += usize::try_from(k).unwrap_or(0).max(1).min(n - sent);
        }
    }
}
