//! `lab guide`: the install guide's commands per step and profile, filled with the lab's
//! values. Golden files of both shipped labs; the text from a step on; the passwords where
//! the student types them; each step's commands on the nodes lab runs the step on, each
//! node's commands valid bash (and shellcheck-clean); every file the student writes exactly
//! the one lab installs, at the same path; the packages, services and settings lab checks.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use lab::model::Lab;
use lab::provision::guide::{steps, text};
use lab::secrets::LabSecrets;

const LABS: [&str; 2] = ["openstack-ocata", "openstack-debian12"];

fn lab_and_secrets(name: &str) -> (Lab, LabSecrets) {
    let lab = common::lab(name);
    let secrets = LabSecrets::from_seed(&lab, &common::SEED);
    (lab, secrets)
}

fn guide(name: &str, from: Option<&str>) -> Option<String> {
    let (lab, secrets) = lab_and_secrets(name);
    text(&lab, &secrets, from)
}

/// A paragraph of commands the student types, the step it belongs to and the nodes the
/// text says it runs on.
#[derive(Debug)]
struct Block {
    step: String,
    nodes: Vec<String>,
    commands: String,
}

/// The paragraphs of a text (a blank line inside a here-document does not end one).
fn paragraphs(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut heredoc: Option<&str> = None;
    for line in text.lines() {
        if line.is_empty() && heredoc.is_none() {
            out.push(String::new());
            continue;
        }
        let last = out.last_mut().expect("one at least");
        last.push_str(line);
        last.push('\n');
        match heredoc {
            Some(end) if line == end => heredoc = None,
            Some(_) => {}
            None => {
                heredoc = line
                    .split_once("<<'")
                    .and_then(|(_, d)| d.strip_suffix('\''))
            }
        }
    }
    assert_eq!(heredoc, None, "an unterminated here-document");
    out.into_iter().filter(|p| !p.is_empty()).collect()
}

/// Every command paragraph of a guide with its step and nodes. Each paragraph is a heading
/// (`## `), prose (a capital letter or `- ` first), or commands (a lower-case letter first);
/// commands must come after a line that names their nodes with `lab ssh NODE`.
fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let (mut step, mut nodes) = (String::new(), Vec::new());
    for p in paragraphs(text) {
        if let Some(heading) = p.strip_prefix("## ") {
            step = heading
                .split_once(':')
                .expect("## step: what")
                .0
                .to_string();
            nodes.clear();
        } else if p.starts_with(|c: char| c.is_ascii_lowercase()) {
            assert!(!nodes.is_empty(), "{step}: commands before any node:\n{p}");
            out.push(Block {
                step: step.clone(),
                nodes: nodes.clone(),
                commands: p,
            });
        } else {
            assert!(
                p.starts_with(|c: char| c.is_ascii_uppercase()) || p.starts_with("- "),
                "{step}: neither prose nor commands:\n{p}"
            );
            if p.starts_with("On ") && p.contains("`lab ssh ") {
                nodes = p
                    .split("`lab ssh ")
                    .skip(1)
                    .map(|s| s.split('`').next().unwrap().to_string())
                    .collect();
            }
        }
    }
    out
}

/// The commands the guide has the student type on each node, in order.
fn scripts(blocks: &[Block]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for b in blocks {
        for n in &b.nodes {
            out.entry(n.clone()).or_default().push_str(&b.commands);
        }
    }
    out
}

/// The commands of `step` on `node`.
fn commands_of(blocks: &[Block], step: &str, node: &str) -> String {
    blocks
        .iter()
        .filter(|b| b.step == step && b.nodes.iter().any(|n| n == node))
        .map(|b| b.commands.as_str())
        .collect()
}

#[test]
fn the_whole_guide_of_each_lab_is_pinned_by_a_golden_file() {
    for name in LABS {
        let all = guide(name, None).expect("every step has a text");
        common::assert_golden(&format!("guide/{name}.md"), &all);
    }
}

#[test]
fn every_step_of_the_profile_has_a_text_in_the_guides_order() {
    let expected: [&[&str]; 2] = [
        &[
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
            "memcached",
        ],
        &[
            "chrony",
            "client",
            "sql",
            "sql-secure",
            "mq",
            "mq-user",
            "memcached",
        ],
    ];
    for (name, expected) in LABS.into_iter().zip(expected) {
        let lab = common::lab(name);
        assert_eq!(steps(&lab), expected, "{name}");
        assert_eq!(steps(&lab), lab::provision::order(&lab), "{name}");
        let all = guide(name, None).unwrap();
        let headings: Vec<&str> = all
            .lines()
            .filter_map(|l| l.strip_prefix("## "))
            .map(|h| h.split_once(':').unwrap().0)
            .collect();
        assert_eq!(headings, expected, "{name}");
    }
}

