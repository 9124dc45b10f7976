//! Which lab a bare command is about, driven through the real binary with commands that need
//! no libvirtd (plan, creds, and libvirt's test driver for status, ssh and down): `--lab`
//! anywhere on the line, `$LAB_FILE`, `./lab.toml`, the lab the last `lab up` chose, the
//! default; hints that name the lab; names users type.

mod common;

use std::path::Path;
use std::process::Command;

use common::run;
use lab::state::{self, Current, LabState};

/// The binary with a private state root and working directory, and no lab from the
/// environment.
struct Env {
    state: tempfile::TempDir,
    cwd: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            state: tempfile::tempdir().unwrap(),
            cwd: tempfile::tempdir().unwrap(),
        }
    }

    fn lab(&self, args: &[&str]) -> (i32, String, String) {
        run(Command::new(env!("CARGO_BIN_EXE_lab"))
            .args(args)
            .current_dir(self.cwd.path())
            .env("LAB_STATE_DIR", self.state.path())
            .env_remove(lab::app::LAB_ENV)
            .env_remove("LIBVIRT_DEFAULT_URI"))
    }

    /// What `lab up` leaves of the debian12 lab: its state (seed) and the current record.
    fn debian12_was_up(&self) {
        LabState::new(self.state.path(), "ocata-deb")
            .seed()
            .unwrap();
        let current = Current {
            name: "ocata-deb".into(),
            arg: "openstack-debian12".into(),
        };
        state::set_current(self.state.path(), &current).unwrap();
    }

    /// The lab name in the first line of `lab ARGS plan`.
    fn planned(&self, args: &[&str]) -> String {
        let mut line = args.to_vec();
        line.extend(["plan", "--accel", "tcg"]);
        let (code, out, err) = self.lab(&line);
        assert_eq!(code, 0, "{line:?}: {err}");
        let first = out.lines().next().unwrap_or_default();
        first
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    }
}

/// A libvirt test-driver host holding the controller's domain of the debian12 lab, shut off.
fn test_host(dir: &Path) -> String {
    let node = dir.join("node.xml");
    std::fs::write(
        &node,
        "<node>\n  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\n    <name>lab-ocata-deb-controller</name>\n    <memory>1048576</memory>\n    <os><type>hvm</type></os>\n    <test:runstate>5</test:runstate>\n  </domain>\n</node>\n",
    )
    .unwrap();
    format!("test://{}", node.display())
}

