//! Instances (`--instance NAME`) on libvirt's test driver: two copies of one lab placed and
//! brought up side by side on one private `test:///<tmp>/node.xml` host, each with its own
//! objects, bridges, MACs and external subnet; the pool's exhaustion; the placement record.

mod common;

use lab::app::{Host, InstanceChoice, NoSuchInstance, Unplaced, in_use, instance_lab};
use lab::libvirt::Hypervisor;
use lab::model::instance::InstanceError;
use lab::model::{Lab, NetKind};
use lab::names;
use lab::render::Accel;
use lab::state::LabState;
use std::path::Path;

#[path = "common/testhost.rs"]
mod testhost;

use testhost::*;

fn choice(name: &str, pool: &str) -> InstanceChoice {
    InstanceChoice {
        name: name.into(),
        pool: pool.parse().unwrap(),
    }
}

/// The fixture of `lab`, with secrets of its own (`seed_byte`).
fn fixture_of(lab: Lab, seed_byte: u8) -> Fixture {
    let mut f = fixture();
    let pool_dir = f.ctx.pool_dir.clone();
    f.ctx = lab::plan::context(&lab, Accel::Tcg, &[seed_byte; 32]);
    f.ctx.pool_dir = pool_dir.with_file_name(&lab.name);
    f.lab = lab;
    f
}

/// The test host as a host `lab` reaches through libvirt only (no route to its guests).
fn remote(hv: &TestHost) -> Host<'_> {
    Host { hv, local: false }
}

/// Instance `name` of `base` placed on `host` with a subnet from `pool`, state under `root`.
fn place(
    base: &Lab,
    name: &str,
    pool: &str,
    root: &Path,
    host: &Host,
) -> lab::failure::Result<(Lab, LabState)> {
    instance_lab(base, &choice(name, pool), root, Unplaced::Place(host))
}

fn external(lab: &Lab) -> String {
    let net = lab
        .networks
        .iter()
        .find(|n| n.kind == NetKind::Nat)
        .unwrap();
    net.cidr.to_string()
}

fn bridges_and_macs(hv: &TestHost, lab: &str) -> Vec<String> {
    let mut out = Vec::new();
    for n in hv
        .networks()
        .unwrap()
        .iter()
        .filter(|n| n.name.contains(lab))
    {
        let at = n.xml.find("<bridge name='").unwrap() + 14;
        out.push(n.xml[at..at + n.xml[at..].find('\'').unwrap()].to_string());
    }
    for d in hv
        .domains()
        .unwrap()
        .iter()
        .filter(|d| d.name.contains(lab))
    {
        for part in d.xml.split("<mac address='").skip(1) {
            out.push(part[..17].to_string());
        }
    }
    out
}

