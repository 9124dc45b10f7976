//! Every malformed lab in tests/labs/bad gives exactly its one error, naming the key and the
//! place; the shipped labs load cleanly.

mod common;

use std::net::Ipv4Addr;

use lab::image::Catalogue;
use lab::model::units::{Cidr, Mac};
use lab::model::{LoadError, Source, ValidationError as E};

fn load(name: &str) -> Result<(lab::model::Lab, Vec<lab::model::Note>), LoadError> {
    let path = common::root().join(format!("tests/labs/bad/{name}.toml"));
    Source::resolve(path.to_str().unwrap())
        .unwrap()
        .load(&Catalogue::builtin())
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap()
}

/// Asserts one validation problem: its error value, its key and its line.
fn invalid(name: &str, key: &str, line: Option<usize>, expected: E) {
    let err = load(name).expect_err(name);
    let LoadError::Invalid {
        problems,
        source_text,
        ..
    } = &err
    else {
        panic!("{name}: expected a validation error, got {err}");
    };
    assert_eq!(problems.len(), 1, "{name}: {err}");
    let p = &problems[0];
    assert_eq!(p.error, expected, "{name}");
    assert_eq!(p.key, key, "{name}");
    let got_line = p
        .span
        .clone()
        .map(|s| lab::model::load::line_col(source_text, s.start).0);
    assert_eq!(got_line, line, "{name}: {err}");
    let text = err.to_string();
    assert!(text.contains(&format!("bad/{name}.toml")), "{text}");
    assert!(text.contains(key), "{text}");
}

/// Asserts a parse error at a line, whose message contains `needle`.
fn parse_error(name: &str, line: usize, needle: &str) {
    let err = load(name).expect_err(name);
    let LoadError::Parse {
        line_col, message, ..
    } = &err
    else {
        panic!("{name}: expected a parse error, got {err}");
    };
    assert_eq!(line_col.map(|(l, _)| l), Some(line), "{name}: {err}");
    assert!(message.contains(needle), "{name}: {message}");
    assert!(
        message.contains(": "),
        "{name}: the message says what to do: {message}"
    );
}

#[test]
fn parse_errors_name_the_place() {
    parse_error("unknown-key", 27, "unknown field `cpus`");
    parse_error("missing-image", 1, "missing field `image`");
    parse_error("bad-role", 26, "unknown variant `network`");
}

#[test]
fn names_are_checked() {
    invalid(
        "bad-lab-name",
        "name",
        Some(2),
        E::BadLabName("Bad Lab".into()),
    );
    invalid(
        "bad-node-name",
        "nodes[1].name",
        Some(25),
        E::BadNodeName("compute_1".into()),
    );
    invalid(
        "duplicate-node",
        "nodes[1].name",
        Some(25),
        E::DuplicateNode("controller".into()),
    );
    invalid(
        "duplicate-network",
        "networks[2].name",
        Some(16),
        E::DuplicateNetwork("internal".into()),
    );
    let known = "centos7, debian12".to_string();
    invalid(
        "unknown-image",
        "image",
        Some(3),
        E::UnknownImage {
            image: "ubuntu".into(),
            known,
        },
    );
}

#[test]
fn networks_are_checked() {
    let nat = E::NetworkKindCount {
        kind: "nat",
        count: 0,
        use_: "external network, the route to the internet",
    };
    invalid("no-nat-network", "networks", None, nat);
    let overlap = E::OverlappingNetworks {
        a: "external".into(),
        a_cidr: cidr("203.0.113.0/24"),
        b: "internal".into(),
        b_cidr: cidr("203.0.113.128/25"),
    };
    invalid(
        "overlapping-networks",
        "networks[1].cidr",
        Some(13),
        overlap,
    );
    let host_bits = E::BadValue(
        "\"10.0.0.1/24\" has host bits set: write the network address, 10.0.0.0/24".into(),
    );
    invalid("cidr-host-bits", "networks[1].cidr", Some(13), host_bits);
    let outside = E::GatewayOutside {
        network: "external".into(),
        gateway: ip("198.51.100.1"),
        cidr: cidr("203.0.113.0/24"),
    };
    invalid("gateway-outside", "networks[0].gateway", Some(9), outside);
    invalid(
        "gateway-on-isolated",
        "networks[1].gateway",
        Some(14),
        E::GatewayOnIsolated("internal".into()),
    );
    invalid(
        "dns-on-isolated",
        "networks[1].dns",
        Some(14),
        E::DnsOnIsolated("internal".into()),
    );
}

