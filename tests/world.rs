//! When the world around the lab fails, on libvirt's test driver: the connection lost under
//! `up` (libvirtd killed or restarted), a node powered off while it is provisioned (the
//! watch over the domains), and the next `up` of a lab with one node off.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use lab::app::{NodeError, watching};
use lab::libvirt::{Hypervisor, RunState};
use lab::lifecycle::{self, LifecycleError};
use lab::names;

#[path = "common/testhost.rs"]
mod testhost;

use testhost::*;

fn all_running(hv: &TestHost, f: &Fixture) -> bool {
    let status = lifecycle::status(hv, &f.lab).unwrap();
    status
        .nodes
        .iter()
        .all(|n| n.state == Some(RunState::Running))
}

#[test]
fn a_connection_lost_at_any_step_of_up_leads_the_error_and_keeps_what_up_made_for_the_next() {
    let clean = {
        let (hv, f) = (TestHost::new(), fixture());
        up(&hv, &f, &Events::default()).unwrap();
        hv.changes.load(Ordering::SeqCst)
    };
    for k in 1..=clean {
        let (mut hv, f) = (TestHost::new(), fixture());
        hv.lose_at = Some(k);
        let err = up(&hv, &f, &Events::default()).unwrap_err();
        let text = err.to_string();
        let first = text.lines().next().unwrap();
        let lost = format!("libvirt connection lost to {} while trying to ", hv.uri());
        assert!(first.starts_with(&lost), "step {k}: {text}");
        assert!(
            first.ends_with("is libvirtd running? start it, then run the command again"),
            "step {k}: {text}"
        );
        assert!(err.is_connection_lost(), "step {k}: {err:?}");
        // The connection comes back (a new one after libvirtd's restart).
        hv.lost.store(false, Ordering::SeqCst);
        hv.lose_at = None;
        let left = leftovers(&hv, &f.lab.name);
        match &err {
            LifecycleError::NotRolledBack { kept, .. } => {
                assert_eq!(text.lines().count(), 2, "step {k}: {text}");
                assert!(!left.is_empty(), "step {k}: {text}");
                assert!(kept.contains(" pool"), "step {k}: {kept}");
            }
            // Lost at the first change: nothing was made, nothing stays.
            other => {
                assert!(matches!(other, LifecycleError::Libvirt(_)), "{other:?}");
                assert_eq!(text.lines().count(), 1, "step {k}: {text}");
                assert_eq!(left, Vec::<String>::new(), "step {k}");
            }
        }
        up(&hv, &f, &Events::default()).unwrap();
        assert!(all_running(&hv, &f), "step {k}");
        down(&hv, &f);
        assert_eq!(
            leftovers(&hv, &f.lab.name),
            Vec::<String>::new(),
            "step {k}"
        );
    }
}

/// Runs `work` watched, on a runtime of its own, with the reads of the domains counted from
/// 0; a watch that never ends it is a failure after a minute, not a hang.
fn watched<T>(
    hv: &TestHost,
    f: &Fixture,
    work: impl Future<Output = lab::failure::Result<T>>,
) -> lab::failure::Result<T> {
    hv.domain_reads.store(0, Ordering::SeqCst);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bounded = async {
        match tokio::time::timeout(Duration::from_secs(60), work).await {
            Ok(out) => out,
            Err(_) => panic!("the watch did not end the work within a minute"),
        }
    };
    watching(&f.lab, Some(hv), &rt, bounded)
}

/// Waits until the watch has read the domains `n` times.
async fn reads(hv: &TestHost, n: usize) {
    while hv.domain_reads.load(Ordering::SeqCst) < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn a_node_powered_off_while_provisioned_ends_the_work_naming_it_and_its_state() {
    let (hv, f) = (TestHost::new(), fixture());
    up(&hv, &f, &Events::default()).unwrap();
    let compute = names::domain(&f.lab.name, "compute1");
    let err = watched(&hv, &f, async {
        reads(&hv, 1).await;
        hv.destroy_domain(&compute).unwrap(); // as `virsh destroy` does
        std::future::pending::<lab::failure::Result<()>>().await
    })
    .unwrap_err();
    let Some(NodeError::Stopped { node, state, .. }) = err.downcast_ref::<NodeError>() else {
        panic!("{err:?}")
    };
    assert_eq!((node.as_str(), state.as_str()), ("compute1", "shut off"));
    assert_eq!(
        err.to_string(),
        format!(
            "compute1 stopped while it was provisioned (domain {compute} is shut off on {}): `lab up` starts it and goes on",
            hv.uri()
        )
    );
}

#[test]
fn a_node_not_running_before_the_work_is_said_so_and_running_ones_let_it_finish() {
    let (hv, f) = (TestHost::new(), fixture());
    up(&hv, &f, &Events::default()).unwrap();
    let done = watched(&hv, &f, async {
        reads(&hv, 2).await;
        Ok(7)
    });
    assert_eq!(done.unwrap(), 7);
    let compute = names::domain(&f.lab.name, "compute1");
    hv.destroy_domain(&compute).unwrap();
    let err = watched(&hv, &f, std::future::pending::<lab::failure::Result<()>>()).unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<NodeError>(),
            Some(NodeError::NotRunning { .. })
        ),
        "{err:?}"
    );
}

#[test]
fn a_lost_connection_ends_the_watch_and_the_work_goes_on() {
    let (hv, f) = (TestHost::new(), fixture());
    up(&hv, &f, &Events::default()).unwrap();
    hv.destroy_domain(&names::domain(&f.lab.name, "compute1"))
        .unwrap();
    hv.lost.store(true, Ordering::SeqCst);
    let out = watched(&hv, &f, async {
        reads(&hv, 1).await;
        // Longer than the watch's pause between two readings: a watch still on would read.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Ok("provisioned")
    });
    assert_eq!(out.unwrap(), "provisioned");
    assert_eq!(
        hv.domain_reads.load(Ordering::SeqCst),
        1,
        "read once, then stopped"
    );
}

#[test]
fn the_next_up_starts_a_node_powered_off_while_the_other_runs() {
    let (hv, f) = (TestHost::new(), fixture());
    up(&hv, &f, &Events::default()).unwrap();
    let compute = names::domain(&f.lab.name, "compute1");
    hv.destroy_domain(&compute).unwrap();
    let status = lifecycle::status(&hv, &f.lab).unwrap();
    // Not a stopped lab (`up` would bring it back as `lab start` does): one node runs.
    assert!(!lifecycle::is_stopped(&status), "{status:?}");
    let events = Events::default();
    assert!(up(&hv, &f, &events).unwrap(), "up changed something");
    assert_eq!(events.names(lifecycle::Action::Started), [compute]);
    assert!(all_running(&hv, &f));
    // Every node off: a stopped lab, which `lab up` starts as `lab start` does.
    for n in &f.lab.nodes {
        hv.destroy_domain(&names::domain(&f.lab.name, &n.name))
            .unwrap();
    }
    assert!(lifecycle::is_stopped(
        &lifecycle::status(&hv, &f.lab).unwrap()
    ));
}
