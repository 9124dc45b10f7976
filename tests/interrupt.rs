//! A stop asked for (SIGINT, SIGTERM, SIGHUP set the same flag) in the middle of `lab up`:
//! the upload in flight is abandoned and everything the run created is removed; nothing is
//! left that a later run would trust. Its own test binary: the flag is process-wide.

mod common;
#[path = "common/testhost.rs"]
mod testhost;

use lab::lifecycle::LifecycleError;
use testhost::*;

#[test]
fn a_stop_during_the_image_upload_undoes_the_run() {
    let (mut hv, f) = (TestHost::new(), fixture());
    hv.interrupt_on_upload = true;
    let err = up(&hv, &f, &Events::default()).unwrap_err();
    let LifecycleError::RolledBack { error, rolled_back } = &err else {
        panic!("{err}")
    };
    assert!(
        matches!(**error, LifecycleError::Interrupted(ref i) if i.signal == "SIGINT"),
        "{err}"
    );
    assert!(rolled_back.contains("image-debian12.qcow2"), "{err}");
    assert!(
        err.to_string()
            .starts_with("interrupted by SIGINT during `lab up`"),
        "{err}"
    );
    assert_eq!(leftovers(&hv, &f.lab.name), Vec::<String>::new());
    assert!(hv.uploads.lock().unwrap().is_empty(), "no upload completed");
}