#[test]
fn node_sizes_are_checked() {
    invalid("two-controllers", "nodes", None, E::ControllerCount(2));
    invalid(
        "zero-vcpus",
        "nodes[1].vcpus",
        Some(27),
        E::ZeroVcpus {
            node: "compute1".into(),
            value: 0,
        },
    );
    invalid(
        "too-many-vcpus",
        "nodes[1].vcpus",
        Some(27),
        E::TooManyVcpus {
            node: "compute1".into(),
            value: 256,
            max: 255,
        },
    );
    let err = load("too-many-vcpus").unwrap_err().to_string();
    assert!(err.contains("give it at most 255"), "{err}");
    invalid(
        "zero-memory",
        "nodes[0].memory",
        Some(18),
        E::ZeroMemory("controller".into()),
    );
    let no_unit = E::BadValue("\"4096\" has no unit: write it like 4GiB or 5GB".into());
    invalid("size-without-unit", "nodes[0].memory", Some(18), no_unit);
}

#[test]
fn the_most_vcpus_qemus_pc_machine_takes_are_accepted() {
    let bad = common::root().join("tests/labs/bad/too-many-vcpus.toml");
    let text = std::fs::read_to_string(bad).unwrap();
    assert!(text.contains("\nvcpus = 256\n"));
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_temp(
        dir.path(),
        "max.toml",
        &text.replace("vcpus = 256", "vcpus = 255"),
    );
    let (lab, _) = Source::resolve(path.to_str().unwrap())
        .unwrap()
        .load(&Catalogue::builtin())
        .unwrap();
    assert_eq!(lab.nodes[1].vcpus, lab::model::validate::MAX_VCPUS);
    let ctx = common::context(&lab);
    let domain = lab::render::node_files(&lab, &lab.nodes[1], &ctx)
        .unwrap()
        .domain_xml;
    assert!(
        domain.contains(r#"machine="pc""#),
        "MAX_VCPUS is the pc machine's limit: {domain}"
    );
}

#[test]
fn nics_are_checked() {
    let unknown = E::UnknownNetwork {
        node: "compute1".into(),
        network: "mgmt".into(),
        known: "external, internal".into(),
    };
    invalid(
        "unknown-network",
        "nodes[1].nics[1].network",
        Some(29),
        unknown,
    );
    let missing = E::MissingNic {
        node: "compute1".into(),
        role: "compute",
        kind: "isolated",
        network: "internal".into(),
    };
    invalid("missing-nic", "nodes[1].nics", Some(25), missing);
    let twice = E::DuplicateNic {
        node: "compute1".into(),
        network: "internal".into(),
    };
    invalid("duplicate-nic", "nodes[1].nics[2].network", Some(30), twice);
    let bad_mac = E::BadValue(
        "\"52:54:00:00:01\" is not a MAC address: write it like 52:54:00:12:34:56".into(),
    );
    invalid("bad-mac", "nodes[1].nics[1].mac", Some(29), bad_mac);
}

#[test]
fn addresses_are_checked() {
    let outside = E::AddressOutside {
        node: "compute1".into(),
        address: ip("10.0.1.31"),
        network: "internal".into(),
        cidr: cidr("10.0.0.0/24"),
    };
    invalid(
        "address-outside",
        "nodes[1].nics[1].address",
        Some(29),
        outside,
    );
    let gateway = E::AddressIsGateway {
        node: "compute1".into(),
        address: ip("203.0.113.1"),
        network: "external".into(),
    };
    invalid(
        "address-is-gateway",
        "nodes[1].nics[0].address",
        Some(28),
        gateway,
    );
    let broadcast = E::AddressNotHost {
        node: "compute1".into(),
        address: ip("10.0.0.255"),
        cidr: cidr("10.0.0.0/24"),
    };
    invalid(
        "address-is-broadcast",
        "nodes[1].nics[1].address",
        Some(29),
        broadcast,
    );
    let dup = E::DuplicateAddress {
        address: ip("10.0.0.11"),
        first: "controller".into(),
        second: "compute1".into(),
    };
    invalid(
        "duplicate-address",
        "nodes[1].nics[1].address",
        Some(29),
        dup,
    );
    let mac = E::DuplicateMac {
        mac: "52:54:00:00:00:01".parse::<Mac>().unwrap(),
        first: "controller".into(),
        second: "compute1".into(),
    };
    invalid("duplicate-mac", "nodes[1].nics[1].mac", Some(29), mac);
}

#[test]
fn settings_are_checked() {
    let ntp = E::BadSetting {
        key: "ntp_server",
        value: "pool ntp org".into(),
        fix: "give a host name or address, like pool.ntp.org",
    };
    invalid("bad-ntp-server", "provision.ntp_server", Some(33), ntp);
    invalid(
        "empty-url-list",
        "provision.centos_base_urls",
        Some(33),
        E::EmptyUrlList("centos_base_urls"),
    );
    let err = load("empty-url-list").unwrap_err().to_string();
    assert!(err.contains("name at least one url"), "{err}");
    let bad_url = E::BadSetting {
        key: "ocata_repo_urls",
        value: "ftp://mirror.example/openstack-ocata/".into(),
        fix: "give an http:// or https:// url without spaces or quotes",
    };
    invalid(
        "bad-repo-url",
        "provision.ocata_repo_urls[1]",
        Some(35),
        bad_url,
    );
}

#[test]
fn the_singular_url_keys_are_gone() {
    let bad = common::root().join("tests/labs/bad/bad-ntp-server.toml");
    let text = std::fs::read_to_string(bad).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_temp(
        dir.path(),
        "old.toml",
        &text.replace(
            "ntp_server = \"pool ntp org\"",
            "centos_base_url = \"https://vault.centos.org/7.9.2009\"",
        ),
    );
    let err = Source::resolve(path.to_str().unwrap())
        .unwrap()
        .load(&Catalogue::builtin())
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `centos_base_url`"), "{err}");
    assert!(
        err.contains("centos_base_urls"),
        "the message names the list key: {err}"
    );
}

#[test]
fn a_classroom_names_its_local_mirror_first() {
    let seed = common::root().join("labs/openstack-ocata.toml");
    let text = std::fs::read_to_string(seed).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_temp(
        dir.path(),
        "classroom.toml",
        &format!(
            "{text}\n[provision]\n\
             centos_base_urls = [\"http://10.0.0.1/centos/7.9.2009/\", \"https://vault.centos.org/7.9.2009\"]\n\
             ocata_repo_urls = [\"http://10.0.0.1/centos/7.6.1810/cloud/x86_64/openstack-ocata/\"]\n"
        ),
    );
    let (lab, _) = Source::resolve(path.to_str().unwrap())
        .unwrap()
        .load(&Catalogue::builtin())
        .unwrap();
    assert_eq!(
        lab.provision.centos_base_urls,
        [
            "http://10.0.0.1/centos/7.9.2009",
            "https://vault.centos.org/7.9.2009"
        ],
        "in the file's order, trailing slashes trimmed"
    );
    assert_eq!(
        lab.provision.ocata_repo_urls,
        ["http://10.0.0.1/centos/7.6.1810/cloud/x86_64/openstack-ocata/"]
    );
}

#[test]
fn every_bad_lab_file_is_covered_by_a_case() {
    let dir = common::root().join("tests/labs/bad");
    let this = std::fs::read_to_string(common::root().join("tests/lab_files.rs")).unwrap();
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry
            .unwrap()
            .path()
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            this.contains(&format!("\"{name}\"")),
            "{name}.toml has no case in this file"
        );
        count += 1;
    }
    assert!(count >= 15, "only {count} malformed labs");
}