#[test]
fn the_guide_from_a_step_starts_there_with_the_labs_passwords() {
    for name in LABS {
        let (_, secrets) = lab_and_secrets(name);
        let text = guide(name, Some("mq")).unwrap();
        assert!(text.starts_with("## mq: "), "{name}: {text}");
        assert!(
            text.contains("\n## mq-user: ") && text.contains("\n## memcached: "),
            "{name}"
        );
        assert!(!text.contains("## sql"), "{name}: sql is before mq");
        // RABBIT_PASS where the student types it: the command on the controller.
        let rabbit = secrets.password("RABBIT_PASS");
        let mq_user = commands_of(&blocks(&text), "mq-user", "controller");
        assert_eq!(
            mq_user,
            format!(
                "rabbitmqctl add_user openstack {rabbit}\n\
                 rabbitmqctl set_permissions openstack \".*\" \".*\" \".*\"\n"
            ),
            "{name}"
        );
        // DB_ROOT_PASS where the student types it: the answer to the root password question.
        let db = secrets.password("DB_ROOT_PASS");
        let sql = guide(name, Some("sql-secure")).unwrap();
        let answer = sql
            .lines()
            .find(|l| l.contains("root password: Y"))
            .expect("the root password question");
        assert!(
            answer.contains(&format!("then twice {db} ")),
            "{name}: {answer}"
        );
        assert!(
            commands_of(&blocks(&sql), "sql-secure", "controller")
                .contains("mysql_secure_installation\n"),
            "{name}"
        );
        assert!(sql.contains("`lab verify sql-secure`"), "{name}");
        assert!(sql.contains("`lab reset before-sql-secure`"), "{name}");
    }
}

#[test]
fn an_unknown_step_has_no_text() {
    for name in LABS {
        assert_eq!(guide(name, Some("nova")), None, "{name}");
        assert_eq!(guide(name, Some("")), None, "{name}");
    }
    // CentOS's own steps are not Debian's.
    assert_eq!(guide("openstack-debian12", Some("vault-repos")), None);
    assert!(guide("openstack-ocata", Some("vault-repos")).is_some());
}

#[test]
fn debian_asks_to_keep_the_root_password_and_centos_does_not() {
    let debian = guide("openstack-debian12", Some("sql-secure")).unwrap();
    assert!(debian.contains("- Switch to unix_socket authentication: n "));
    let centos = guide("openstack-ocata", Some("sql-secure")).unwrap();
    assert!(!centos.contains("unix_socket"));
}

#[test]
fn each_step_runs_on_the_nodes_lab_runs_it_on() {
    for name in LABS {
        let lab = common::lab(name);
        let blocks = blocks(&guide(name, None).unwrap());
        for step in lab::provision::guide_steps(&lab) {
            let mut named: Vec<String> = blocks
                .iter()
                .filter(|b| b.step == step.id)
                .flat_map(|b| b.nodes.clone())
                .collect();
            named.sort();
            named.dedup();
            let mut expected = step.nodes.clone();
            expected.sort();
            assert_eq!(named, expected, "{name}: step {}", step.id);
        }
    }
}

#[test]
fn each_nodes_commands_are_valid_bash_and_shellcheck_clean() {
    common::require_tool("shellcheck", "shellcheck");
    let dir = tempfile::tempdir().unwrap();
    for name in LABS {
        let lab = common::lab(name);
        let scripts = scripts(&blocks(&guide(name, None).unwrap()));
        let nodes: Vec<&String> = scripts.keys().collect();
        let mut all: Vec<&String> = lab.nodes.iter().map(|n| &n.name).collect();
        all.sort();
        assert_eq!(nodes, all, "{name}: every node has commands");
        for (node, script) in &scripts {
            let f = common::write_temp(
                dir.path(),
                &format!("{name}-{node}.sh"),
                &format!("#!/bin/bash\n{script}"),
            );
            let (code, _, err) = common::run(Command::new("bash").arg("-n").arg(&f));
            assert_eq!(code, 0, "{name} {node}:\n{script}\n{err}");
            let (code, out, _) =
                common::run(Command::new("shellcheck").args(["-S", "warning"]).arg(&f));
            assert_eq!(code, 0, "{name} {node}:\n{out}");
        }
    }
}

