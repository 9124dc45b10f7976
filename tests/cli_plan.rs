//! `lab plan` as a user runs it: the binary, both shipped labs, every file it writes checked
//! by tools nobody here wrote (libvirt's schemas, cloud-init, xorriso, bash, shellcheck).

mod common;

use std::path::Path;
use std::process::Command;

use common::{require_tool, run};
use lab::names;
use lab::secrets::LabSecrets;
use lab::state::LabState;

/// The binary with a state root that holds no lab (plan never creates one).
fn lab_bin() -> Command {
    let no_state = std::env::temp_dir().join(format!("lab-cli-plan-{}", std::process::id()));
    stateful_bin(&no_state)
}

/// The binary with state root `state`, no lab and no libvirt URI from the environment.
fn stateful_bin(state: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lab"));
    cmd.env("LAB_STATE_DIR", state)
        .env_remove(lab::app::LAB_ENV)
        .env_remove("LIBVIRT_DEFAULT_URI");
    cmd
}

fn plan_into(lab: &str, dir: &Path) -> String {
    let (code, out, err) = run(lab_bin()
        .args(["plan", "--lab", lab, "--accel", "tcg", "--out"])
        .arg(dir));
    assert_eq!(code, 0, "{err}");
    out
}

fn validate(kind: &str, file: &Path) {
    let (code, out, err) = run(Command::new("virt-xml-validate").arg(file).arg(kind));
    assert_eq!(code, 0, "{}: {out}{err}", file.display());
}

fn check_plan_dir(lab: &str, dir: &Path) {
    for net in ["external", "internal"] {
        validate("network", &dir.join(format!("networks/{net}.xml")));
    }
    for node in ["controller", "compute1"] {
        let n = dir.join("nodes").join(node);
        for f in lab::names::plan::NODE_FILES {
            assert!(n.join(f).is_file(), "{lab}: {}/{f} missing", n.display());
        }
        validate("domain", &n.join("domain.xml"));
        validate("storagevol", &n.join("overlay-volume.xml"));
        validate("domainsnapshot", &n.join("snapshot.xml"));
        let (code, out, err) = run(Command::new("cloud-init")
            .args(["schema", "--config-file"])
            .arg(n.join("user-data")));
        assert_eq!(code, 0, "{lab}/{node} user-data: {out}{err}");
        let (code, out, err) = run(Command::new("xorriso")
            .args(["-indev"])
            .arg(n.join("seed.iso"))
            .args(["-pvd_info", "-find", "/", "-type", "f"]));
        assert_eq!(code, 0, "{err}");
        let listing = format!("{out}{err}");
        assert!(listing.contains("Volume Id    : cidata"), "{listing}");
        for f in ["'/user-data'", "'/meta-data'", "'/network-config'"] {
            assert!(listing.contains(f), "{lab}/{node}: {f} not in {listing}");
        }
        let (code, _, err) = run(Command::new("bash").arg("-n").arg(n.join("provision.sh")));
        assert_eq!(code, 0, "{err}");
        let (code, out, _) = run(Command::new("shellcheck")
            .args(["-S", "warning"])
            .arg(n.join("provision.sh")));
        assert_eq!(code, 0, "{out}");
    }
}

#[test]
fn plan_out_writes_files_every_validator_accepts() {
    for tool in [
        ("virt-xml-validate", "libvirt-clients"),
        ("cloud-init", "cloud-init"),
        ("xorriso", "xorriso"),
        ("shellcheck", "shellcheck"),
    ] {
        require_tool(tool.0, tool.1);
    }
    for lab in ["openstack-ocata", "openstack-debian12"] {
        let dir = tempfile::tempdir().unwrap();
        let out = plan_into(lab, dir.path());
        assert!(out.contains("wrote 18 files"), "{out}");
        check_plan_dir(lab, dir.path());
    }
}