#[test]
fn the_seed_lab_is_the_guide_sized_and_addressed() {
    let lab = common::lab("openstack-ocata");
    assert_eq!(lab.image.name, "centos7");
    let c = lab.node("controller").unwrap();
    let n = lab.node("compute1").unwrap();
    assert_eq!((c.vcpus, c.memory.bytes()), (1, 4 << 30));
    assert_eq!((n.vcpus, n.memory.bytes()), (1, 2 << 30));
    assert_eq!(c.disk_requested.bytes(), 5_000_000_000);
    assert_eq!(
        c.disk.bytes(),
        8 << 30,
        "raised to the CentOS 7 image's 8GiB"
    );
    assert_eq!(n.disk.bytes(), 10_000_000_000);
    assert_eq!(lab.internal_address(c), ip("10.0.0.11"));
    assert_eq!(lab.internal_address(n), ip("10.0.0.31"));
    assert_eq!(
        lab.network_of(lab::model::NetKind::Isolated).cidr,
        cidr("10.0.0.0/24")
    );
    assert_eq!(c.nics.len(), 2);
}

#[test]
fn the_controller_disk_round_up_is_a_note_not_an_error() {
    let path = common::root().join("labs/openstack-ocata.toml");
    let (_, notes) = Source::resolve(path.to_str().unwrap())
        .unwrap()
        .load(&Catalogue::builtin())
        .unwrap();
    assert_eq!(
        notes,
        vec![lab::model::Note::DiskRoundedUp {
            node: "controller".into(),
            requested: "5GB".into(),
            image_size: "8GiB".into(),
        }]
    );
}