#[test]
fn lab_and_connect_are_accepted_before_and_after_the_verb() {
    let env = Env::new();
    assert_eq!(env.planned(&["--lab", "openstack-debian12"]), "ocata-deb");
    assert_eq!(env.planned(&["-l", "openstack-debian12"]), "ocata-deb");
    let (code, out, err) = env.lab(&["plan", "--lab", "openstack-debian12"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("lab ocata-deb "), "{out}");
    for line in [
        [
            "--lab",
            "openstack-debian12",
            "-c",
            "test:///default",
            "status",
        ],
        [
            "status",
            "-c",
            "test:///default",
            "--lab",
            "openstack-debian12",
        ],
    ] {
        let (code, out, err) = env.lab(&line);
        assert_eq!(code, 0, "{line:?}: {err}");
        assert!(
            out.starts_with("lab ocata-deb on test:///default\n"),
            "{out}"
        );
        assert!(
            out.contains("not created: run `lab up --lab openstack-debian12`"),
            "{out}"
        );
    }
}

#[test]
fn list_on_a_host_without_labs_says_so_and_its_json_is_an_empty_list() {
    let env = Env::new();
    // test:///default holds one domain, `test`, which is not a lab's.
    let (code, out, err) = env.lab(&["list", "-c", "test:///default"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "no lab on test:///default: `lab up` makes one\n");
    let (code, out, err) = env.lab(&["-c", "test:///default", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "[]");
}

#[test]
fn bare_commands_follow_the_lab_the_last_up_chose_until_its_down() {
    let env = Env::new();
    assert_eq!(env.planned(&[]), "ocata", "nothing recorded: the default");
    env.debian12_was_up();
    assert_eq!(env.planned(&[]), "ocata-deb");
    let (code, out, err) = env.lab(&["creds"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("# lab ocata-deb:"), "{out}");
    assert_eq!(env.planned(&["--lab", "openstack-ocata"]), "ocata");

    let libvirt = tempfile::tempdir().unwrap();
    let (code, out, err) = env.lab(&["down", "-c", &test_host(libvirt.path())]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("lab ocata-deb is down"), "{out}");
    assert!(state::current(env.state.path()).is_none());
    assert_eq!(
        env.planned(&[]),
        "ocata",
        "after its down: the default again"
    );
}

#[test]
fn the_environment_and_a_lab_toml_here_come_before_the_current_lab() {
    let env = Env::new();
    env.debian12_was_up();
    let shipped = std::fs::read_to_string(common::root().join("labs/openstack-debian12.toml"));
    let mine = shipped
        .unwrap()
        .replace("name = \"ocata-deb\"", "name = \"mine\"");
    std::fs::write(env.cwd.path().join("lab.toml"), mine).unwrap();
    assert_eq!(env.planned(&[]), "mine", "./lab.toml");
    let with_env = |args: &[&str]| {
        let (code, out, err) = run(Command::new(env!("CARGO_BIN_EXE_lab"))
            .args(args)
            .current_dir(env.cwd.path())
            .env("LAB_STATE_DIR", env.state.path())
            .env(lab::app::LAB_ENV, "openstack-ocata"));
        assert_eq!(code, 0, "{err}");
        out.split_whitespace().nth(1).unwrap().to_string()
    };
    assert_eq!(with_env(&["plan", "--accel", "tcg"]), "ocata", "$LAB_FILE");
    assert_eq!(
        with_env(&["plan", "--accel", "tcg", "-l", "openstack-debian12"]),
        "ocata-deb",
        "--lab first"
    );
}

#[test]
fn hints_name_the_lab_when_a_bare_command_would_pick_another() {
    let env = Env::new();
    let (code, _, err) = env.lab(&["creds", "--lab", "openstack-debian12"]);
    assert_eq!(code, 3);
    assert!(
        err.contains("no state in") && err.contains("run `lab up --lab openstack-debian12` first"),
        "{err}"
    );
    // A message from deep in the library gets the flag too.
    let line = [
        "snapshot",
        "list",
        "-c",
        "test:///default",
        "-l",
        "openstack-debian12",
    ];
    let (code, _, err) = env.lab(&line);
    assert_eq!(code, 3);
    assert!(
        err.starts_with("lab: lab ocata-deb is not up")
            && err.contains("run `lab up --lab openstack-debian12` first"),
        "{err}"
    );
    let (code, _, err) = env.lab(&["creds"]);
    assert_eq!(code, 3);
    assert!(
        err.starts_with("lab: lab ocata has no state") && err.contains("run `lab up` first"),
        "the default lab needs no --lab: {err}"
    );
}

#[test]
fn ssh_to_a_node_libvirt_does_not_run_says_so_first() {
    let env = Env::new();
    env.debian12_was_up();
    let libvirt = tempfile::tempdir().unwrap();
    let uri = test_host(libvirt.path());
    let (code, _, err) = env.lab(&["ssh", "controller", "-c", &uri, "--", "true"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.starts_with(&format!(
            "lab: controller is not running (domain lab-ocata-deb-controller is shut off on {uri}): `lab up` starts it"
        )),
        "{err}"
    );
    let (code, _, err) = env.lab(&["ssh", "-l", "openstack-debian12", "-c", &uri, "controller"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("shut off") && err.contains("`lab up --lab openstack-debian12` starts it"),
        "named by --lab, the hint names it: {err}"
    );
    let (code, _, err) = env.lab(&["-c", &uri, "ssh", "compute1", "uptime"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.starts_with("lab: compute1 does not exist (no domain lab-ocata-deb-compute1"),
        "{err}"
    );
}

#[test]
fn plan_shows_the_accel_as_users_type_it() {
    let env = Env::new();
    for accel in ["tcg", "kvm"] {
        let (code, out, err) = env.lab(&["plan", "--accel", accel]);
        assert_eq!(code, 0, "{err}");
        let first = out.lines().next().unwrap();
        assert!(first.ends_with(&format!(", accel {accel}")), "{first}");
    }
}

#[test]
fn an_instance_is_named_by_every_command_and_must_exist_first() {
    let env = Env::new();
    let placement = lab::model::instance::Placement {
        instance: "s1".into(),
        subnets: [("external".to_string(), "198.18.5.0/24".to_string())].into(),
    };
    LabState::new(env.state.path(), "ocata-deb-s1")
        .write_placement(&placement)
        .unwrap();
    let (code, out, err) = env.lab(&["plan", "-l", "openstack-debian12", "-i", "s1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("lab ocata-deb-s1 "), "{out}");
    assert!(
        out.contains("external=198.18.5.11") && out.contains("internal=10.0.0.11"),
        "the recorded subnet outside, the guide's addresses inside: {out}"
    );

    let (code, _, err) = env.lab(&[
        "status",
        "-c",
        "test:///default",
        "-l",
        "openstack-debian12",
        "--instance",
        "s2",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("lab: lab ocata-deb has no instance s2 (no ")
            && err.contains("`lab up --instance s2 --lab openstack-debian12` makes it"),
        "{err}"
    );
    let (code, _, err) = env.lab(&["status", "-l", "openstack-debian12", "--instance", "S2"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("instance name \"S2\""), "{err}");
}

#[test]
fn lab_steps_lists_the_guides_steps_with_their_sections_nodes_and_checks() {
    let env = Env::new();
    let (code, out, err) = env.lab(&["steps", "-l", "openstack-debian12"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(" 6  mq-user         Message queue, finishes mq; on controller"),
        "{out}"
    );
    assert!(
        out.contains("    checks: amqp-login, amqp-wrong-password, amqp-permissions"),
        "{out}"
    );
    let (code, out, err) = env.lab(&["steps", "-l", "openstack-ocata", "--json"]);
    assert_eq!(code, 0, "{err}");
    let steps: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<&str> = steps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "network",
            "vault-repos",
            "chrony",
            "openstack-repo",
            "upgrade",
            "client",
            "selinux",
            "sql",
            "sql-secure",
            "mq",
            "mq-user",
            "memcached"
        ]
    );
    let chrony = &steps[2];
    assert_eq!(chrony["section"], "Network Time Protocol (NTP)");
    assert_eq!(
        chrony["nodes"],
        serde_json::json!(["controller", "compute1"])
    );
    assert!(
        chrony["checks"]
            .as_array()
            .unwrap()
            .contains(&"chrony-allow".into())
    );
}

#[test]
fn an_unknown_step_is_a_usage_error_naming_the_labs_steps_before_any_node_is_reached() {
    let env = Env::new();
    let steps = "chrony, client, sql, sql-secure, mq, mq-user, memcached";
    for line in [
        vec!["verify", "nova", "-l", "openstack-debian12"],
        vec!["guide", "nova", "-l", "openstack-debian12"],
        vec![
            "up",
            "--stop-before",
            "nova",
            "-l",
            "openstack-debian12",
            "-c",
            "test:///default",
        ],
    ] {
        let (code, _, err) = env.lab(&line);
        assert_eq!(code, 2, "{line:?}: {err}");
        assert!(
            err.contains(&format!(
                "no step nova in this lab: its steps are {steps} (`lab steps --lab openstack-debian12` lists them)"
            )),
            "{line:?}: {err}"
        );
    }
    assert!(
        !env.state.path().join("ocata-deb").exists(),
        "nothing of the lab was made"
    );
}

#[test]
fn lab_guide_needs_the_labs_state_for_its_passwords() {
    let env = Env::new();
    let (code, _, err) = env.lab(&["guide", "mq", "-l", "openstack-debian12"]);
    assert_ne!(code, 0);
    assert!(err.contains("has no state"), "{err}");
    assert!(err.contains("lab up --lab openstack-debian12"), "{err}");
    env.debian12_was_up();
    let (code, out, err) = env.lab(&["guide", "mq"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Check: `lab verify mq`"),
        "the current lab: {out}"
    );
    let (code, named, err) = env.lab(&["guide", "mq", "-l", "openstack-debian12"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        named.contains("Check: `lab verify mq --lab openstack-debian12`"),
        "each command names the lab as it was named: {named}"
    );
    assert!(out.contains("rabbitmqctl add_user openstack "), "{out}");
    assert!(out.contains("memcached"), "{out}");
    assert!(!out.contains("mysql_secure_installation"), "{out}");
}
