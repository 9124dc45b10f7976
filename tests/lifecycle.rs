//! The lab lifecycle against libvirt's own test driver, each test on a private
//! `test:///<tmp>/node.xml` host: converge, down, ownership guard, snapshots and reset,
//! and a failure at every step followed by a re-run that converges and a down that leaves
//! nothing.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use lab::libvirt::{Found, Hypervisor, Libvirt, LibvirtError, PoolFound, Result, RunState};
use lab::lifecycle::{self, Clash, Event, LifecycleError, Progress, UpOptions};
use lab::model::Lab;
use lab::names;
use lab::render::RenderContext;

/// The real [`Libvirt`] on a private test-driver host, with two test powers:
/// - `fail_at`: the n-th changing call fails (fault injection);
/// - uploads are counted and consumed, since the test driver has no volume upload (the real
///   upload runs against libvirtd in the end-to-end test).
struct TestHost {
    inner: Libvirt,
    fail_at: Option<usize>,
    changes: AtomicUsize,
    uploads: Mutex<Vec<(String, u64)>>,
    free_memory: Option<u64>,
    /// Guests without a guest agent: setting the clock fails.
    no_agent: bool,
    /// The capabilities probe fails.
    probe_fails: bool,
    _dir: tempfile::TempDir,
}

impl TestHost {
    fn new() -> TestHost {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("node.xml");
        std::fs::write(&node, "<node/>").unwrap();
        let inner = Libvirt::open(&format!("test://{}", node.display())).unwrap();
        TestHost {
            inner,
            fail_at: None,
            changes: AtomicUsize::new(0),
            uploads: Mutex::new(Vec::new()),
            free_memory: None,
            no_agent: false,
            probe_fails: false,
            _dir: dir,
        }
    }

    fn change(&self, what: &str) -> Result<()> {
        let n = self.changes.fetch_add(1, Ordering::SeqCst) + 1;
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
    fn free_memory(&self) -> Result<Option<u64>> {
        Ok(self.free_memory)
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
        self.inner.networks()
    }
    fn define_network(&self, xml: &str) -> Result<()> {
        self.change("define network")?;
        self.inner.define_network(xml)
    }
    fn start_network(&self, name: &str) -> Result<()> {
        self.change("start network")?;
        self.inner.start_network(name)
    }
    fn remove_network(&self, name: &str) -> Result<()> {
        self.inner.remove_network(name)
    }
    fn pool(&self, name: &str) -> Result<Option<PoolFound>> {
        self.inner.pool(name)
    }
    fn create_pool(&self, xml: &str) -> Result<()> {
        self.change("create pool")?;
        self.inner.create_pool(xml)
    }
    fn start_pool(&self, name: &str) -> Result<()> {
        self.inner.start_pool(name)
    }
    fn create_volume(&self, pool: &str, xml: &str) -> Result<String> {
        self.change("create volume")?;
        self.inner.create_volume(pool, xml)
    }
    fn upload_volume(&self, pool: &str, volume: &str, data: &mut dyn Read, len: u64) -> Result<()> {
        self.change("upload")?;
        assert!(
            self.inner
                .pool(pool)?
                .unwrap()
                .volumes
                .contains(&volume.to_string())
        );
        let mut buf = Vec::new();
        data.read_to_end(&mut buf).unwrap();
        assert_eq!(buf.len() as u64, len, "upload of {volume}: length");
        self.uploads.lock().unwrap().push((volume.to_string(), len));
        Ok(())
    }
    fn delete_volume(&self, pool: &str, volume: &str) -> Result<()> {
        self.inner.delete_volume(pool, volume)
    }
    fn remove_pool(&self, name: &str) -> Result<()> {
        self.inner.remove_pool(name)
    }
    fn domains(&self) -> Result<Vec<Found<RunState>>> {
        self.inner.domains()
    }
    fn define_domain(&self, xml: &str) -> Result<()> {
        self.change("define domain")?;
        self.inner.define_domain(xml)
    }
    fn start_domain(&self, name: &str) -> Result<()> {
        self.change("start domain")?;
        self.inner.start_domain(name)
    }
    fn suspend_domain(&self, name: &str) -> Result<()> {
        self.inner.suspend_domain(name)
    }
    fn resume_domain(&self, name: &str) -> Result<()> {
        self.inner.resume_domain(name)
    }
    fn remove_domain(&self, name: &str) -> Result<()> {
        self.inner.remove_domain(name)
    }
    fn snapshots(&self, domain: &str) -> Result<Vec<String>> {
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

/// Progress events, kept for asserts.
#[derive(Default)]
struct Events(Mutex<Vec<Event>>);

impl Progress for Events {
    fn event(&self, e: Event) {
        self.0.lock().unwrap().push(e);
    }
}

impl Events {
    fn actions(&self) -> Vec<lifecycle::Action> {
        self.0.lock().unwrap().iter().map(|e| e.action).collect()
    }
}

struct Fixture {
    lab: Lab,
    ctx: RenderContext,
    image: PathBuf,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
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
        _dir: dir,
    }
}

fn up(hv: &TestHost, f: &Fixture, events: &Events) -> std::result::Result<bool, LifecycleError> {
    let opts = UpOptions {
        image: &f.image,
        check_routes: false,
    };
    lifecycle::up(hv, &f.lab, &f.ctx, &opts, events)
}

/// Everything named like a lab object on the host.
fn leftovers(hv: &TestHost, lab: &str) -> Vec<String> {
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
    if let Some(p) = hv.pool(&names::pool(lab)).unwrap() {
        out.push(format!("pool {} with {:?}", p.name, p.volumes));
    }
    out.retain(|o| o.contains(&prefix));
    out
}

#[test]
fn up_creates_everything_running_and_a_second_up_changes_nothing() {
    let (hv, f) = (TestHost::new(), fixture());
    let events = Events::default();
    assert!(up(&hv, &f, &events).unwrap(), "the first up changes things");
    let status = lifecycle::status(&hv, &f.lab).unwrap();
    assert!(
        status
            .nodes
            .iter()
            .all(|n| n.state == Some(RunState::Running)),
        "{status:?}"
    );
    assert!(
        status.networks.iter().all(|n| n.active == Some(true)),
        "{status:?}"
    );
    assert_eq!(status.pool, Some(5), "image, two seeds, two overlays");
    let uploads = hv.uploads.lock().unwrap().clone();
    let names: Vec<&str> = uploads.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"image-debian12.qcow2") && names.contains(&"controller-seed.iso"),
        "{names:?}"
    );
    assert!(
        uploads
            .iter()
            .any(|(n, len)| n == "image-debian12.qcow2" && *len == 100_000)
    );
    let changes = hv.changes.load(Ordering::SeqCst);

