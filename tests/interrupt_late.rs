//! A stop asked for while `lab up`'s last calls run (the domains starting): they finish, and
//! the run is undone all the same (exit 130 at the CLI), not reported as a lab that is up.
//! Its own test binary: the flag is process-wide.

mod common;
#[path = "common/testhost.rs"]
mod testhost;

use lab::lifecycle::LifecycleError;
use testhost::*;

#[test]
fn a_stop_while_the_domains_start_undoes_the_run() {
    let (mut hv, f) = (TestHost::new(), fixture());
    hv.interrupt_on_start = true;
    let err = up(&hv, &f, &Events::default()).unwrap_err();
    let LifecycleError::RolledBack { error, rolled_back } = &err else {
        panic!("{err}")
    };
    assert!(matches!(**error, LifecycleError::Interrupted(_)), "{err}");
    assert!(rolled_back.contains("lab-ocata-deb-internal"), "{err}");
    assert_eq!(leftovers(&hv, &f.lab.name), Vec::<String>::new());
}
