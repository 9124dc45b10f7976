//! `lab guide`: the install guide's commands per step and profile, filled with the lab's
//! values: golden files of both shipped labs, the text from a step on, the passwords where
//! the student types them, and every command paragraph valid bash (shellcheck too).

mod common;

use std::process::Command;

use lab::provision::guide::{steps, text};
use lab::secrets::LabSecrets;

const LABS: [&str; 2] = ["openstack-ocata", "openstack-debian12"];

fn guide(lab: &str, from: Option<&str>) -> Option<String> {
    let lab = common::lab(lab);
    let secrets = LabSecrets::from_seed(&lab, &common::SEED);
    text(&lab, &secrets, from)
}

#[test]
fn the_whole_guide_of_each_lab_is_pinned_by_a_golden_file() {
    for lab in LABS {
        let all = guide(lab, None).expect("every step has a text");
        common::assert_golden(&format!("guide/{lab}.md"), &all);
    }
}

#[test]
fn every_step_of_the_profile_has_a_text_in_the_guides_order() {
    for name in LABS {
        let lab = common::lab(name);
        assert_eq!(steps(&lab), lab::provision::order(&lab), "{name}");
    }
}

#[test]
fn the_guide_from_a_step_starts_there_with_the_labs_passwords() {
    for name in LABS {
        let lab = common::lab(name);
        let secrets = LabSecrets::from_seed(&lab, &common::SEED);
        let text = guide(name, Some("mq")).unwrap();
        assert!(text.starts_with("## mq: "), "{name}: {text}");
        assert!(
            text.contains("\n## mq-user: ") && text.contains("\n## memcached: "),
            "{name}"
        );
        assert!(!text.contains("## sql"), "{name}: sql is before mq");
        let rabbit = secrets.password("RABBIT_PASS");
        assert!(
            text.contains(&format!("\nrabbitmqctl add_user openstack {rabbit}\n")),
            "{name}: {text}"
        );
        assert!(text.contains("\nrabbitmqctl set_permissions openstack \".*\" \".*\" \".*\"\n"));
        let sql = guide(name, Some("sql-secure")).unwrap();
        assert!(sql.contains(secrets.password("DB_ROOT_PASS")), "{name}");
        assert!(sql.contains("lab verify sql-secure"), "{name}");
        assert_eq!(guide(name, Some("nova")), None);
    }
}

/// The paragraphs a student types: those that start with a command (prose starts with a
/// capital letter or `##`); a blank line inside a here-document does not end one.
fn commands(text: &str) -> Vec<String> {
    let mut paragraphs = vec![String::new()];
    let mut heredoc: Option<&str> = None;
    for line in text.lines() {
        if line.is_empty() && heredoc.is_none() {
            paragraphs.push(String::new());
            continue;
        }
        let last = paragraphs.last_mut().expect("one at least");
        last.push_str(line);
        last.push('\n');
        match heredoc {
            Some(end) if line == end => heredoc = None,
            None => {
                heredoc = line
                    .split_once("<<'")
                    .and_then(|(_, d)| d.strip_suffix('\''))
            }
            _ => {}
        }
    }
    paragraphs
        .into_iter()
        .filter(|p| p.starts_with(|c: char| c.is_ascii_lowercase()))
        .collect()
}

#[test]
fn every_command_paragraph_is_valid_bash() {
    common::require_tool("shellcheck", "shellcheck");
    let dir = tempfile::tempdir().unwrap();
    for name in LABS {
        let all = guide(name, None).unwrap();
        let paragraphs = commands(&all);
        assert!(paragraphs.len() >= 8, "{name}: {paragraphs:?}");
        for (i, p) in paragraphs.iter().enumerate() {
            let f = common::write_temp(
                dir.path(),
                &format!("{name}-{i}.sh"),
                &format!("#!/bin/bash\n{p}\n"),
            );
            let (code, _, err) = common::run(Command::new("bash").arg("-n").arg(&f));
            assert_eq!(code, 0, "{name}: {p}\n{err}");
            let (code, out, _) =
                common::run(Command::new("shellcheck").args(["-S", "warning"]).arg(&f));
            assert_eq!(code, 0, "{name}: {p}\n{out}");
        }
    }
}

#[test]
fn the_files_the_student_writes_are_the_ones_lab_writes() {
    let lab = common::lab("openstack-debian12");
    let all = guide("openstack-debian12", None).unwrap();
    let cnf = lab::provision::common::openstack_cnf(&lab);
    assert!(
        all.contains(&format!(
            "cat > /etc/mysql/mariadb.conf.d/99-openstack.cnf <<'EOF'\n{cnf}EOF\n"
        )),
        "{all}"
    );
}
