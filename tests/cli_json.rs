//! The global `--json`, through the real binary on libvirt's test driver: a changing command
//! writes its events and notes on stderr as JSON lines and its result on stdout as one JSON
//! line; a failure is `{"kind":"error",...}` on stdout; a reading command's report stays one
//! JSON document; without `--json` the text is as it was.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::run;
use lab::names;
use serde_json::Value;

/// A private state root, pool root and cache, and a test-driver host file.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        for sub in ["state", "pools", "cache"] {
            std::fs::create_dir(env.path(sub)).unwrap();
        }
        std::fs::write(env.path("centos7.qcow2"), vec![0x51u8; 100_000]).unwrap();
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A host of 32 GiB and 8 CPUs holding the ocata lab's pool with its image and seeds
    /// uploaded whole (the test driver has no volume upload) and, with `domains`, the lab's
    /// two domains running; its URI. Each `lab` process opens it afresh.
    fn host(&self, domains: bool) -> String {
        let pool_dir = self.path("pools").join(names::pool("ocata"));
        let mut volumes = String::new();
        for node in ["controller", "compute1"] {
            let seed = names::seed_volume(node);
            volumes.push_str(&volume(&pool_dir, &seed));
            volumes.push_str(&volume(&pool_dir, &names::complete_marker(&seed)));
        }
        let image = names::image_volume("centos7");
        volumes.push_str(&volume(&pool_dir, &image));
        volumes.push_str(&volume(&pool_dir, &names::complete_marker(&image)));
        let mut xml = format!(
            "<node><cpu><mhz>2000</mhz><model>i686</model><nodes>1</nodes><sockets>1</sockets><cores>8</cores><threads>1</threads><active>8</active></cpu><memory>{}</memory>\n<pool type='dir'><name>{}</name><uuid>35bb2ad9-388a-cdfe-461a-b8907f6e5301</uuid><capacity unit='GiB'>100</capacity><allocation unit='GiB'>0</allocation><available unit='GiB'>100</available><source/><target><path>{}</path></target>{volumes}</pool>\n",
            32 << 20,
            names::pool("ocata"),
            pool_dir.display()
        );
        if domains {
            for (node, role) in [("controller", "controller"), ("compute1", "compute")] {
                xml.push_str(&format!(
                    "<domain type='test'><name>{}</name><metadata><lab:owner xmlns:lab='{}' lab='ocata' node='{node}' role='{role}' image='centos7' generation='1' version='1'/></metadata><memory>1048576</memory><os><type>hvm</type></os></domain>\n",
                    names::domain("ocata", node),
                    names::METADATA_NS
                ));
            }
        }
        xml.push_str("</node>\n");
        let file = self.path(if domains { "running.xml" } else { "pool.xml" });
        std::fs::write(&file, xml).unwrap();
        format!("test://{}", file.display())
    }

    /// `lab ARGS` on the ocata lab at `uri`: (exit code, stdout, stderr).
    fn lab(&self, uri: &str, args: &[&str]) -> (i32, String, String) {
        run(Command::new(env!("CARGO_BIN_EXE_lab"))
            .args(args)
            .args(["-l", "openstack-ocata", "-c", uri, "--pool-root"])
            .arg(self.path("pools"))
            .current_dir(self.dir.path())
            .env("LAB_STATE_DIR", self.path("state"))
            .env("LAB_CACHE_DIR", self.path("cache"))
            .env_remove(lab::app::LAB_ENV)
            .env_remove("LAB_INSTANCE"))
    }
}

fn volume(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    format!(
        "<volume><name>{name}</name><key>{p}</key><capacity unit='bytes'>1000</capacity><allocation unit='bytes'>1000</allocation><target><path>{p}</path></target></volume>",
        p = path.display()
    )
}

/// Every line of `text`, each a JSON object with a string `kind`.
fn json_lines(text: &str) -> Vec<Value> {
    assert!(!text.is_empty(), "no line");
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?} in\n{text}"));
            assert!(v["kind"].is_string(), "no kind: {line}");
            v
        })
        .collect()
}

/// The one line of stdout, as JSON.
fn result(stdout: &str) -> Value {
    let lines = json_lines(stdout);
    assert_eq!(lines.len(), 1, "one result line: {stdout}");
    lines.into_iter().next().unwrap()
}

