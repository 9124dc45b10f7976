//! Compiles every file under `profiles/` into the binary: writes `$OUT_DIR/profile_files.rs`,
//! a table of `(path under profiles/, include_str!(file))` that `src/profile_files.rs`
//! includes. A profile's folder is then all it takes for its files to be there.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let profiles = root.join("profiles");
    println!("cargo:rerun-if-changed=profiles");
    let mut files = Vec::new();
    walk(&profiles, &mut files);
    // Sorted as strings: what `profile_files::get`'s binary search compares.
    let mut named: Vec<(String, String)> = files
        .iter()
        .map(|file| {
            let rel = file.strip_prefix(&profiles).expect("under profiles/");
            let rel = rel.to_str().expect("file names under profiles/ are UTF-8");
            let abs = file.to_str().expect("the checkout's path is UTF-8");
            (rel.to_string(), abs.to_string())
        })
        .collect();
    named.sort();
    let mut out = String::from("&[\n");
    for (rel, abs) in &named {
        writeln!(out, "    ({rel:?}, include_str!({abs:?})),").expect("a String takes it");
    }
    out.push(']');
    let dest = PathBuf::from(env::var("OUT_DIR").expect("cargo sets it")).join("profile_files.rs");
    fs::write(dest, out).expect("OUT_DIR is writable");
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a readable entry").path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}