/// `install -m MODE SOURCE DEST` lines of a script: SOURCE -> DEST.
fn installs(script: &str) -> BTreeMap<String, String> {
    script
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                ["install", "-m", _, src, dest] => Some((src.to_string(), dest.to_string())),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn every_file_lab_installs_the_student_writes_the_same_at_the_same_path() {
    for (name, expected) in [("openstack-ocata", 9), ("openstack-debian12", 3)] {
        let lab = common::lab(name);
        let blocks = blocks(&guide(name, None).unwrap());
        let mut written = 0;
        for node in &lab.nodes {
            for step in lab::provision::steps(&lab, node) {
                let installs = installs(&step.apply);
                let commands = commands_of(&blocks, step.id, &node.name);
                for file in &step.files {
                    let Some(dest) = installs.get(&file.path) else {
                        // Staged SQL the step feeds to mysql: nothing the student writes.
                        assert_eq!(step.id, "sql-secure", "{name}: {}", file.path);
                        continue;
                    };
                    assert!(
                        !file.content.lines().any(|l| l == "EOF"),
                        "{}: a line EOF would end the here-document",
                        file.path
                    );
                    let heredoc = format!("cat > {dest} <<'EOF'\n{}EOF\n", file.content);
                    assert!(
                        commands.contains(&heredoc),
                        "{name} {}: step {} does not write {dest} as lab does:\n{commands}",
                        node.name,
                        step.id
                    );
                    written += 1;
                }
            }
        }
        assert_eq!(written, expected, "{name}");
    }
}

#[test]
fn packages_services_and_settings_are_the_ones_lab_checks() {
    for name in LABS {
        let lab = common::lab(name);
        let guest = lab::provision::guest_of(lab.image.profile);
        let blocks = blocks(&guide(name, None).unwrap());
        let controller = &lab.controller().name;
        let on = |step: &str| commands_of(&blocks, step, controller);
        let install = if guest.pm == lab::provision::common::Pm::Apt {
            "apt install -y"
        } else {
            "yum install -y"
        };
        let cases: [(&str, &[&str], Option<&str>); 5] = [
            (
                "chrony",
                &[guest.chrony_package],
                Some(guest.chrony_service),
            ),
            ("client", guest.client_packages, None),
            ("sql", guest.sql_packages, Some(guest.sql_service)),
            ("mq", guest.mq_packages, Some(guest.mq_service)),
            (
                "memcached",
                guest.memcached_packages,
                Some(guest.memcached_service),
            ),
        ];
        for (step, packages, service) in cases {
            let commands = on(step);
            let line = format!("{install} {}\n", packages.join(" "));
            assert!(commands.contains(&line), "{name} {step}: {line}{commands}");
            if let Some(service) = service {
                let enable = format!("systemctl enable {service}");
                assert!(commands.contains(&enable), "{name} {step}: {commands}");
            }
        }
        let setting = guest.memcached_setting;
        let line = setting.line.replace("{controller}", controller);
        let memcached = on("memcached");
        assert!(
            memcached.contains(&line) && memcached.contains(setting.path),
            "{name}: {memcached}"
        );
    }
}

/// The guide's memcached edit, run on a copy of the distribution's file, leaves the one
/// listen line lab's check wants (`memcached-check.sh`: one line matching the pattern, and
/// the lab's line).
#[test]
fn the_memcached_edit_leaves_one_listen_line() {
    let dir = tempfile::tempdir().unwrap();
    // The lines around the setting in each distribution's file (memcached 1.6 on Debian 12,
    // 1.4 on CentOS 7).
    let defaults = [
        (
            "openstack-debian12",
            "-m 64\n\
             -p 11211\n\
             -u memcache\n\
             # Specify which IP address to listen on. The default is to listen on all IP addresses\n\
             # This parameter is one of the only security measures that memcached has, so make sure\n\
             # it's listening on a firewalled interface.\n\
             -l 127.0.0.1\n\
             \n\
             # Limit the number of simultaneous incoming connections. The daemon default is 1024\n\
             # -c 1024\n",
        ),
        (
            "openstack-ocata",
            "PORT=\"11211\"\nUSER=\"memcached\"\nMAXCONN=\"1024\"\nCACHESIZE=\"64\"\nOPTIONS=\"\"\n",
        ),
    ];
    for (name, default) in defaults {
        let lab = common::lab(name);
        let guest = lab::provision::guest_of(lab.image.profile);
        let setting = guest.memcached_setting;
        let controller = &lab.controller().name;
        let blocks = blocks(&guide(name, None).unwrap());
        let commands = commands_of(&blocks, "memcached", controller);
        let edit = commands
            .lines()
            .find(|l| l.starts_with("sed -i "))
            .expect("the edit");
        let file = common::write_temp(dir.path(), name, default);
        let edit = edit.replace(setting.path, file.to_str().unwrap());
        let (code, _, err) = common::run(Command::new("bash").args(["-c", &edit]));
        assert_eq!(code, 0, "{name}: {edit}: {err}");
        let after = std::fs::read_to_string(&file).unwrap();
        let line = setting.line.replace("{controller}", controller);
        let pattern = setting.pattern.trim_start_matches('^');
        let matching: Vec<&str> = after.lines().filter(|l| l.starts_with(pattern)).collect();
        assert_eq!(matching, [line.as_str()], "{name}:\n{after}");
    }
}
