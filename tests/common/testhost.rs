//! A libvirt host for lifecycle tests: the real [`Libvirt`] on libvirt's test driver with
//! fault injection, races and counted uploads; progress events; a lab fixture.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use lab::libvirt::{Found, Hypervisor, Libvirt, LibvirtError, PoolFound, Result, RunState};
use lab::lifecycle::{self, Event, LifecycleError, Progress, UpOptions, Work};
use lab::model::Lab;
use lab::names;
use lab::render::RenderContext;

use crate::common;

/// The real [`Libvirt`] on a private test-driver host, with two test powers:
/// - `fail_at`: the n-th changing call fails (fault injection);
/// - uploads are counted and consumed, since the test driver has no volume upload (the real
///   upload runs against libvirtd in the end-to-end test); copies across pools, which it
///   does not make either, are counted and made as new volumes.
pub struct TestHost {
    pub inner: Libvirt,
    pub fail_at: Option<usize>,
    pub changes: AtomicUsize,
    pub uploads: Mutex<Vec<(String, u64)>>,
    /// Volumes copied on the host: (from pool/volume, into pool).
    pub copies: Mutex<Vec<(String, String)>>,
    pub free_memory: Option<u64>,
    /// Guests without a guest agent: setting the clock fails.
    pub no_agent: bool,
    /// The capabilities probe fails.
    pub probe_fails: bool,
    /// Reading this pool fails as libvirt's does while another client uploads into it.
    pub busy_pool: Option<String>,
    /// Asks `lab` to stop (as SIGINT would) when an upload starts.
    pub interrupt_on_upload: bool,
    /// A stop is asked for while a domain starts (the last calls of `up`).
    pub interrupt_on_start: bool,
    /// Another writer fills the pool when an upload starts: all but 1000 bytes of what it
    /// has free go to a volume `filler` (the test driver refuses creates beyond its capacity).
    pub fill_on_upload: bool,
    /// Every define or create is first done behind `lab`'s back, as libvirtd finishing the
    /// call of a killed client after the re-run looked: the call itself then meets "exists".
    pub race: bool,
    pub raced: Mutex<std::collections::HashSet<String>>,
    /// The connection is lost at the n-th changing call (as libvirtd killed under it): that
    /// call and every later one fail with `ConnectionLost`, and the host is no longer alive.
    pub lose_at: Option<usize>,
    /// Whether the connection is lost (settable: a test restores it as a reconnect does).
    pub lost: std::sync::atomic::AtomicBool,
    /// Reads of the domains, counted.
    pub domain_reads: AtomicUsize,
    _dir: tempfile::TempDir,
}

impl TestHost {
    pub fn new() -> TestHost {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("node.xml");
        std::fs::write(&node, "<node/>").unwrap();
        let inner = Libvirt::open(&format!("test://{}", node.display())).unwrap();
        TestHost {
            inner,
            fail_at: None,
            changes: AtomicUsize::new(0),
            uploads: Mutex::new(Vec::new()),
            copies: Mutex::new(Vec::new()),
            free_memory: None,
            no_agent: false,
            probe_fails: false,
            busy_pool: None,
            interrupt_on_upload: false,
            interrupt_on_start: false,
            fill_on_upload: false,
            race: false,
            raced: Mutex::new(Default::default()),
            lose_at: None,
            lost: Default::default(),
            domain_reads: AtomicUsize::new(0),
            _dir: dir,
        }
    }

    /// Whether this call races (once per object).
    fn races(&self, xml: &str) -> bool {
        self.race && self.raced.lock().unwrap().insert(xml.to_string())
    }

    /// An error when the connection is lost, as the real `Libvirt` reports it.
    fn reach(&self, action: &'static str, object: &str) -> Result<()> {
        if !self.lost.load(Ordering::SeqCst) {
            return Ok(());
        }
        let failed = LibvirtError::Call {
            action,
            object: object.to_string(),
            message: "End of file while reading data: Input/output error".into(),
            code: 38,
        };
        Err(failed.on_connection(self.uri(), false))
    }