    let again = Events::default();
    assert!(!up(&hv, &f, &again).unwrap(), "a second up changes nothing");
    assert_eq!(
        hv.changes.load(Ordering::SeqCst),
        changes,
        "no changing call"
    );
    assert!(
        again
            .actions()
            .iter()
            .all(|a| *a == lifecycle::Action::Unchanged),
        "{:?}",
        again.actions()
    );
}

#[test]
fn up_reports_the_qemu_probe_and_the_bytes_of_the_image_upload() {
    use lifecycle::Action::{Created, Done, Failed, Moved, Running};
    let (hv, f) = (TestHost::new(), fixture());
    let events = Events::default();
    up(&hv, &f, &events).unwrap();
    let of = |kind: &str, name: &str| -> Vec<lifecycle::Action> {
        let all = events.0.lock().unwrap();
        all.iter()
            .filter(|e| e.kind == kind && e.name == name)
            .map(|e| e.action)
            .collect()
    };
    assert_eq!(of("probe", "qemu capabilities"), [Running, Done]);
    // Calls that wait on QEMU are announced: a define can wait for minutes.
    let controller = names::domain(&f.lab.name, "controller");
    assert_eq!(
        of("domain", &controller),
        [Running, Created, Running, lifecycle::Action::Started]
    );
    let image = of("volume", "image-debian12.qcow2");
    let all_bytes = Moved {
        done: 100_000,
        total: Some(100_000),
    };
    assert_eq!(image[image.len() - 2..], [all_bytes, Created], "{image:?}");
    assert!(
        image[..image.len() - 1]
            .iter()
            .all(|a| matches!(a, Moved { .. })),
        "{image:?}"
    );
    let seed = of("volume", "controller-seed.iso");
    assert_eq!(seed.last(), Some(&Created));
    assert!(
        seed.iter()
            .any(|a| matches!(a, Moved { done, total } if Some(*done) == *total)),
        "{seed:?}"
    );

    let mut hv = TestHost::new();
    hv.probe_fails = true;
    let events = Events::default();
    up(&hv, &f, &events).unwrap();
    let probe: Vec<_> = events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.kind == "probe")
        .map(|e| e.action)
        .collect();
    assert_eq!(
        probe,
        [Running, Failed],
        "a failed probe is reported, not fatal"
    );
}

#[test]
fn up_restarts_a_stopped_node_without_redefining_it() {
    let (hv, f) = (TestHost::new(), fixture());
    up(&hv, &f, &Events::default()).unwrap();
    let name = names::domain(&f.lab.name, "compute1");
    // Stop it behind lab's back (the domain stays defined).
    virt_destroy(&hv, &name);
    let status = lifecycle::status(&hv, &f.lab).unwrap();
    assert_eq!(status.nodes[1].state, Some(RunState::ShutOff));
    let events = Events::default();
    assert!(up(&hv, &f, &events).unwrap());
    let started: Vec<String> = events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.action == lifecycle::Action::Started)
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(started, [name]);
}

