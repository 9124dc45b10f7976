//! The project's own shell scripts (the end-to-end tests, the bench, the fresh-machine proof,
//! the host set-up and `.ci/run`) pass ShellCheck, sourced files followed (`-x`), as run from
//! the repository's root.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{require_tool, run};

/// Every `*.sh` under `dirs`, and `.ci/run`, relative to the repository's root.
fn scripts(root: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::from(".ci/run")];
    for dir in ["scripts", "tests/e2e", "tests/bench", "tests/fresh"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "sh") {
                found.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_script_passes_shellcheck() {
    require_tool("shellcheck", "shellcheck");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scripts = scripts(root);
    for must in [
        "tests/e2e/run.sh",
        "tests/e2e/lib.sh",
        "scripts/host-packages.sh",
    ] {
        assert!(scripts.contains(&PathBuf::from(must)), "{must} not found");
    }
    let (code, out, err) = run(Command::new("shellcheck")
        .arg("-x")
        .args(&scripts)
        .current_dir(root));
    assert_eq!(code, 0, "{out}{err}");
}
