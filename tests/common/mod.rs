//! Helpers shared by the integration tests: fixture labs and golden files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use lab::image::Catalogue;
use lab::model::{Lab, Source};
use lab::render::{Accel, RenderContext};

/// The fixed seed of every golden test: the same keys and passwords on every run.
pub const SEED: [u8; 32] = [7; 32];

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A lab shipped in labs/, loaded and validated.
pub fn lab(name: &str) -> Lab {
    let path = root().join("labs").join(format!("{name}.toml"));
    let source = Source::resolve(path.to_str().unwrap()).unwrap();
    source.load(&Catalogue::builtin()).unwrap().0
}

/// The render context of golden tests: TCG, system paths, the fixed seed.
pub fn context(lab: &Lab) -> RenderContext {
    lab::plan::context(lab, Accel::Tcg, &SEED)
}

/// Compares `actual` with tests/golden/<name>; `UPDATE_GOLDEN=1` rewrites the file instead.
pub fn assert_golden(name: &str, actual: &str) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(5)
            .map(|(i, (e, a))| format!("line {}:\n  golden: {e}\n  actual: {a}", i + 1))
            .collect();
        panic!(
            "{} differs from the rendering ({} vs {} lines):\n{}\nrun with UPDATE_GOLDEN=1 if the change is intended",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

/// Panics with what to install when a validator this test relies on is missing.
pub fn require_tool(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: apt-get install {package} (.ci/run does)"
    );
}

/// Runs a command, returning (status code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn write_temp(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}