/// The names of the work events of `kind` that ended in `action`.
fn named(events: &[Value], kind: &str, action: &str) -> Vec<String> {
    let mut names: Vec<String> = events
        .iter()
        .filter(|e| e["kind"] == kind && e["action"] == action)
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

const DISK_NOTE: &str =
    "controller: disk 5GB is smaller than the image, so it gets the image's 8GiB";

#[test]
fn up_json_writes_its_events_and_notes_as_json_lines_and_its_result_on_stdout() {
    let env = Env::new();
    let uri = env.host(false);
    let line = [
        "up",
        "--json",
        "--no-provision",
        "--accel",
        "tcg",
        "--image",
        "centos7.qcow2",
    ];
    let (code, out, err) = env.lab(&uri, &line);
    assert_eq!(code, 0, "{err}");
    let events = json_lines(&err);
    let notes: Vec<&Value> = events.iter().filter(|e| e["kind"] == "note").collect();
    assert_eq!(notes.len(), 1, "{err}");
    assert_eq!(notes[0]["text"], DISK_NOTE);
    assert_eq!(
        named(&events, "volume", "created"),
        ["compute1.qcow2", "controller.qcow2"]
    );
    assert_eq!(
        named(&events, "network", "started"),
        ["lab-ocata-external", "lab-ocata-internal"]
    );
    assert_eq!(
        named(&events, "domain", "started"),
        ["lab-ocata-compute1", "lab-ocata-controller"]
    );
    assert_eq!(named(&events, "pool", "created"), ["lab-ocata.logs"]);
    let r = result(&out);
    assert_eq!(r["kind"], "result");
    assert_eq!(r["command"], "up");
    assert_eq!(r["lab"], "ocata");
    assert_eq!(r["uri"], uri.as_str());
    assert_eq!(r["state"], "up");
    assert_eq!(r["changed"], true);
    assert_eq!(r["steps"], serde_json::json!([]));
    assert_eq!(r["snapshot"], Value::Null, "no provisioning, no snapshot");
}

#[test]
fn up_without_json_prints_its_text_and_notes_as_plain_lines() {
    let env = Env::new();
    let uri = env.host(false);
    let line = [
        "up",
        "--no-provision",
        "--accel",
        "tcg",
        "--image",
        "centos7.qcow2",
    ];
    let (code, out, err) = env.lab(&uri, &line);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("lab ocata is up on {uri}\n"));
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines.iter().all(|l| !l.starts_with('{')),
        "no JSON without --json: {err}"
    );
    // Every plain line is stamped HH:MM:SS, notes too.
    let note = lines.iter().find(|l| l.contains("note: ")).unwrap();
    assert_eq!(&note[8..], format!(" note: {DISK_NOTE}"), "{err}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("domain   lab-ocata-controller             started ")),
        "{err}"
    );
}

#[test]
fn snapshot_save_and_down_json_name_the_objects_and_report_on_stdout() {
    let env = Env::new();
    let uri = env.host(true);
    // The flag is global: before the verb as after it.
    let (code, out, err) = env.lab(&uri, &["--json", "snapshot", "save", "ex1"]);
    assert_eq!(code, 0, "{err}");
    let events = json_lines(&err);
    assert_eq!(
        named(&events, "snapshot", "saved"),
        ["lab-ocata-compute1", "lab-ocata-controller"]
    );
    assert_eq!(
        named(&events, "domain", "resumed"),
        ["lab-ocata-compute1", "lab-ocata-controller"]
    );
    let r = result(&out);
    assert_eq!(
        (&r["kind"], &r["command"], &r["snapshot"], &r["lab"]),
        (
            &"result".into(),
            &"snapshot save".into(),
            &"ex1".into(),
            &"ocata".into()
        )
    );

    let (code, out, err) = env.lab(&uri, &["down", "--json"]);
    assert_eq!(code, 0, "{err}");
    let events = json_lines(&err);
    assert_eq!(
        named(&events, "domain", "removed"),
        ["lab-ocata-compute1", "lab-ocata-controller"]
    );
    assert_eq!(named(&events, "pool", "removed"), ["lab-ocata"]);
    let removed = events.iter().filter(|e| e["action"] == "removed").count();
    let r = result(&out);
    assert_eq!(
        (&r["kind"], &r["command"]),
        (&"result".into(), &"down".into())
    );
    assert_eq!(r["removed"], removed, "{err}");
}

#[test]
fn a_failure_with_json_is_one_error_object_on_stdout_and_the_line_on_stderr() {
    let env = Env::new();
    let uri = env.host(false);
    let (code, out, err) = env.lab(&uri, &["snapshot", "save", "ex1", "--json"]);
    assert_eq!(code, 3, "{err}");
    let r = result(&out);
    assert_eq!(r["kind"], "error");
    assert_eq!(r["exit"], 3);
    let message = r["message"].as_str().unwrap();
    assert!(message.starts_with("lab ocata is not up"), "{message}");
    assert_eq!(err, format!("lab: {message}\n"));
}

#[test]
fn a_reading_command_that_fails_keeps_its_report_as_the_one_json_document() {
    let env = Env::new();
    let uri = env.host(false);
    // The image cache is empty: doctor fails, after its findings.
    let (code, out, err) = env.lab(&uri, &["doctor", "--json"]);
    assert_eq!(code, 3, "{err}");
    let findings: Value = serde_json::from_str(&out).expect("one JSON document");
    let image = findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "image")
        .unwrap();
    assert_eq!(image["level"], "fail", "{out}");
    assert!(err.starts_with("lab: the lab cannot come up here"), "{err}");
}
