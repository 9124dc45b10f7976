//! The seed ISO, read back with an independent reader (xorriso): label, names, contents.

mod common;

use std::path::Path;
use std::process::Command;

use lab::render::cloudinit::{Seed, seed};
use lab::render::iso::seed_iso;

const NAMES: [&str; 3] = ["meta-data", "network-config", "user-data"];

fn sample_seed() -> Seed {
    let lab = common::lab("openstack-ocata");
    let ctx = common::context(&lab);
    seed(&lab, lab.controller(), &ctx)
}

fn contents<'a>(s: &'a Seed, name: &str) -> &'a str {
    match name {
        "meta-data" => &s.meta_data,
        "network-config" => &s.network_config,
        "user-data" => &s.user_data,
        other => panic!("unexpected file {other}"),
    }
}

/// Writes the seed's ISO into `dir` and returns its path.
fn write_iso(dir: &Path, s: &Seed) -> std::path::PathBuf {
    let bytes = seed_iso(s).expect("seed iso");
    assert_eq!(bytes.len() % 2048, 0, "an ISO is whole 2048-byte sectors");
    let path = dir.join("seed.iso");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Runs xorriso on `iso` with `args`, loading the tree `read_fs` names (`any` prefers Rock
/// Ridge, `norock` Joliet, `ecma119` neither); returns stdout and stderr together (xorriso
/// reports on stderr).
fn xorriso(iso: &Path, read_fs: &str, args: &[&str]) -> String {
    common::require_tool("xorriso", "xorriso");
    let (code, out, err) = common::run(
        Command::new("xorriso")
            .args(["-abort_on", "FAILURE", "-read_fs", read_fs, "-indev"])
            .arg(iso)
            .args(args),
    );
    assert_eq!(code, 0, "xorriso {args:?}: {out}{err}");
    format!("{out}{err}")
}

#[test]
fn volume_id_is_cidata() {
    let dir = tempfile::tempdir().unwrap();
    let iso = write_iso(dir.path(), &sample_seed());
    let info = xorriso(&iso, "any", &["-pvd_info", "-toc"]);
    assert!(
        info.contains("ISO offers   : Rock_Ridge Joliet\n"),
        "{info}"
    );
    let volume = info
        .lines()
        .find(|l| l.starts_with("Volume Id"))
        .unwrap_or_else(|| panic!("no Volume Id in {info}"));
    assert_eq!(volume.split_once(':').unwrap().1.trim(), "cidata", "{info}");
}

#[test]
fn rock_ridge_names_and_contents_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample_seed();
    let iso = write_iso(dir.path(), &s);
    // Rock Ridge names as xorriso lists them.
    let listing = xorriso(&iso, "any", &["-toc", "-lsl", "/"]);
    assert!(listing.contains("ISO loaded   : Rock_Ridge\n"), "{listing}");
    let mut listed: Vec<&str> = listing
        .lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.rsplit_once(' ').map(|(_, n)| n.trim_matches('\'')))
        .collect();
    listed.sort();
    assert_eq!(listed, NAMES, "{listing}");
    // Extract and compare bytes.
    let out = dir.path().join("out");
    xorriso(
        &iso,
        "any",
        &["-osirrox", "on", "-extract", "/", out.to_str().unwrap()],
    );
    let mut found: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    found.sort();
    assert_eq!(found, NAMES);
    for name in NAMES {
        let bytes = std::fs::read(out.join(name)).unwrap();
        assert_eq!(bytes, contents(&s, name).as_bytes(), "{name} differs");
    }
}

#[test]
fn joliet_names_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let iso = write_iso(dir.path(), &sample_seed());
    // Read the Joliet tree only (Rock Ridge off), as a reader without Rock Ridge would.
    let listing = xorriso(&iso, "norock", &["-toc", "-lsl", "/"]);
    assert!(listing.contains("ISO loaded   : Joliet\n"), "{listing}");
    let mut listed: Vec<&str> = listing
        .lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.rsplit_once(' ').map(|(_, n)| n.trim_matches('\'')))
        .collect();
    listed.sort();
    assert_eq!(listed, NAMES, "{listing}");
}

#[test]
fn plain_iso9660_names_alone_would_be_mangled() {
    // Negative control: with both extensions off, the names are level-1 8.3 names, so the
    // checks above do depend on Rock Ridge and Joliet.
    let dir = tempfile::tempdir().unwrap();
    let iso = write_iso(dir.path(), &sample_seed());
    let listing = xorriso(&iso, "ecma119", &["-lsl", "/"]);
    for name in NAMES {
        assert!(!listing.contains(&format!("'{name}'")), "{listing}");
    }
}
