//! `lab verify`'s run as a whole on nodes whose shell is a local bash with stub commands
//! printing recorded outputs: each node's quick reads in one batch, judged one by one, the
//! secrets a batch reads sent once with it, results in the checks' order, a network check that
//! finds no connection failing with its hint.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lab::guest::{FileWrite, Guest, GuestError, Output};
use lab::progress::Quiet;
use lab::provision::verify::{run, select};

/// A node whose scripts run in a local bash with `stubs` first on PATH.
struct StubNode {
    node: String,
    stubs: PathBuf,
    /// The scripts it ran and the files written, in order.
    seen: Mutex<Vec<String>>,
}

impl StubNode {
    fn new(node: &str, dir: &Path, stubs: &[(&str, String)]) -> StubNode {
        let bin = dir.join(node);
        std::fs::create_dir_all(&bin).unwrap();
        for (cmd, body) in stubs {
            let p = common::write_temp(&bin, cmd, &format!("#!/bin/bash\n{body}\n"));
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        StubNode {
            node: node.into(),
            stubs: bin,
            seen: Mutex::new(Vec::new()),
        }
    }
}

impl Guest for StubNode {
    type Tcp = tokio::io::DuplexStream;

    fn node(&self) -> &str {
        &self.node
    }

    async fn run(&self, script: &str) -> Result<Output, GuestError> {
        self.seen.lock().unwrap().push(format!("run {script}"));
        let path = format!("{}:/usr/bin:/bin", self.stubs.display());
        let (code, stdout, stderr) = common::run(
            std::process::Command::new("bash")
                .args(["-c", script])
                .env("PATH", path),
        );
        Ok(Output {
            status: u32::try_from(code).unwrap_or(255),
            stdout,
            stderr,
        })
    }

    async fn run_with_files(
        &self,
        files: &[FileWrite<'_>],
        script: &str,
    ) -> Result<Output, GuestError> {
        for f in files {
            self.seen
                .lock()
                .unwrap()
                .push(format!("send {} {:o} with the script", f.path, f.mode));
        }
        self.run(script).await
    }

    async fn write_file(&self, path: &str, mode: u32, _: &[u8]) -> Result<(), GuestError> {
        self.seen
            .lock()
            .unwrap()
            .push(format!("write {path} {mode:o}"));
        Ok(())
    }

    async fn connect_tcp(&self, host: &str, port: u16) -> Result<Self::Tcp, GuestError> {
        Err(GuestError::Tcp {
            node: self.node.clone(),
            to: format!("{host}:{port}"),
            message: "connection refused".into(),
        })
    }

    async fn reboot(&self) -> Result<(), GuestError> {
        unreachable!("checks never reboot")
    }
}

fn recorded(file: &str) -> PathBuf {
    common::root().join("tests/recorded/debian12").join(file)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nodes_reads_run_as_one_batch_and_each_is_judged_on_its_own() {
    let lab = common::lab("openstack-debian12");
    let secrets = lab::secrets::LabSecrets::from_seed(&lab, &common::SEED);
    let dir = tempfile::tempdir().unwrap();
    let cat = |f: &str| format!("cat {}", recorded(f).display());
    let controller = StubNode::new(
        "controller",
        dir.path(),
        &[
            ("ss", cat("ss-defaults.txt")),
            // The login probe fails (no password yet), the query prints the defaults.
            (
                "mysql",
                format!(
                    "case \"$*\" in *'SELECT 1'*) exit 1 ;; esac\n{}",
                    cat("sql-config-defaults.txt")
                ),
            ),
            (
                "systemctl",
                "case \"$1\" in is-enabled) echo enabled ;; is-active) echo active ;; esac".into(),
            ),
            ("dpkg-query", "printf 'install ok installed'".into()),
        ],
    );
    let compute = StubNode::new("compute1", dir.path(), &[]);
    let checks = select(&lab, &["sql".to_string()]).unwrap();
    let results = run(&lab, &checks, &[controller, compute], &secrets, &Quiet)
        .await
        .unwrap();
    let got: Vec<(&str, &str, bool)> = results
        .iter()
        .map(|r| (r.name, r.node.as_str(), r.passed))
        .collect();
    assert_eq!(
        got,
        [
            ("sql-packages", "controller", true),
            ("sql-enabled", "controller", true),
            ("sql-bind", "controller", false),
            ("sql-config", "controller", false),
            ("sql-remote", "compute1", false),
            ("sql-not-external", "compute1", false),
            ("sql-secure", "controller", false),
        ]
    );
    let hint = |name| {
        let r = results.iter().find(|r| r.name == name).unwrap();
        r.hint.clone().unwrap_or_default()
    };
    assert!(hint("sql-bind").starts_with("MariaDB listens on 127.0.0.1:3306, not 10.0.0.11:3306"));
    assert!(
        hint("sql-config")
            .contains("max_connections is 151; the guide sets max_connections = 4096")
    );
    assert!(hint("sql-remote").starts_with("the compute node gets no answer from MariaDB"));
    let sql_packages = &results[0];
    assert_eq!(
        sql_packages.measured,
        "mariadb-server installed\npython3-pymysql installed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_secret_the_reads_need_goes_once_with_their_one_session() {
    let lab = common::lab("openstack-debian12");
    let secrets = lab::secrets::LabSecrets::from_seed(&lab, &common::SEED);
    let dir = tempfile::tempdir().unwrap();
    let controller = StubNode::new("controller", dir.path(), &[("mysql", "exit 1".into())]);
    let checks = select(&lab, &["sql".to_string()]).unwrap();
    assert!(
        checks
            .iter()
            .filter(|c| c.secrets == ["DB_ROOT_PASS"])
            .count()
            >= 2,
        "two reads of DB_ROOT_PASS at least: {checks:?}"
    );
    let guests = [controller];
    run(&lab, &checks, &guests, &secrets, &Quiet).await.unwrap();
    let seen = guests[0].seen.lock().unwrap().clone();
    // One channel: the secret sent once on it, then the reads; no write on a channel of its own.
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[0],
        "send /root/.lab/secrets/DB_ROOT_PASS 600 with the script"
    );
    assert!(seen[1].starts_with("run # "), "{seen:?}");
}
