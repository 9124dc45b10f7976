//! The lab lifecycle against libvirt's own test driver, each test on a private
//! `test:///<tmp>/node.xml` host: converge, down, ownership guard, snapshots and reset,
//! and a failure at every step followed by a re-run that converges and a down that leaves
//! nothing.

mod common;

use std::sync::atomic::Ordering;

use lab::libvirt::{Hypervisor, RunState};
use lab::lifecycle::{self, Clash, LifecycleError, UpOptions};
use lab::names;

#[path = "common/testhost.rs"]
mod testhost;

use testhost::*;

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
    assert_eq!(
        status.pool,
        Some(8),
        "image, two seeds, two overlays, a completion marker per upload"
    );
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
    let started: Vec<String> = events.names(lifecycle::Action::Started);
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
    let removed = down(&hv, &f);
    assert_eq!(
        removed,
        2 + 2 + 8 + 1 + 1,
        "domains, networks, volumes, pool, log pool"
    );
    assert!(lifecycle::status(&hv, &f.lab).unwrap().is_gone());
    assert_eq!(leftovers(&hv, &f.lab.name), Vec::<String>::new());
    assert_eq!(
        lifecycle::down(
            &hv,
            &f.lab.name,
            Some(&f.ctx.secrets.owner),
            None,
            None,
            &Events::default()
        )
        .unwrap(),
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
    lifecycle::down(
        &hv,
        &f.lab.name,
        Some(&f.ctx.secrets.owner),
        None,
        None,
        &Events::default(),
    )
    .unwrap();
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
    let reverted = lifecycle::reset(&hv, &f.lab, "ex1", &events).unwrap();
    assert_eq!(reverted.len(), 2, "{reverted:?}");
    let unset = lifecycle::set_clocks(&hv, &reverted, &events);
    assert!(unset.is_empty(), "the test driver sets clocks: {unset:?}");
    let acts = events.actions();
    let count = |act| acts.iter().filter(|a| **a == act).count();
    assert_eq!(count(lifecycle::Action::Reverted), 2);
    assert_eq!(count(lifecycle::Action::ClockSet), 2, "{acts:?}");
    let first_set = acts
        .iter()
        .position(|a| *a == lifecycle::Action::ClockSet)
        .unwrap();
    assert!(
        acts[..first_set].contains(&lifecycle::Action::Reverted),
        "a clock is set after its node's revert: {acts:?}"
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
        down(&hv, &f);
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
    lifecycle::save_snapshot(&hv, &f.lab, "ex1", &Events::default()).unwrap();
    hv.no_agent = true;
    let reverted = lifecycle::reset(&hv, &f.lab, "ex1", &Events::default()).unwrap();
    let failed = lifecycle::set_clocks(&hv, &reverted, &Events::default());
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
fn objects_that_appear_meanwhile_are_looked_at_again_not_failures() {
    let (mut hv, f) = (TestHost::new(), fixture());
    hv.race = true;
    up(&hv, &f, &Events::default()).unwrap();
    let status = lifecycle::status(&hv, &f.lab).unwrap();
    assert!(
        status
            .nodes
            .iter()
            .all(|n| n.state == Some(RunState::Running)),
        "{status:?}"
    );
    hv.race = false;
    assert!(!up(&hv, &f, &Events::default()).unwrap(), "converged");
}

/// The pool with the image volume as a run killed mid-upload leaves it: no marker.
fn half_uploaded(hv: &TestHost, f: &Fixture) -> String {
    let pool = names::pool(&f.lab.name);
    hv.inner
        .create_pool(&lab::render::libvirt::pool_xml(&f.lab, &f.ctx))
        .unwrap();
    let image = names::image_volume(&f.lab.image.name);
    hv.inner
        .create_volume(&pool, &lab::render::libvirt::raw_volume_xml(&image, 350))
        .unwrap();
    image
}

#[test]
fn a_half_uploaded_image_is_uploaded_again_and_then_trusted() {
    let (hv, f) = (TestHost::new(), fixture());
    let image = half_uploaded(&hv, &f);
    let events = Events::default();
    up(&hv, &f, &events).unwrap();
    let uploads = hv.uploads.lock().unwrap().clone();
    assert!(
        uploads
            .iter()
            .any(|(n, len)| *n == image && *len == 100_000),
        "{uploads:?}"
    );
    let removed: Vec<String> = events.names(lifecycle::Action::Removed);
    assert_eq!(
        removed,
        std::slice::from_ref(&image),
        "the half-made volume went first"
    );
    let volumes = hv.pool(&names::pool(&f.lab.name)).unwrap().unwrap().volumes;
    assert!(
        volumes.contains(&names::complete_marker(&image)),
        "{volumes:?}"
    );
    hv.uploads.lock().unwrap().clear();
    assert!(!up(&hv, &f, &Events::default()).unwrap());
    assert!(hv.uploads.lock().unwrap().is_empty(), "complete: not again");
}

#[test]
fn a_lab_file_that_differs_is_refused_until_the_node_is_recreated() {
    let (hv, mut f) = (TestHost::new(), fixture());
    up(&hv, &f, &Events::default()).unwrap();
    f.lab.nodes[1].memory = lab::model::units::ByteSize(3 << 30);
    f.lab.nodes[1].vcpus = 2;
    let err = up(&hv, &f, &Events::default()).unwrap_err();
    let LifecycleError::Drift { diffs, .. } = &err else {
        panic!("{err}")
    };
    use lifecycle::drift::Difference;
    assert_eq!(
        diffs,
        &[
            Difference::Memory {
                node: "compute1".into(),
                have: lab::model::units::ByteSize(2 << 30),
                want: lab::model::units::ByteSize(3 << 30)
            },
            Difference::Vcpus {
                node: "compute1".into(),
                have: 1,
                want: 2
            }
        ]
    );
    assert!(err.to_string().contains("--recreate NODE"), "{err}");
    let recreate = ["compute1".to_string()];
    let opts = UpOptions {
        image: &f.image,
        image_sha256: None,
        check_routes: false,
        recreate: &recreate,
        snapshot: Some(lifecycle::UP_SNAPSHOT),
    };
    hv.uploads.lock().unwrap().clear();
    assert!(lifecycle::up(&hv, &f.lab, &f.ctx, &opts, &Events::default()).unwrap());
    let uploads = hv.uploads.lock().unwrap().clone();
    let names_up: Vec<&str> = uploads.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names_up,
        ["compute1-seed.iso"],
        "a new seed, the image kept"
    );
    let dom = names::domain(&f.lab.name, "compute1");
    let xml = hv
        .domains()
        .unwrap()
        .into_iter()
        .find(|d| d.name == dom)
        .unwrap()
        .xml;
    let owner = lab::render::libvirt::read_owner(&xml).unwrap();
    assert_eq!(owner.spec.unwrap().generation, 2, "a new instance-id");
    assert_eq!(
        lifecycle::drift::domain_facts(&xml).memory_kib,
        Some(3 << 20)
    );
    assert!(!up(&hv, &f, &Events::default()).unwrap(), "converged");
}

#[test]
fn another_state_directory_owns_its_lab_objects() {
    let (hv, f) = (TestHost::new(), fixture());
    up(&hv, &f, &Events::default()).unwrap();
    let mut other = fixture();
    other.ctx.pool_dir = f.ctx.pool_dir.clone();
    other.ctx.secrets = lab::secrets::LabSecrets::from_seed(&other.lab, &[9u8; 32]);
    assert_ne!(other.ctx.secrets.owner, f.ctx.secrets.owner);
    let err = up(&hv, &other, &Events::default()).unwrap_err();
    let LifecycleError::Clashes { clashes, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(clashes.len(), 4, "two domains, two networks: {clashes:?}");
    assert!(
        clashes
            .iter()
            .all(|c| matches!(c, Clash::OtherState { owner, .. } if *owner == f.ctx.secrets.owner)),
        "{clashes:?}"
    );
    assert!(err.to_string().contains("another state directory"), "{err}");
    let before = leftovers(&hv, &f.lab.name);
    let removed = lifecycle::down(
        &hv,
        &f.lab.name,
        Some(&other.ctx.secrets.owner),
        Some(&f.ctx.pool_dir),
        Some(&f.ctx.log_dir),
        &Events::default(),
    )
    .unwrap();
    assert_eq!(removed, 0);
    assert_eq!(
        leftovers(&hv, &f.lab.name),
        before,
        "down of the other kept all"
    );
    // Without a state directory, down removes every object named for the lab.
    lifecycle::down(
        &hv,
        &f.lab.name,
        None,
        Some(&f.ctx.pool_dir),
        Some(&f.ctx.log_dir),
        &Events::default(),
    )
    .unwrap();
    assert_eq!(leftovers(&hv, &f.lab.name), Vec::<String>::new());
}

#[test]
fn a_node_added_to_the_lab_file_is_created_alone() {
    let (hv, mut f) = (TestHost::new(), fixture());
    up(&hv, &f, &Events::default()).unwrap();
    let mut node = f.lab.nodes[1].clone();
    node.name = "compute2".into();
    for (nic, address) in node.nics.iter_mut().zip(["203.0.113.32", "10.0.0.32"]) {
        nic.address = address.parse().unwrap();
        nic.mac = lab::model::units::Mac::derive(&f.lab.name, "compute2", &nic.network);
    }
    f.lab.nodes.push(node);
    f.ctx.secrets = lab::secrets::LabSecrets::from_seed(&f.lab, &common::SEED);
    let events = Events::default();
    assert!(up(&hv, &f, &events).unwrap());
    let created = events.names(lifecycle::Action::Created);
    assert_eq!(
        created,
        [
            "compute2-seed.iso",
            "compute2.qcow2",
            "lab-ocata-deb-compute2"
        ],
        "only the new node's objects"
    );
    assert!(!up(&hv, &f, &Events::default()).unwrap(), "converged");
}

#[test]
fn serial_logs_live_in_a_log_pool_in_the_log_directory_read_through_libvirt() {
    let (hv, f) = (TestHost::new(), fixture());
    up(&hv, &f, &Events::default()).unwrap();
    let pool = names::log_pool(&f.lab.name);
    let found = hv.pool(&pool).unwrap().expect("up made the log pool");
    assert_eq!(
        std::path::Path::new(&found.path),
        f.ctx.log_dir.join(&pool),
        "in the log directory, where libvirt's log daemon writes"
    );
    assert_eq!(lifecycle::status(&hv, &f.lab).unwrap().log_pool, Some(0));
    let source = lab::app::serial_source(&f.lab.name, "controller");
    let read = |offset| lab::app::read_log(Some(&hv as &dyn Hypervisor), &source, offset);
    assert_eq!(
        read(0).unwrap_err(),
        "not written yet: the node has not started"
    );
    // The log daemon's file, as the test driver holds one: a volume of the pool.
    let xml = lab::render::libvirt::raw_volume_xml("controller-serial.log", 0);
    hv.create_volume(&pool, &xml).unwrap();
    let whole = format!("{pool}/controller-serial.log\n");
    assert_eq!(read(0).unwrap(), whole.as_bytes());
    assert_eq!(
        read(4).unwrap(),
        &whole.as_bytes()[4..],
        "from an offset on"
    );
    assert_eq!(down(&hv, &f), 2 + 2 + 8 + 1 + 1 + 1, "the log went too");
    assert!(read(0).unwrap_err().starts_with("no log pool"));
}

#[test]
fn a_provisioning_log_is_read_from_where_the_last_read_ended() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("controller.log");
    let source = lab::app::LogSource::File(path.clone());
    let err = lab::app::read_log(None, &source, 0).unwrap_err();
    assert!(err.contains("never ran a command"), "{err}");
    std::fs::write(&path, "==> one\n==> two\n").unwrap();
    assert_eq!(
        lab::app::read_log(None, &source, 0).unwrap(),
        b"==> one\n==> two\n"
    );
    assert_eq!(lab::app::read_log(None, &source, 8).unwrap(), b"==> two\n");
    assert_eq!(lab::app::read_log(None, &source, 16).unwrap(), b"");
}