fn virt_destroy(hv: &TestHost, name: &str) {
    let xml = hv
        .domains()
        .unwrap()
        .into_iter()
        .find(|d| d.name == name)
        .unwrap()
        .xml;
    hv.inner.remove_domain(name).unwrap();
    hv.inner.define_domain(&xml).unwrap();
}

#[test]
fn down_removes_everything_and_status_shows_nothing() {
    let (hv, f) = (TestHost::new(), fixture());
    up(&hv, &f, &Events::default()).unwrap();
    lifecycle::save_snapshot(&hv, &f.lab, "ex1", &Events::default()).unwrap();
    let removed =
        lifecycle::down(&hv, &f.lab.name, Some(&f.ctx.pool_dir), &Events::default()).unwrap();
    assert_eq!(removed, 2 + 2 + 5 + 1, "domains, networks, volumes, pool");
    assert!(lifecycle::status(&hv, &f.lab).unwrap().is_gone());
    assert_eq!(leftovers(&hv, &f.lab.name), Vec::<String>::new());
    assert_eq!(
        lifecycle::down(&hv, &f.lab.name, None, &Events::default()).unwrap(),
        0,
        "down twice is fine"
    );
}

#[test]
fn up_refuses_objects_it_does_not_own_and_down_leaves_them() {
    let (hv, f) = (TestHost::new(), fixture());
    let name = names::domain(&f.lab.name, "controller");
    let foreign = format!(
        "<domain type='test'><name>{name}</name><memory>65536</memory><os><type>hvm</type></os></domain>"
    );
    hv.inner.define_domain(&foreign).unwrap();
    let err = up(&hv, &f, &Events::default()).unwrap_err();
    let LifecycleError::Clashes { clashes, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        clashes,
        &[Clash::Foreign {
            kind: "domain",
            name: name.clone()
        }]
    );
    assert!(
        err.to_string().contains("does not belong to this lab"),
        "{err}"
    );
    assert_eq!(
        leftovers(&hv, &f.lab.name),
        [format!("domain {name}")],
        "nothing created"
    );
    assert_eq!(
        lifecycle::status(&hv, &f.lab).unwrap().foreign,
        [format!("domain {name}")]
    );
    lifecycle::down(&hv, &f.lab.name, None, &Events::default()).unwrap();
    assert_eq!(
        leftovers(&hv, &f.lab.name),
        [format!("domain {name}")],
        "down kept it"
    );
}

#[test]
fn up_refuses_a_subnet_another_network_uses_and_memory_the_host_lacks() {
    let (mut hv, f) = (TestHost::new(), fixture());
    let other = "<network><name>default</name><ip address='10.0.0.1' prefix='24'/></network>";
    hv.inner.define_network(other).unwrap();
    hv.free_memory = Some(1 << 30);
    let err = up(&hv, &f, &Events::default()).unwrap_err();
    let LifecycleError::Clashes { clashes, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        matches!(&clashes[0], Clash::Overlap { network, other, .. } if network == "internal" && other == "default"),
        "{clashes:?}"
    );
    assert!(
        matches!(&clashes[1], Clash::Memory { need, .. } if need.bytes() == 6 << 30),
        "{clashes:?}"
    );
    assert_eq!(clashes.len(), 2);
    assert_eq!(leftovers(&hv, &f.lab.name), Vec::<String>::new());
}

