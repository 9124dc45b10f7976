//! When the world around the lab fails, on libvirt's test driver: the connection lost under
//! `up` (libvirtd killed or restarted).

mod common;

use std::sync::atomic::Ordering;

use lab::libvirt::{Hypervisor, RunState};
use lab::lifecycle::{self, LifecycleError};

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
