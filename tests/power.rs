//! `lab stop` and `lab start` against libvirt's own test driver, each test on a private
//! `test:///<tmp>/node.xml` host: managed saves, shutdowns, a host reboot (networks and
//! domains inactive), snapshots of a stopped lab, and status derived from libvirt.

mod common;

use std::time::Duration;

use lab::libvirt::{Hypervisor, RunState};
use lab::lifecycle::{self, Action, LifecycleError, StopMode};
use lab::names;

#[path = "common/testhost.rs"]
mod testhost;

use testhost::*;

fn states(hv: &TestHost, f: &Fixture) -> Vec<Option<RunState>> {
    let status = lifecycle::status(hv, &f.lab).unwrap();
    status.nodes.iter().map(|n| n.state).collect()
}

#[test]
fn stop_saves_every_node_and_start_restores_each_with_its_clock_set() {
    let (hv, f) = (TestHost::new(), fixture());
    up(&hv, &f, &Events::default()).unwrap();
    let events = Events::default();
    let report = lifecycle::stop(&hv, &f.lab, StopMode::Save, &events).unwrap();
    assert_eq!(report.stopped.len(), 2, "{report:?}");
    assert_eq!(events.names(Action::Saved).len(), 2);
    assert_eq!(states(&hv, &f), [Some(RunState::Saved); 2]);
    let status = lifecycle::status(&hv, &f.lab).unwrap();
    assert!(lifecycle::is_stopped(&status));
    assert!(
        status.networks.iter().all(|n| n.active == Some(true)),
        "networks stay"
    );

    let again = lifecycle::stop(&hv, &f.lab, StopMode::Save, &Events::default()).unwrap();
    assert!(
        again.stopped.is_empty() && again.already.len() == 2,
        "{again:?}"
    );

    let events = Events::default();
    let started = lifecycle::start(&hv, &f.lab, &events).unwrap();
    assert_eq!(started.restored.len(), 2, "{started:?}");
    assert!(started.booted.is_empty());
    assert_eq!(events.names(Action::Restored).len(), 2);
    let due = started.clock_due();
    assert_eq!(due.len(), 2, "restored clocks are due: {started:?}");
    let unset = lifecycle::set_clocks(&hv, &due, &events);
    assert!(unset.is_empty(), "the test driver sets clocks: {unset:?}");
    assert_eq!(
        events.names(Action::ClockSet).len(),
        2,
        "restored clocks are set"
    );
    assert_eq!(states(&hv, &f), [Some(RunState::Running); 2]);
    assert!(!lifecycle::is_stopped(
        &lifecycle::status(&hv, &f.lab).unwrap()
    ));

    let idle = lifecycle::start(&hv, &f.lab, &Events::default()).unwrap();
    assert!(!idle.changed(), "a running lab: nothing to start: {idle:?}");
}

#[test]
fn shutdown_powers_off_and_start_boots_without_touching_clocks() {
    let (hv, f) = (TestHost::new(), fixture());
    up(&hv, &f, &Events::default()).unwrap();
    let mode = StopMode::Shutdown {
        grace: Duration::from_secs(5),
    };
    let events = Events::default();
    let report = lifecycle::stop(&hv, &f.lab, mode, &events).unwrap();
    assert_eq!(report.stopped.len(), 2);
    assert!(
        report.forced.is_empty(),
        "the test driver's guests obey: {report:?}"
    );
    assert_eq!(events.names(Action::ShutDown).len(), 2);
    assert_eq!(states(&hv, &f), [Some(RunState::ShutOff); 2]);

    let events = Events::default();
    let started = lifecycle::start(&hv, &f.lab, &events).unwrap();
    assert_eq!(started.booted.len(), 2, "{started:?}");
    assert!(
        started.clock_due().is_empty(),
        "a boot reads the host's clock: {started:?}"
    );
}

#[test]
fn after_a_host_reboot_start_brings_networks_up_before_the_nodes() {
    let (hv, f) = (TestHost::new(), fixture());
    up(&hv, &f, &Events::default()).unwrap();
    // A reboot: every domain off, every network inactive (no autostart).
    for d in hv.domains().unwrap() {
        hv.inner.destroy_domain(&d.name).unwrap();
    }
    for n in &f.lab.networks {
        virt_net_destroy(&hv, &names::network(&f.lab.name, &n.name));
    }
    let status = lifecycle::status(&hv, &f.lab).unwrap();
    assert!(lifecycle::is_stopped(&status));
    assert!(status.networks.iter().all(|n| n.active == Some(false)));

    let events = Events::default();
    let started = lifecycle::start(&hv, &f.lab, &events).unwrap();
    assert_eq!(
        started.started_objects.len(),
        f.lab.networks.len(),
        "{started:?}"
    );
    let order = events.0.lock().unwrap().clone();
    let last_network = order
        .iter()
        .rposition(|e| e.kind == "network" && e.action == Action::Started)
        .unwrap();
    let first_domain = order
        .iter()
        .position(|e| e.kind == "domain" && e.action == Action::Started)
        .unwrap();
    assert!(last_network < first_domain, "{order:?}");
    let status = lifecycle::status(&hv, &f.lab).unwrap();
    assert!(status.networks.iter().all(|n| n.active == Some(true)));
    assert_eq!(states(&hv, &f), [Some(RunState::Running); 2]);
}

#[test]
fn a_stopped_lab_refuses_a_snapshot_and_resets_to_one() {
    let (hv, f) = (TestHost::new(), fixture());
    up(&hv, &f, &Events::default()).unwrap();
    lifecycle::save_snapshot(&hv, &f.lab, "ex1", &Events::default()).unwrap();
    lifecycle::stop(&hv, &f.lab, StopMode::Save, &Events::default()).unwrap();
    let err = lifecycle::save_snapshot(&hv, &f.lab, "ex2", &Events::default()).unwrap_err();
    assert!(matches!(err, LifecycleError::Stopped { .. }), "{err}");
    assert!(err.to_string().contains("`lab start` it first"), "{err}");

    let events = Events::default();
    lifecycle::reset(&hv, &f.lab, "ex1", &events).unwrap();
    assert_eq!(events.names(Action::Reverted).len(), 2);
    assert_eq!(states(&hv, &f), [Some(RunState::Running); 2]);
}

#[test]
fn stop_and_start_of_a_lab_that_is_not_up_say_so() {
    let (hv, f) = (TestHost::new(), fixture());
    let err = lifecycle::stop(&hv, &f.lab, StopMode::Save, &Events::default()).unwrap_err();
    assert!(err.to_string().contains("run `lab up` first"), "{err}");
    let err = lifecycle::start(&hv, &f.lab, &Events::default()).unwrap_err();
    assert!(err.to_string().contains("run `lab up` first"), "{err}");
}

fn virt_net_destroy(hv: &TestHost, name: &str) {
    let xml = hv
        .networks()
        .unwrap()
        .into_iter()
        .find(|n| n.name == name)
        .unwrap()
        .xml;
    hv.inner.remove_network(name).unwrap();
    hv.inner.define_network(&xml).unwrap();
}