#[test]
fn shipped_labs_load_and_defaults_fill_the_reference() {
    for name in ["openstack-ocata", "openstack-debian12", "reference"] {
        common::lab(name);
    }
    let debian = common::lab("openstack-debian12");
    assert_eq!(debian.image.name, "debian12");
    assert!(
        !debian.network_of(lab::model::NetKind::Nat).dns,
        "the offline lab runs no dnsmasq"
    );
    let seed = common::lab("openstack-ocata");
    assert_eq!(seed.user, "lab");
    assert_eq!(seed.domain, "lab.test");
    assert_eq!(
        seed.provision.centos_base_urls[0],
        "https://vault.centos.org/7.9.2009"
    );
    // Base URLs are lists with a fallback: the vault first, then a second copy of it.
    assert_eq!(
        seed.provision.centos_base_urls,
        [
            "https://vault.centos.org/7.9.2009",
            "https://archive.kernel.org/centos-vault/7.9.2009",
        ]
    );
    assert_eq!(
        seed.provision.ocata_repo_urls,
        [
            "https://vault.centos.org/7.6.1810/cloud/x86_64/openstack-ocata/",
            "https://archive.kernel.org/centos-vault/7.6.1810/cloud/x86_64/openstack-ocata/",
        ]
    );
    // The reference file spells out the defaults.
    let reference = common::lab("reference");
    assert_eq!(reference.provision, seed.provision);
    // The same lab loaded twice gets the same MACs: re-runs converge.
    assert_eq!(seed, common::lab("openstack-ocata"));
}

#[test]
fn labs_resolve_by_name_and_unknown_names_say_what_exists() {
    let s = Source::resolve("openstack-ocata").unwrap();
    assert!(s.text.contains("name = \"ocata\""));
    let err = Source::resolve("nope").unwrap_err().to_string();
    assert!(err.contains("openstack-ocata, openstack-debian12"), "{err}");
    let err = Source::resolve("/no/such/lab.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot read lab file /no/such/lab.toml"),
        "{err}"
    );
}
