//! Several check scripts as one: a node's quick reads (`lab verify`'s, the steps' checks of
//! a provisioned node) run one after another in one SSH session (a session's start costs a
//! guest under emulation more than most reads), each in a subshell of its own with stdout
//! and stderr together, then split back into each script's output and exit status.

/// The line that ends each script's output in a batch, followed by its exit status.
const MARK: &str = "@@lab-verify-end@@";

/// One bash script that runs `scripts` in order, each in a subshell (its `exit` ends only
/// itself), its output followed by a line `MARK <status>`.
pub fn script(scripts: &[&str]) -> String {
    // Its first line names it in logs and errors.
    let mut out = format!("# {} checks, one after another\n", scripts.len());
    for s in scripts {
        out.push_str("(\n");
        out.push_str(s.trim_end());
        out.push_str(&format!(
            "\n) </dev/null 2>&1\nprintf '\\n{MARK} %d\\n' $?\n"
        ));
    }
    out
}

/// Each script's output (the newline the batch added before its mark removed) and exit
/// status, in order; `None` for those the batch did not reach (it was cut short).
pub fn split(output: &str, count: usize) -> Vec<Option<(String, u32)>> {
    let mut results = Vec::with_capacity(count);
    let mut rest = output;
    while results.len() < count {
        let Some(at) = rest.find(&format!("\n{MARK} ")) else {
            break;
        };
        let text = &rest[..at];
        let after = &rest[at + 1 + MARK.len() + 1..];
        let (status, tail) = after.split_once('\n').unwrap_or((after, ""));
        let Ok(status) = status.trim().parse::<u32>() else {
            break;
        };
        results.push(Some((text.to_string(), status)));
        rest = tail;
    }
    results.resize(count, None);
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bash(script: &str) -> String {
        let out = std::process::Command::new("bash")
            .args(["-c", script])
            .output()
            .expect("bash runs");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn each_script_keeps_its_own_output_and_status() {
        let scripts = [
            "echo one\necho err >&2",
            "exit 3",
            "printf 'no newline'",
            "set -e\nfalse\necho never",
            "read -r x || echo \"stdin is empty: $?\"",
        ];
        let got = split(&bash(&script(&scripts)), scripts.len());
        assert_eq!(
            got,
            [
                Some(("one\nerr\n".to_string(), 0)),
                Some((String::new(), 3)),
                Some(("no newline".to_string(), 0)),
                Some((String::new(), 1)),
                Some(("stdin is empty: 1\n".to_string(), 0)),
            ]
        );
    }

    #[test]
    fn a_batch_cut_short_leaves_the_rest_unknown() {
        let got = split(&bash(&script(&["echo a", "kill -9 $$", "echo c"])), 3);
        assert_eq!(got[0], Some(("a\n".to_string(), 0)));
        assert_eq!(got[2], None);
    }
}
