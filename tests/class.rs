//! `lab class` placement on libvirt's test driver: several private `test:///<tmp>/host.xml`
//! hosts of different sizes, some with running domains; each host's room read through
//! libvirt, the instances placed by it, through the library and through the real binary.

mod common;

use std::path::Path;
use std::process::Command;

use common::run;
use lab::libvirt::Libvirt;

const GIB: u64 = 1 << 30;

/// A test-driver host of `gib` GiB and `cpus` CPUs running a domain of `busy_gib` GiB and
/// `busy_vcpus` vCPUs (none when 0); its URI.
fn host(dir: &Path, name: &str, gib: u64, cpus: u32, busy_gib: u64, busy_vcpus: u32) -> String {
    let busy = if busy_gib == 0 {
        String::new()
    } else {
        format!(
            "<domain type='test'><name>busy</name><memory>{}</memory><vcpu>{busy_vcpus}</vcpu><os><type>hvm</type></os></domain>",
            busy_gib << 20
        )
    };
    let xml = format!(
        "<node><cpu><mhz>2000</mhz><model>i686</model><nodes>1</nodes><sockets>1</sockets><cores>{cpus}</cores><threads>1</threads><active>{cpus}</active></cpu><memory>{}</memory>{busy}</node>",
        gib << 20
    );
    let path = dir.join(format!("{name}.xml"));
    std::fs::write(&path, xml).unwrap();
    format!("test://{}", path.display())
}

#[test]
fn a_hosts_room_is_its_size_less_its_running_domains() {
    let dir = tempfile::tempdir().unwrap();
    let uri = host(dir.path(), "a", 16, 8, 4, 3);
    let room = lab::app::room(&Libvirt::open(&uri).unwrap()).unwrap();
    assert_eq!(room.uri, uri);
    assert_eq!(room.memory, 12 * GIB, "16 GiB less the running 4 GiB");
    assert_eq!(
        room.vcpus,
        2 * 8 - 3,
        "two vCPUs per CPU less the running 3"
    );
    let idle = host(dir.path(), "b", 8, 2, 0, 0);
    let room = lab::app::room(&Libvirt::open(&idle).unwrap()).unwrap();
    assert_eq!((room.memory, room.vcpus), (8 * GIB, 4));
}

/// `lab class up --dry-run` with a private state root: (exit code, stdout, stderr).
fn class_up(state: &Path, hosts: &[&str], count: &str) -> (i32, String, String) {
    let hosts = hosts.join(",");
    run(Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(["-l", "openstack-debian12", "class", "up", "--dry-run"])
        .args(["--hosts", &hosts, "--count", count])
        .env("LAB_STATE_DIR", state)
        .env_remove("LIBVIRT_DEFAULT_URI"))
}

#[test]
fn class_up_places_instances_by_room_and_refuses_a_class_that_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    // An instance of openstack-debian12 takes 6 GiB and 2 vCPUs.
    let big = host(dir.path(), "big", 32, 8, 12, 4); // 20 GiB, 12 vCPUs left
    let small = host(dir.path(), "small", 16, 4, 0, 0); // 16 GiB, 8 vCPUs left
    let (code, out, err) = class_up(state.path(), &[&small, &big], "5");
    assert_eq!(code, 0, "{err}");
    let placed: Vec<(String, String)> = out
        .lines()
        .skip(1)
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap().into(), w.next().unwrap().into())
        })
        .collect();
    let want = [
        ("s1", &big),   // big 20 -> 14
        ("s2", &small), // small 16 -> 10
        ("s3", &big),   // big 14 -> 8
        ("s4", &small), // small 10 -> 4
        ("s5", &big),   // big 8 -> 2
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(s, h)| (s.to_string(), h.to_string()))
        .collect();
    assert_eq!(placed, want, "{out}");
    assert!(
        out.starts_with("class class: 5 instances of openstack-debian12\n"),
        "{out}"
    );
    assert!(
        !state.path().join("classes").exists(),
        "a dry run records nothing"
    );

    let (code, _, err) = class_up(state.path(), &[&small, &big], "6");
    assert_ne!(code, 0);
    assert!(
        err.contains("no host has room for instance s6 (6144 MiB, 2 vCPUs; left: ")
            && err.contains("--hosts"),
        "{err}"
    );
}