#[test]
fn snapshots_save_list_reset_and_delete_lab_wide() {
    let (hv, f) = (TestHost::new(), fixture());
    up(&hv, &f, &Events::default()).unwrap();
    let events = Events::default();
    lifecycle::save_snapshot(&hv, &f.lab, "ex1", &events).unwrap();
    use lifecycle::Action::{Paused, Resumed, Saved};
    let acts = events.actions();
    assert_eq!(acts.iter().filter(|a| **a == Paused).count(), 2);
    assert_eq!(acts.iter().filter(|a| **a == Saved).count(), 2);
    assert_eq!(acts.iter().filter(|a| **a == Resumed).count(), 2);
    let last_pause = acts.iter().rposition(|a| *a == Paused).unwrap();
    let first_save = acts.iter().position(|a| *a == Saved).unwrap();
    assert!(
        last_pause < first_save,
        "every node is paused before any snapshot: {acts:?}"
    );
    lifecycle::save_snapshot(&hv, &f.lab, "ex2", &Events::default()).unwrap();
    assert_eq!(
        lifecycle::list_snapshots(&hv, &f.lab).unwrap(),
        ["ex1", "ex2"]
    );
    let err = lifecycle::save_snapshot(&hv, &f.lab, "ex1", &Events::default()).unwrap_err();
    assert!(
        matches!(err, LifecycleError::SnapshotExists(ref n) if n == "ex1"),
        "{err}"
    );

    let events = Events::default();
    lifecycle::reset(&hv, &f.lab, "ex1", &events).unwrap();
    let reverted = events
        .actions()
        .iter()
        .filter(|a| **a == lifecycle::Action::Reverted)
        .count();
    assert_eq!(reverted, 2);
    let doms: Vec<String> = f
        .lab
        .nodes
        .iter()
        .map(|n| names::domain(&f.lab.name, &n.name))
        .collect();
    assert!(
        lifecycle::sync_clocks(&hv, &doms, &events).is_empty(),
        "the test driver sets clocks"
    );
    let status = lifecycle::status(&hv, &f.lab).unwrap();
    assert!(
        status
            .nodes
            .iter()
            .all(|n| n.state == Some(RunState::Running)),
        "reset leaves nodes running"
    );

    lifecycle::delete_snapshot(&hv, &f.lab, "ex1", &Events::default()).unwrap();
    assert_eq!(lifecycle::list_snapshots(&hv, &f.lab).unwrap(), ["ex2"]);
    let err = lifecycle::reset(&hv, &f.lab, "ex1", &Events::default()).unwrap_err();
    assert!(
        matches!(err, LifecycleError::NoSuchSnapshot { .. }),
        "{err}"
    );
}

#[test]
fn snapshots_of_a_lab_that_is_not_up_say_so() {
    let (hv, f) = (TestHost::new(), fixture());
    let err = lifecycle::save_snapshot(&hv, &f.lab, "ex1", &Events::default()).unwrap_err();
    assert!(err.to_string().contains("run `lab up` first"), "{err}");
}

#[test]
fn a_failure_at_any_step_leaves_nothing_then_a_rerun_converges_and_down_cleans_up() {
    let clean = {
        let (hv, f) = (TestHost::new(), fixture());
        up(&hv, &f, &Events::default()).unwrap();
        hv.changes.load(Ordering::SeqCst)
    };
    assert!(
        clean >= 10,
        "pool, uploads, volumes, networks, domains: {clean}"
    );
    for k in 1..=clean {
        let (mut hv, f) = (TestHost::new(), fixture());
        hv.fail_at = Some(k);
        let err = up(&hv, &f, &Events::default()).unwrap_err();
        assert!(
            err.to_string().contains(&format!("change {k} ")),
            "step {k}: {err}"
        );
        assert_eq!(
            leftovers(&hv, &f.lab.name),
            Vec::<String>::new(),
            "step {k}: {err}"
        );
        hv.fail_at = None;
        up(&hv, &f, &Events::default()).unwrap();
        assert!(
            lifecycle::status(&hv, &f.lab)
                .unwrap()
                .nodes
                .iter()
                .all(|n| n.state == Some(RunState::Running))
        );
        lifecycle::down(&hv, &f.lab.name, Some(&f.ctx.pool_dir), &Events::default()).unwrap();
        assert_eq!(
            leftovers(&hv, &f.lab.name),
            Vec::<String>::new(),
            "step {k}"
        );
    }
}

#[test]
fn a_failed_snapshot_is_all_or_nothing_and_resumes_the_nodes() {
    let (mut hv, f) = (TestHost::new(), fixture());
    up(&hv, &f, &Events::default()).unwrap();
    let before = hv.changes.load(Ordering::SeqCst);
    hv.fail_at = Some(before + 2); // the second node's snapshot
    lifecycle::save_snapshot(&hv, &f.lab, "ex1", &Events::default()).unwrap_err();
    hv.fail_at = None;
    for n in &f.lab.nodes {
        let d = names::domain(&f.lab.name, &n.name);
        assert_eq!(hv.snapshots(&d).unwrap(), Vec::<String>::new(), "{d}");
    }
    let status = lifecycle::status(&hv, &f.lab).unwrap();
    assert!(
        status
            .nodes
            .iter()
            .all(|n| n.state == Some(RunState::Running)),
        "{status:?}"
    );
}

#[test]
fn clocks_without_a_guest_agent_are_reported_per_domain() {
    let (mut hv, f) = (TestHost::new(), fixture());
    up(&hv, &f, &Events::default()).unwrap();
    hv.no_agent = true;
    let doms: Vec<String> = f
        .lab
        .nodes
        .iter()
        .map(|n| names::domain(&f.lab.name, &n.name))
        .collect();
    let failed = lifecycle::sync_clocks(&hv, &doms, &Events::default());
    let mut names: Vec<&str> = failed.iter().map(|(d, _)| d.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["lab-ocata-deb-compute1", "lab-ocata-deb-controller"]
    );
    assert!(
        failed[0].1.to_string().contains("guest agent"),
        "{failed:?}"
    );
}