    fn change(&self, what: &str) -> Result<()> {
        let n = self.changes.fetch_add(1, Ordering::SeqCst) + 1;
        if self.lose_at == Some(n) {
            self.lost.store(true, Ordering::SeqCst);
        }
        self.reach("change", what)?;
        if self.fail_at == Some(n) {
            return Err(LibvirtError::Call {
                action: "injected failure at",
                object: format!("change {n} ({what})"),
                message: "fault injection".into(),
                code: 1,
            });
        }
        Ok(())
    }
}

impl Hypervisor for TestHost {
    fn uri(&self) -> &str {
        self.inner.uri()
    }
    fn is_alive(&self) -> bool {
        !self.lost.load(Ordering::SeqCst)
    }
    fn free_memory(&self) -> Result<Option<u64>> {
        Ok(self.free_memory)
    }
    fn node_size(&self) -> Result<lab::libvirt::NodeSize> {
        self.inner.node_size()
    }
    fn probe_capabilities(&self) -> Result<()> {
        if self.probe_fails {
            return Err(LibvirtError::Call {
                action: "read the emulator capabilities of",
                object: self.uri().into(),
                message: "fault injection".into(),
                code: 1,
            });
        }
        // The test driver has host capabilities but no domain capabilities: the real
        // call must take that as probed.
        self.inner.probe_capabilities()
    }
    fn networks(&self) -> Result<Vec<Found<bool>>> {
        self.reach("list networks on", self.uri())?;
        self.inner.networks()
    }
    fn define_network(&self, xml: &str) -> Result<()> {
        self.change("define network")?;
        if self.races(xml) {
            self.inner.define_network(xml)?;
        }
        self.inner.define_network(xml)
    }
    fn start_network(&self, name: &str) -> Result<()> {
        self.change("start network")?;
        self.inner.start_network(name)
    }
    fn remove_network(&self, name: &str) -> Result<()> {
        self.reach("remove network", name)?;
        self.inner.remove_network(name)
    }
    fn pool(&self, name: &str) -> Result<Option<PoolFound>> {
        self.reach("find pool", name)?;
        if self.busy_pool.as_deref() == Some(name) {
            return Err(LibvirtError::Call {
                action: "refresh pool",
                object: name.into(),
                message: format!("internal error: pool '{name}' has asynchronous jobs running."),
                code: 1,
            });
        }
        self.inner.pool(name)
    }
    fn create_pool(&self, xml: &str) -> Result<()> {
        self.change("create pool")?;
        if self.races(xml) {
            self.inner.create_pool(xml)?;
        }
        self.inner.create_pool(xml)
    }
    fn start_pool(&self, name: &str) -> Result<()> {
        self.reach("start pool", name)?;
        self.inner.start_pool(name)
    }
    fn create_volume(&self, pool: &str, xml: &str) -> Result<String> {
        self.change("create volume")?;
        if self.races(xml) {
            self.inner.create_volume(pool, xml)?;
        }
        self.inner.create_volume(pool, xml)
    }
    fn upload_volume(&self, pool: &str, volume: &str, data: &mut dyn Read, len: u64) -> Result<()> {
        self.change("upload")?;
        if self.interrupt_on_upload {
            lab::interrupt::request();
        }
        let found = self.inner.pool(pool)?.unwrap();
        assert!(found.volumes.contains(&volume.to_string()));
        if self.fill_on_upload && !found.volumes.iter().any(|v| v == "filler") {
            let xml = lab::render::libvirt::raw_volume_xml("filler", found.available - 1000);
            self.inner.create_volume(pool, &xml)?;
        }
        let mut buf = Vec::new();
        data.read_to_end(&mut buf).map_err(|e| LibvirtError::Call {
            action: "upload to",
            object: volume.into(),
            message: e.to_string(),
            code: 1,
        })?;
        assert_eq!(buf.len() as u64, len, "upload of {volume}: length");
        self.uploads.lock().unwrap().push((volume.to_string(), len));
        Ok(())
    }
    fn delete_volume(&self, pool: &str, volume: &str) -> Result<()> {
        self.reach("delete volume", volume)?;
        self.inner.delete_volume(pool, volume)
    }
    fn pools(&self) -> Result<Vec<String>> {
        self.reach("list pools on", self.uri())?;
        self.inner.pools()
    }
    fn copy_volume(&self, pool: &str, xml: &str, from: (&str, &str)) -> Result<()> {
        self.change("copy volume")?;
        self.copies
            .lock()
            .unwrap()
            .push((format!("{}/{}", from.0, from.1), pool.to_string()));
        // The test driver copies only within one pool: the copy is made as a new volume
        // (the real copy runs against libvirtd in the end-to-end instances test).
        let source = self
            .inner
            .pool(from.0)?
            .map(|p| p.volumes)
            .unwrap_or_default();
        assert!(source.iter().any(|v| v == from.1), "no {from:?} to copy");
        self.inner.create_volume(pool, xml).map(drop)
    }
    fn read_volume(&self, pool: &str, volume: &str, offset: u64) -> Result<Vec<u8>> {
        // The test driver has no download: the bytes are the volume's name (the real
        // download runs against libvirtd in the end-to-end test).
        let found = self
            .inner
            .pool(pool)?
            .is_some_and(|p| p.volumes.iter().any(|v| v == volume));
        if !found {
            return self.inner.read_volume(pool, volume, offset);
        }
        let text = format!("{pool}/{volume}\n").into_bytes();
        Ok(text.get(offset as usize..).unwrap_or_default().to_vec())
    }
    fn remove_pool(&self, name: &str) -> Result<()> {
        self.reach("remove pool", name)?;
        self.inner.remove_pool(name)
    }
    fn domains(&self) -> Result<Vec<Found<RunState>>> {
        // Counted once done: a test that waits for a reading and then changes a domain must
        // not change it under the reading it waited for.
        let read = self
            .reach("list domains on", self.uri())
            .and_then(|_| self.inner.domains());
        self.domain_reads.fetch_add(1, Ordering::SeqCst);
        read
    }
    fn define_domain(&self, xml: &str) -> Result<()> {
        self.change("define domain")?;
        if self.races(xml) {
            self.inner.define_domain(xml)?;
            self.inner.start_domain(&domain_name(xml))?;
        }
        self.inner.define_domain(xml)
    }
    fn start_domain(&self, name: &str) -> Result<()> {
        self.change("start domain")?;
        if self.interrupt_on_start {
            lab::interrupt::request();
        }
        self.inner.start_domain(name)
    }
    fn suspend_domain(&self, name: &str) -> Result<()> {
        self.inner.suspend_domain(name)
    }
    fn resume_domain(&self, name: &str) -> Result<()> {
        self.reach("resume domain", name)?;
        self.inner.resume_domain(name)
    }
    fn remove_domain(&self, name: &str) -> Result<()> {
        self.reach("remove domain", name)?;
        self.inner.remove_domain(name)
    }
    fn managed_save(&self, name: &str) -> Result<()> {
        self.change("managed save")?;
        self.inner.managed_save(name)
    }
    fn remove_managed_save(&self, name: &str) -> Result<()> {
        self.inner.remove_managed_save(name)
    }
    fn shutdown_domain(&self, name: &str) -> Result<()> {
        self.change("shutdown")?;
        self.inner.shutdown_domain(name)
    }
    fn destroy_domain(&self, name: &str) -> Result<()> {
        self.inner.destroy_domain(name)
    }
    fn snapshots(&self, domain: &str) -> Result<Vec<String>> {
        self.reach("list snapshots of", domain)?;
        self.inner.snapshots(domain)
    }
    fn create_snapshot(&self, domain: &str, xml: &str) -> Result<()> {
        self.change("create snapshot")?;
        self.inner.create_snapshot(domain, xml)
    }
    fn revert_snapshot(&self, domain: &str, snapshot: &str) -> Result<()> {
        self.inner.revert_snapshot(domain, snapshot)
    }
    fn delete_snapshot(&self, domain: &str, snapshot: &str) -> Result<()> {
        self.inner.delete_snapshot(domain, snapshot)
    }
    fn console(&self, domain: &str) -> Result<Box<dyn lab::libvirt::Console>> {
        self.inner.console(domain)
    }
    fn sync_clock(&self, domain: &str) -> Result<()> {
        if self.no_agent {
            return Err(LibvirtError::Call {
                action: "set the clock of",
                object: domain.into(),
                message: "guest agent is not connected".into(),
                code: 86,
            });
        }
        self.inner.sync_clock(domain)
    }
}

