//! A step run in one SSH session ([`script`]): its check, its apply when the check fails,
//! its check again, each part's end marked in the output ([`ran`] reads it back). One session
//! instead of three: under emulation a session's start costs a second or more.

use super::Step;
use super::template::context;

context! {
    /// A step's check, its apply when the check fails, and its check again.
    struct StepRun = "src/provision/scripts/step-run.sh" { check: Text, apply: Text }
}

/// The marker before each part's outcome.
const MARK: &str = "\n@@lab-step@@ ";

/// The script that runs `step`'s check, its apply when needed and its check again.
pub fn script(step: &Step) -> String {
    StepRun {
        check: &step.check,
        apply: &step.apply,
    }
    .render()
}

/// How a step's script went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// The check passed: nothing applied.
    Done,
    /// The apply exited with `status`; `output` is what it wrote.
    Failed { status: u32, output: String },
    /// The apply succeeded; the check then passed (`converged`) or not, writing `output`.
    Applied { converged: bool, output: String },
}

/// What [`script`]'s output says, or `None` when it ended before a part did (the session was
/// cut, or the script killed).
pub fn ran(output: &str) -> Option<Ran> {
    let marks: Vec<(usize, &str)> = output
        .match_indices(MARK)
        .map(|(at, _)| (at, output[at + MARK.len()..].lines().next().unwrap_or("")))
        .collect();
    match marks.as_slice() {
        [(_, "ok")] => Some(Ran::Done),
        [(at, mark)] => {
            let status = mark.strip_prefix("failed ")?.parse().ok()?;
            let output = output[..*at].to_string();
            Some(Ran::Failed { status, output })
        }
        [(applied, "applied"), (checked, mark)] => {
            let status: u32 = mark.strip_prefix("checked ")?.parse().ok()?;
            let from = applied + MARK.len() + "applied\n".len();
            let output = output.get(from..*checked).unwrap_or("").to_string();
            Some(Ran::Applied {
                converged: status == 0,
                output,
            })
        }
        _ => None,
    }
}

/// The last `n` lines of `text`.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    fn step(check: &str, apply: &str) -> Step {
        let mut s = Step::new("demo", "a demo step", &[Role::Controller]);
        s.check = check.into();
        s.apply = apply.into();
        s
    }

    /// Runs the step's script with bash, in `dir` (where its check and apply keep state).
    fn run(step: &Step, dir: &std::path::Path) -> Option<Ran> {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(script(step))
            .current_dir(dir)
            .output()
            .expect("bash runs");
        assert!(out.status.success(), "the script itself exits 0");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ran(&String::from_utf8_lossy(&out.stdout))
    }

    #[test]
    fn a_step_done_applied_failing_or_not_converging_reads_back_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Done: the check passes, the apply does not run.
        let done = step("echo checked; test -f marker", "touch applied-anyway");
        std::fs::write(d.join("marker"), "").unwrap();
        assert_eq!(run(&done, d), Some(Ran::Done));
        assert!(!d.join("applied-anyway").exists());
        // Applied: the check fails, the apply (with its own `exit`) makes it pass.
        let applied = step("test -f made", "echo making >&2; touch made; exit 0");
        assert_eq!(
            run(&applied, d),
            Some(Ran::Applied {
                converged: true,
                output: String::new()
            })
        );
        assert_eq!(run(&applied, d), Some(Ran::Done));
        // Failed: the apply's status and what it wrote, stderr too.
        let failing = step(
            "false",
            "echo line 1; echo 'E: Unable to locate package x' >&2; exit 100",
        );
        let Some(Ran::Failed { status, output }) = run(&failing, d) else {
            panic!("not a failure")
        };
        assert_eq!(status, 100);
        assert_eq!(last_lines(&output, 1), "E: Unable to locate package x");
        assert!(output.contains("line 1"), "{output}");
        // Not converged: the second check's output is kept.
        let stuck = step("echo still missing; false", "true");
        assert_eq!(
            run(&stuck, d),
            Some(Ran::Applied {
                converged: false,
                output: "still missing\n".into()
            })
        );
    }

    #[test]
    fn an_output_cut_short_is_no_outcome() {
        assert_eq!(ran(""), None);
        assert_eq!(ran("apt output\n"), None);
        assert_eq!(ran("x\n@@lab-step@@ applied\nchecking"), None);
        assert_eq!(ran("\n@@lab-step@@ failed"), None);
    }
}