#[test]
fn two_instances_come_up_side_by_side_and_a_third_finds_the_pool_exhausted() {
    let hv = TestHost::new();
    let base = common::lab("openstack-debian12");
    let root = tempfile::tempdir().unwrap();
    let host = remote(&hv);
    let pool = "198.18.0.0/23";

    let (s1, st1) = place(&base, "s1", pool, root.path(), &host).unwrap();
    assert_eq!(
        (s1.name.as_str(), external(&s1).as_str()),
        ("ocata-deb-s1", "198.18.0.0/24")
    );
    assert!(
        st1.placement().unwrap().is_some(),
        "the placement is recorded"
    );
    let f1 = fixture_of(s1, 1);
    up(&hv, &f1, &Events::default()).unwrap();

    let (s2, _) = place(&base, "s2", pool, root.path(), &host).unwrap();
    assert_eq!(external(&s2), "198.18.1.0/24", "the next free subnet");
    let f2 = fixture_of(s2, 2);
    up(&hv, &f2, &Events::default()).unwrap();

    let internal = |l: &Lab| {
        l.nodes
            .iter()
            .flat_map(|n| n.nics.iter().filter(|c| c.network == "internal"))
            .map(|c| c.address.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(internal(&f1.lab), ["10.0.0.11", "10.0.0.31"]);
    assert_eq!(
        internal(&f1.lab),
        internal(&f2.lab),
        "the guide's addresses in both"
    );
    let (a, b) = (bridges_and_macs(&hv, "-s1-"), bridges_and_macs(&hv, "-s2-"));
    assert_eq!(
        (a.len(), b.len()),
        (6, 6),
        "two bridges and four nics each: {a:?} {b:?}"
    );
    assert!(
        a.iter().all(|x| !b.contains(x)),
        "nothing shared: {a:?} {b:?}"
    );
    assert!(
        a.iter()
            .filter(|x| x.starts_with("labbr"))
            .all(|x| x.len() <= 15),
        "bridge names fit in 15 characters: {a:?}"
    );

    let err = place(&base, "s3", pool, root.path(), &host).unwrap_err();
    assert_eq!(err.class(), lab::failure::ExitClass::Usage, "{err:?}");
    let err = err.downcast_ref::<InstanceError>().unwrap();
    assert!(
        matches!(
            err,
            InstanceError::PoolExhausted {
                prefix: 24,
                taken: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("--subnet-pool"), "{err}");

    // Later commands read the record; an instance no `up` made is named as such.
    let (again, _) = instance_lab(
        &base,
        &choice("s1", "10.0.0.0/8"),
        root.path(),
        Unplaced::Refuse,
    )
    .unwrap();
    assert_eq!(
        again, f1.lab,
        "the recorded placement, whatever the pool says now"
    );
    let err = instance_lab(&base, &choice("s9", pool), root.path(), Unplaced::Refuse).unwrap_err();
    assert_eq!(err.class(), lab::failure::ExitClass::Usage, "{err:?}");
    let err = err.downcast_ref::<NoSuchInstance>().unwrap();
    assert!(err.to_string().contains("`lab up --instance s9`"), "{err}");

    // One down leaves the other instance whole.
    down(&hv, &f1);
    assert!(leftovers(&hv, &f1.lab.name).is_empty());
    assert_eq!(
        leftovers(&hv, &f2.lab.name).len(),
        6,
        "two domains, two networks, a pool, a log pool"
    );
    down(&hv, &f2);
    assert!(leftovers(&hv, "ocata-deb").is_empty());
}

#[test]
fn down_names_an_instance_whose_record_is_gone() {
    let base = common::lab("openstack-debian12");
    let root = tempfile::tempdir().unwrap();
    let (lab, st) = instance_lab(
        &base,
        &choice("s7", "198.18.0.0/23"),
        root.path(),
        Unplaced::NameOnly,
    )
    .unwrap();
    assert_eq!(
        lab.name, "ocata-deb-s7",
        "the objects' names, found by down"
    );
    assert_eq!(
        external(&lab),
        external(&base),
        "the file's own subnet stands in"
    );
    assert!(st.placement().unwrap().is_none(), "nothing is recorded");
}

#[test]
fn subnets_in_use_come_from_libvirt_networks_and_recorded_instances() {
    let hv = TestHost::new();
    let base = common::lab("openstack-debian12");
    let f = fixture_of(base.clone(), 3);
    up(&hv, &f, &Events::default()).unwrap();
    let root = tempfile::tempdir().unwrap();
    let host = remote(&hv);
    // The base lab's external network is in libvirt: a pool around it skips it.
    let (s1, _) = place(&base, "s1", "203.0.112.0/23", root.path(), &host).unwrap();
    assert_eq!(external(&s1), "203.0.112.0/24");
    let (s2, _) = place(&base, "s2", "203.0.112.0/22", root.path(), &host).unwrap();
    assert_eq!(
        external(&s2),
        "203.0.114.0/24",
        "s1's record and the lab's network skipped"
    );
    let taken: Vec<String> = in_use(&hv, root.path(), false)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    for t in ["203.0.113.0/24", "203.0.112.0/24", "203.0.114.0/24"] {
        assert!(taken.contains(&t.to_string()), "{t} in {taken:?}");
    }
}

#[test]
fn the_image_crosses_the_connection_once_per_host_and_a_copy_serves_the_next_instance() {
    let hv = TestHost::new();
    let base = common::lab("openstack-debian12");
    let root = tempfile::tempdir().unwrap();
    let host = remote(&hv);
    let sum = "AB".repeat(32);
    let mut fixtures = Vec::new();
    for (i, name) in ["s1", "s2"].into_iter().enumerate() {
        let (lab, _) = place(&base, name, "198.18.0.0/23", root.path(), &host).unwrap();
        let mut f = fixture_of(lab, i as u8 + 1);
        f.image_sha256 = Some(sum.clone());
        fixtures.push(f);
    }
    let image = names::image_volume("debian12");
    let events = Events::default();
    up(&hv, &fixtures[0], &events).unwrap();
    up(&hv, &fixtures[1], &events).unwrap();
    let uploads = hv.uploads.lock().unwrap().clone();
    assert_eq!(
        uploads.iter().filter(|(v, _)| *v == image).count(),
        1,
        "{uploads:?}"
    );
    let (s1, s2) = (
        names::pool(&fixtures[0].lab.name),
        names::pool(&fixtures[1].lab.name),
    );
    assert_eq!(
        hv.copies.lock().unwrap().clone(),
        [(format!("{s1}/{image}"), s2.clone())]
    );
    let marker = names::sha256_marker(&image, &sum);
    assert!(marker.ends_with(&"ab".repeat(32)), "{marker}");
    for pool in [&s1, &s2] {
        let volumes = hv.pool(pool).unwrap().unwrap().volumes;
        for v in [&image, &names::complete_marker(&image), &marker] {
            assert!(volumes.contains(v), "{pool} lacks {v}: {volumes:?}");
        }
    }
    assert!(
        events.actions().contains(&lab::lifecycle::Action::Copied),
        "{:?}",
        events.actions()
    );
    // Each pool holds its own copy: one instance's down leaves the other's whole.
    down(&hv, &fixtures[0]);
    let volumes = hv.pool(&s2).unwrap().unwrap().volumes;
    assert!(volumes.contains(&image), "{volumes:?}");

    // A pool another run is uploading into cannot be read: not a source, and no failure.
    let mut f3 = fixture_of(fixtures.remove(0).lab, 1);
    f3.image_sha256 = Some(sum.clone());
    let mut hv = hv;
    hv.busy_pool = Some(s2.clone());
    up(&hv, &f3, &Events::default()).unwrap();
    assert_eq!(
        hv.copies.lock().unwrap().len(),
        1,
        "no copy from the busy pool"
    );
    let uploads = hv.uploads.lock().unwrap().clone();
    assert_eq!(uploads.iter().filter(|(v, _)| *v == image).count(), 2);
}

#[test]
fn list_finds_every_lab_on_the_host_by_its_metadata_and_not_a_foreign_domain() {
    let hv = TestHost::new();
    let base = common::lab("openstack-debian12");
    let root = tempfile::tempdir().unwrap();
    let host = remote(&hv);
    let (s1, _) = place(&base, "s1", "198.18.0.0/23", root.path(), &host).unwrap();
    let fixtures = [fixture_of(base, 1), fixture_of(s1, 2)];
    for f in &fixtures {
        up(&hv, f, &Events::default()).unwrap();
    }
    // A domain named like a lab's but without lab's metadata is someone else's.
    hv.inner
        .define_domain(
            "<domain type='test'><name>lab-ocata-deb-s9-controller</name><memory>1024</memory><os><type>hvm</type></os></domain>",
        )
        .unwrap();
    hv.inner.suspend_domain("lab-ocata-deb-controller").unwrap();

    let labs = lab::lifecycle::list_labs(&hv).unwrap();
    let seen: Vec<(String, Vec<String>, Vec<String>)> = labs
        .iter()
        .map(|l| {
            let nodes = l
                .nodes
                .iter()
                .map(|n| format!("{} {:?}", n.name, n.state))
                .collect();
            (l.lab.clone(), nodes, l.networks.clone())
        })
        .collect();
    let nets = vec!["external".to_string(), "internal".to_string()];
    assert_eq!(
        seen,
        [
            (
                "ocata-deb".to_string(),
                vec!["compute1 Running".to_string(), "controller Paused".into()],
                nets.clone()
            ),
            (
                "ocata-deb-s1".to_string(),
                vec!["compute1 Running".to_string(), "controller Running".into()],
                nets
            ),
        ]
    );

    let made_by: Vec<Option<&str>> = labs.iter().map(|l| l.state.as_deref()).collect();
    let owners: Vec<Option<&str>> = fixtures
        .iter()
        .map(|f| Some(f.ctx.secrets.owner.as_str()))
        .collect();
    assert_eq!(
        made_by, owners,
        "each lab's state identity, from its metadata"
    );

    down(&hv, &fixtures[1]);
    let labs = lab::lifecycle::list_labs(&hv).unwrap();
    let names: Vec<&str> = labs.iter().map(|l| l.lab.as_str()).collect();
    assert_eq!(names, ["ocata-deb"], "s1 went with its down");
}
