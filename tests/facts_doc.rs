//! docs/centos7-facts.md: every fact line names its source or its test, the tests it names
//! exist, and it agrees with the code's defaults and the vendored key.

mod common;

use lab::model::defaults::{CENTOS_BASE_URLS, OCATA_REPO_URLS};
use lab::provision::centos7::SIG_CLOUD_KEY_FINGERPRINT;

const DOC: &str = "docs/centos7-facts.md";

fn doc() -> String {
    std::fs::read_to_string(common::root().join(DOC)).unwrap()
}

/// The bullets of the file, each with its continuation lines joined.
fn bullets(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("- ") {
            out.push(rest.to_string());
        } else if line.starts_with("  ") && !out.is_empty() {
            let last = out.last_mut().unwrap();
            last.push(' ');
            last.push_str(line.trim());
        }
    }
    out
}

/// The text of a `## ` section.
fn section<'a>(text: &'a str, title: &str) -> &'a str {
    let start = text
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("{DOC}: no section {title:?}"));
    let rest = &text[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    &rest[..end]
}

#[test]
fn every_fact_names_its_source_or_its_test() {
    let text = doc();
    let all = bullets(&text);
    assert!(all.len() >= 15, "{} bullets", all.len());
    for b in &all {
        assert!(
            b.contains("Source:") || b.contains("Test:"),
            "{DOC}: no source or test: {b}"
        );
    }
}

#[test]
fn the_tests_it_names_exist() {
    let mut named = 0;
    for b in bullets(&doc()) {
        let mut file: Option<String> = None;
        for (i, token) in b.split('`').enumerate() {
            if i % 2 == 0 {
                continue;
            }
            if token.starts_with("tests/") && token.ends_with(".rs") {
                file = Some(std::fs::read_to_string(common::root().join(token)).unwrap());
            } else if let Some(f) = &file
                && token.contains('_')
                && token
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
            {
                assert!(
                    f.contains(&format!("fn {token}(")),
                    "{DOC}: no test {token}"
                );
                named += 1;
            }
        }
    }
    assert!(named >= 8, "only {named} tests named");
}

#[test]
fn it_agrees_with_the_defaults_and_the_key() {
    let text = doc();
    for url in CENTOS_BASE_URLS.iter().chain(OCATA_REPO_URLS) {
        assert!(
            text.contains(&format!("`{url}`")),
            "{DOC} does not name {url}"
        );
    }
    let spaced = "736A F511 6D9C 40E2 AF6B 074B F9B9 FEE7 7644 29E6";
    assert!(text.contains(spaced));
    assert_eq!(spaced.replace(' ', ""), SIG_CLOUD_KEY_FINGERPRINT);
    assert!(text.contains("exclude=sip,PyQt4"));
}

#[test]
fn the_unproven_upgrade_is_written_down_and_the_file_is_linked() {
    let text = doc();
    let unproven = section(&text, "Unproven on paper");
    for needle in [
        "`yum upgrade` of the 2211 image",
        "7.6-era Ocata",
        "MariaDB 10.1",
        "archive.kernel.org",
    ] {
        assert!(
            unproven.contains(needle),
            "{DOC}: unproven section lacks {needle:?}"
        );
    }
    for doc_file in ["ARCHITECTURE.md", "README.md"] {
        let t = std::fs::read_to_string(common::root().join(doc_file)).unwrap();
        assert!(t.contains(DOC), "{doc_file} does not link {DOC}");
    }
}
