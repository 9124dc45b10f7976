//! Room in the lab's pool, on libvirt's test driver (its pools report 100GiB of capacity and
//! refuse volumes beyond it): `up` refuses a lab that may not fit before it creates a volume,
//! names the pool's directory and the volume when the disk fills meanwhile, and either way
//! leaves nothing this run made.

mod common;

use std::sync::atomic::Ordering;

use lab::libvirt::Hypervisor;
use lab::lifecycle::{self, LifecycleError, UpOptions};
use lab::names;
use lab::units::ByteSize;

#[path = "common/testhost.rs"]
mod testhost;

use testhost::*;

const GIB: u64 = 1 << 30;

/// The fixture's lab with each node's disk at `gib` GiB.
fn with_disks(gib: u64) -> Fixture {
    let mut f = fixture();
    for n in &mut f.lab.nodes {
        n.disk = ByteSize(gib * GIB);
    }
    f
}

#[test]
fn a_lab_that_may_not_fit_is_refused_with_both_figures_before_any_volume_and_its_pool_goes() {
    let hv = TestHost::new();
    // 120GiB of disks and 6GiB of snapshot memory, in a pool of 100GiB.
    let f = with_disks(60);
    let err = up(&hv, &f, &Events::default()).unwrap_err();
    let LifecycleError::RolledBack { error, rolled_back } = &err else {
        panic!("{err}")
    };
    let LifecycleError::NoSpace {
        need, free, path, ..
    } = error.as_ref()
    else {
        panic!("{err}")
    };
    assert_eq!(free.bytes(), 100 * GIB);
    let seeds = need.bytes() - 126 * GIB - 100_000;
    assert!(seeds > 0 && seeds < 2 << 20, "two seed ISOs: {seeds}");
    assert_eq!(path, &f.ctx.pool_dir.display().to_string());
    assert_eq!(
        err.to_string(),
        format!(
            "not enough space for lab ocata-deb in {} (pool lab-ocata-deb): it needs at most 126.0GiB, 100.0GiB is free: free space there, or give `--pool-root` a larger disk\n(rolled back what this run created: pool lab-ocata-deb)",
            f.ctx.pool_dir.display()
        )
    );
    assert_eq!(rolled_back, "pool lab-ocata-deb");
    assert_eq!(
        hv.changes.load(Ordering::SeqCst),
        1,
        "the pool, nothing more"
    );
    assert!(hv.uploads.lock().unwrap().is_empty());
    assert_eq!(leftovers(&hv, &f.lab.name), Vec::<String>::new());
}

#[test]
fn a_pool_that_was_there_before_stays_when_the_lab_does_not_fit() {
    let hv = TestHost::new();
    let f = with_disks(60);
    let xml = lab::render::libvirt::pool_xml(&f.lab, &f.ctx);
    hv.inner.create_pool(&xml).unwrap();
    let err = up(&hv, &f, &Events::default()).unwrap_err();
    assert!(
        matches!(err, LifecycleError::NoSpace { .. }),
        "nothing of this run to roll back: {err}"
    );
    assert_eq!(
        leftovers(&hv, &f.lab.name),
        vec!["pool lab-ocata-deb with []".to_string()]
    );
}

#[test]
fn the_snapshot_counts_until_every_node_has_it_and_what_is_there_counts_no_more() {
    let hv = TestHost::new();
    // 94GiB of disks fit in 100GiB; with 6GiB of snapshot memory they do not.
    let f = with_disks(47);
    let err = up(&hv, &f, &Events::default()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("not enough space for lab ocata-deb in "),
        "{err}"
    );
    let no_snapshot = UpOptions {
        image: &f.image,
        image_sha256: None,
        check_routes: false,
        recreate: &[],
        snapshot: None,
    };
    assert!(lifecycle::up(&hv, &f.lab, &f.ctx, &no_snapshot, &Events::default()).unwrap());
    let pool = hv.pool(&names::pool(&f.lab.name)).unwrap().unwrap();
    assert!(pool.available < 6 * GIB, "{}", pool.available);
    let err = up(&hv, &f, &Events::default()).unwrap_err();
    assert!(
        matches!(&err, LifecycleError::NoSpace { need, .. } if need.bytes() == 6 * GIB),
        "only the snapshot is missing: {err}"
    );
    lifecycle::save_snapshot(&hv, &f.lab, lifecycle::UP_SNAPSHOT, &Events::default()).unwrap();
    assert!(
        !up(&hv, &f, &Events::default()).unwrap(),
        "all there: nothing to write, whatever is free"
    );
}

#[test]
fn a_disk_that_fills_meanwhile_is_named_with_the_volume_and_the_run_is_undone() {
    let (mut hv, f) = (TestHost::new(), fixture());
    hv.fill_on_upload = true;
    let err = up(&hv, &f, &Events::default()).unwrap_err();
    let LifecycleError::RolledBack { error, rolled_back } = &err else {
        panic!("{err}")
    };
    let LifecycleError::SpaceRanOut {
        path, volume, free, ..
    } = error.as_ref()
    else {
        panic!("{err}")
    };
    assert_eq!(path, &f.ctx.pool_dir.display().to_string());
    assert_eq!(
        volume, "controller-seed.iso",
        "the image was in before the disk filled"
    );
    assert_eq!(*free, Some(ByteSize(1000)));
    assert!(
        std::error::Error::source(error.as_ref()).is_none(),
        "libvirt's error is in the message, so `lab: {{err:#}}` says it once"
    );
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "no space left in {} for volume controller-seed.iso (pool lab-ocata-deb, 0.0MiB free): free space there, or give `--pool-root` a larger disk (create a volume in pool lab-ocata-deb: ",
            f.ctx.pool_dir.display()
        )),
        "{message}"
    );
    assert!(
        rolled_back.contains("volume lab-ocata-deb/image-debian12.qcow2, ")
            && rolled_back.ends_with("pool lab-ocata-deb"),
        "{rolled_back}"
    );
    assert_eq!(leftovers(&hv, &f.lab.name), Vec::<String>::new());
}

#[test]
fn lab_up_says_so_exits_3_and_leaves_no_state_of_a_first_up() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::root().join("labs/openstack-debian12.toml"))
        .unwrap()
        .replace("disk = \"5GB\"", "disk = \"80GiB\"")
        .replace("disk = \"10GB\"", "disk = \"80GiB\"");
    let file = tmp.path().join("big.toml");
    std::fs::write(&file, text).unwrap();
    let image = tmp.path().join("debian12.qcow2");
    std::fs::write(&image, vec![0x51u8; 100_000]).unwrap();
    let (state, root) = (tmp.path().join("state"), tmp.path().join("pools"));
    let (code, _, err) = common::run(
        std::process::Command::new(env!("CARGO_BIN_EXE_lab"))
            .args(["up", "--no-provision", "-c", "test:///default", "-l"])
            .arg(&file)
            .arg("--image")
            .arg(&image)
            .arg("--pool-root")
            .arg(&root)
            .env("LAB_STATE_DIR", &state)
            .env_remove(lab::app::LAB_ENV),
    );
    assert_eq!(code, 3, "{err}");
    let expected = format!(
        "lab: not enough space for lab ocata-deb in {}/lab-ocata-deb (pool lab-ocata-deb): it needs at most 160.0GiB, 100.0GiB is free: free space there, or give `--pool-root` a larger disk\n(rolled back what this run created: pool lab-ocata-deb)\n",
        root.display()
    );
    assert!(err.ends_with(&expected), "{err}");
    assert!(
        !state.join("ocata-deb").exists() && !state.join(names::state::CURRENT).exists(),
        "a first up that failed leaves no state"
    );
}