pub fn domain_name(xml: &str) -> String {
    let start = xml.find("<name>").unwrap() + "<name>".len();
    xml[start..start + xml[start..].find("</name>").unwrap()].to_string()
}

/// Progress events, kept for asserts.
#[derive(Default)]
pub struct Events(pub Mutex<Vec<Work>>);

impl Progress for Events {
    fn event(&self, e: Event) {
        match e {
            Event::Work(w) => self.0.lock().unwrap().push(w),
            other => panic!("the lifecycle reports work on objects only: {other:?}"),
        }
    }
}

impl Events {
    /// Names of the objects an action happened to, in order.
    pub fn names(&self, action: lifecycle::Action) -> Vec<String> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .filter(|e| e.action == action)
            .map(|e| e.name.clone())
            .collect()
    }

    pub fn actions(&self) -> Vec<lifecycle::Action> {
        self.0.lock().unwrap().iter().map(|e| e.action).collect()
    }
}

pub struct Fixture {
    pub lab: Lab,
    pub ctx: RenderContext,
    pub image: PathBuf,
    /// The image's sha256 as the cache records it (`None`: an image given by path).
    pub image_sha256: Option<String>,
    _dir: tempfile::TempDir,
}

pub fn fixture() -> Fixture {
    let lab = common::lab("openstack-debian12");
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("debian12.qcow2");
    std::fs::write(&image, vec![0x51u8; 100_000]).unwrap();
    let mut ctx = common::context(&lab);
    ctx.pool_dir = dir.path().join("pool");
    Fixture {
        lab,
        ctx,
        image,
        image_sha256: None,
        _dir: dir,
    }
}

