//! `lab plan` as a user runs it: the binary, both shipped labs, every file it writes checked
//! by tools nobody here wrote (libvirt's schemas, cloud-init, xorriso, bash, shellcheck).

mod common;

use std::path::Path;
use std::process::Command;

use common::{require_tool, run};

fn lab_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lab"))
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