#[test]
fn plan_summary_shows_sizes_addresses_and_the_disk_note() {
    let (code, out, err) =
        run(lab_bin().args(["plan", "--lab", "openstack-ocata", "--accel", "tcg"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("controller   controller      1     4GiB     8GiB"),
        "{out}"
    );
    assert!(
        out.contains("compute1     compute         1     2GiB     10GB"),
        "{out}"
    );
    assert!(out.contains("internal=10.0.0.11"), "{out}");
    assert!(
        out.contains(
            "note: controller: disk 5GB is smaller than the image, so it gets the image's 8GiB"
        ),
        "{out}"
    );
}

#[test]
fn plan_json_is_machine_readable() {
    let (code, out, err) = run(lab_bin().args([
        "plan",
        "--lab",
        "openstack-debian12",
        "--json",
        "--accel",
        "kvm",
    ]));
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["lab"], "ocata-deb");
    assert_eq!(v["accel"], "kvm");
    assert_eq!(v["nodes"][0]["memory_bytes"], 4u64 << 30);
    assert_eq!(v["nodes"][1]["nics"][1]["address"], "10.0.0.31");
    let notes = v["notes"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .all(|n| !n.as_str().unwrap().contains("smaller than the image")),
        "debian12's 4GiB image fits a 5GB disk: {notes:?}"
    );
}

#[test]
fn a_bad_lab_file_exits_2_with_its_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("plan");
    let bad = common::root().join("tests/labs/bad/duplicate-address.toml");
    let (code, _, err) = run(lab_bin()
        .args(["plan", "--lab"])
        .arg(&bad)
        .arg("--out")
        .arg(&out_dir));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("duplicate-address.toml:29:37: nodes[1].nics[1].address"),
        "{err}"
    );
    assert!(!out_dir.exists(), "nothing written");
}

#[test]
fn an_unknown_lab_name_lists_the_shipped_ones() {
    let (code, _, err) = run(lab_bin().args(["plan", "--lab", "nope"]));
    assert_eq!(code, 2);
    assert!(err.contains("openstack-ocata, openstack-debian12"), "{err}");
}

#[test]
fn completions_and_the_man_page_come_from_the_cli() {
    let (code, out, err) = run(lab_bin().args(["completions", "bash"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("_lab()") && out.contains("snapshot"),
        "{}",
        &out[..200.min(out.len())]
    );
    let (code, out, err) = run(lab_bin().arg("man"));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(".TH lab") && out.contains("reset"),
        "{}",
        &out[..200.min(out.len())]
    );
}

/// A libvirt test-driver host where the debian12 lab's controller, made by the state whose
/// identity is `owner`, was recreated once (generation 2).
fn host_with_recreated_controller(dir: &Path, owner: &str) -> String {
    let node = dir.join("node.xml");
    let domain = names::domain("ocata-deb", "controller");
    let ns = names::METADATA_NS;
    let xml = format!(
        "<node>\n  <domain type='test'>\n    <name>{domain}</name>\n    <metadata><lab:owner xmlns:lab='{ns}' lab='ocata-deb' node='controller' role='controller' state='{owner}' image='debian12' disk='5000000000' addresses='203.0.113.11,10.0.0.11' generation='2' version='1'/></metadata>\n    <memory>1048576</memory>\n    <os><type>hvm</type></os>\n  </domain>\n</node>\n"
    );
    std::fs::write(&node, xml).unwrap();
    format!("test://{}", node.display())
}

/// The debian12 lab's state as `lab up` leaves it under state root `state`: its seed, and the
/// secrets that derive from it.
fn debian12_was_up(state: &Path) -> (lab::model::Lab, [u8; 32], LabSecrets) {
    let seed = LabState::new(state, "ocata-deb").seed().unwrap();
    let lab = common::lab("openstack-debian12");
    let secrets = LabSecrets::from_seed(&lab, &seed);
    (lab, seed, secrets)
}

#[test]
fn plan_out_of_a_lab_that_was_up_writes_the_files_up_created() {
    let state = tempfile::tempdir().unwrap();
    let (lab, seed, secrets) = debian12_was_up(state.path());
    let host = tempfile::tempdir().unwrap();
    let uri = host_with_recreated_controller(host.path(), &secrets.owner);
    let out = tempfile::tempdir().unwrap();
    let (code, stdout, err) = run(stateful_bin(state.path())
        .args(["plan", "--lab", "openstack-debian12", "--accel", "tcg"])
        .args(["--connect", &uri, "--out"])
        .arg(out.path()));
    assert_eq!(code, 0, "{err}");
    assert!(!stdout.contains("throwaway"), "{stdout}");
    // What `lab up` renders: the state's secrets, system paths, generations from libvirt.
    let mut ctx = lab::plan::context(&lab, lab::render::Accel::Tcg, &seed);
    ctx.generations.insert("controller".into(), 2);
    for node in &lab.nodes {
        let want = lab::render::node_files(&lab, node, &ctx).unwrap();
        let dir = out.path().join(names::plan::node_dir(&node.name));
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        let user_data = read("user-data");
        assert!(
            user_data.contains(&secrets.user_key.public_openssh),
            "{}: the state's user key is authorized",
            node.name
        );
        assert_eq!(user_data, want.seed.user_data, "{}", node.name);
        assert_eq!(read("meta-data"), want.seed.meta_data, "{}", node.name);
        assert_eq!(read("domain.xml"), want.domain_xml, "{}", node.name);
        let iso = std::fs::read(dir.join("seed.iso")).unwrap();
        assert!(
            iso.windows(want.seed.user_data.len())
                .any(|w| w == want.seed.user_data.as_bytes()),
            "{}: the seed ISO holds that user-data",
            node.name
        );
    }
    let meta = std::fs::read_to_string(out.path().join("nodes/controller/meta-data")).unwrap();
    assert!(
        meta.contains(&names::instance_id("ocata-deb", "controller", 2)),
        "the recreated node's instance-id: {meta}"
    );
}

#[test]
fn plan_out_of_a_lab_without_state_says_its_keys_are_throwaway_and_makes_no_state() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, stdout, err) = run(stateful_bin(state.path())
        .args([
            "plan",
            "--lab",
            "openstack-debian12",
            "--accel",
            "tcg",
            "--out",
        ])
        .arg(out.path()));
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("note: lab ocata-deb has no state: the files hold throwaway keys"),
        "{stdout}"
    );
    assert!(!LabState::new(state.path(), "ocata-deb").exists());
}