pub fn up(
    hv: &TestHost,
    f: &Fixture,
    events: &Events,
) -> std::result::Result<bool, LifecycleError> {
    let opts = UpOptions {
        image: &f.image,
        image_sha256: f.image_sha256.as_deref(),
        check_routes: false,
        recreate: &[],
        snapshot: Some(lifecycle::UP_SNAPSHOT),
    };
    lifecycle::up(hv, &f.lab, &f.ctx, &opts, events)
}

/// `lab down` of the fixture's lab by its own state; how many objects it removed.
pub fn down(hv: &TestHost, f: &Fixture) -> usize {
    let owner = Some(f.ctx.secrets.owner.as_str());
    lifecycle::down(
        hv,
        &f.lab.name,
        owner,
        Some(&f.ctx.pool_dir),
        Some(&f.ctx.log_dir),
        &Events::default(),
    )
    .unwrap()
}

/// Everything named like a lab object on the host.
pub fn leftovers(hv: &TestHost, lab: &str) -> Vec<String> {
    let prefix = format!("lab-{lab}");
    let mut out: Vec<String> = hv
        .domains()
        .unwrap()
        .into_iter()
        .map(|d| format!("domain {}", d.name))
        .collect();
    out.extend(
        hv.networks()
            .unwrap()
            .into_iter()
            .map(|n| format!("network {}", n.name)),
    );
    for pool in [names::pool(lab), names::log_pool(lab)] {
        if let Some(p) = hv.pool(&pool).unwrap() {
            out.push(format!("pool {} with {:?}", p.name, p.volumes));
        }
    }
    out.retain(|o| o.contains(&prefix));
    out
}