#[test]
fn plan_out_writes_files_holding_secrets_0600_and_the_others_as_the_umask_says() {
    use std::os::unix::fs::PermissionsExt;
    let state = tempfile::tempdir().unwrap();
    let (lab, _, secrets) = debian12_was_up(state.path());
    let out = tempfile::tempdir().unwrap();
    let (code, _, err) = run(stateful_bin(state.path())
        .args(["plan", "--lab", "openstack-debian12", "--accel", "tcg"])
        .args(["--connect", "test:///default", "--out"])
        .arg(out.path()));
    assert_eq!(code, 0, "{err}");
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let umask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|m| u32::from_str_radix(m.trim(), 8).unwrap())
        .unwrap();
    let mut private = Vec::new();
    for node in &lab.nodes {
        let dir = out.path().join(names::plan::node_dir(&node.name));
        for f in names::plan::NODE_FILES {
            let path = dir.join(f);
            let bytes = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            let secret = bytes.contains("PRIVATE KEY")
                || secrets
                    .passwords
                    .values()
                    .any(|p| bytes.contains(p.as_str()));
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            if secret {
                assert_eq!(mode, 0o600, "{} holds a secret", path.display());
                private.push(f);
            } else {
                assert_eq!(mode, 0o666 & !umask, "{}: the umask's mode", path.display());
            }
        }
    }
    let net = out.path().join(names::plan::network_xml("internal"));
    let mode = std::fs::metadata(net).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666 & !umask, "a network's XML: the umask's mode");
    private.sort();
    private.dedup();
    let mut declared = lab::plan::PRIVATE_NODE_FILES.to_vec();
    declared.sort();
    assert_eq!(private, declared);
}

#[test]
fn plan_previews_an_instance_no_up_made_and_records_nothing() {
    let state = tempfile::tempdir().unwrap();
    let (code, out, err) = run(stateful_bin(state.path())
        .args(["plan", "-l", "openstack-debian12", "--instance", "s7"])
        .args(["-c", "test:///default"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("lab ocata-deb-s7 "), "{out}");
    assert!(
        err.contains("note: instance s7 is not made yet: `lab up --instance s7` takes each nat network's subnet from the first free one of 198.18.0.0/15"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(state.path()).unwrap().collect();
    assert!(left.is_empty(), "plan wrote into the state: {left:?}");
    // The other commands still refuse an instance that does not exist.
    let (code, _, err) = run(stateful_bin(state.path())
        .args(["status", "-l", "openstack-debian12", "--instance", "s7"])
        .args(["-c", "test:///default"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has no instance s7"), "{err}");
}
