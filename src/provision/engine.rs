//! The provisioning engine: runs each node's [`Step`]s on its [`Guest`] — check, and apply
//! only when the check fails, then check again — nodes concurrently, a step that needs another
//! node's step waiting for it. A second run finds every check passing and changes nothing.

use std::collections::HashMap;
use std::time::Instant;

use tokio::sync::watch;

use super::step::{LabCheck, Step, secret_path};
use super::step_run::{self, Ran};
use crate::guest::{FileWrite, Guest, GuestError, Output};
use crate::model::Lab;
use crate::progress::{Outcome, Progress, StepEvent};
use crate::secrets::LabSecrets;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionError {
    #[error("{node}: step {step}: {command} exited with status {status}:\n{tail}")]
    StepFailed {
        node: String,
        step: &'static str,
        command: &'static str,
        status: u32,
        tail: String,
    },
    #[error("{node}: step {step} was applied but its check still fails:\n{tail}")]
    NotConverged {
        node: String,
        step: &'static str,
        tail: String,
    },
    #[error("{node}: step {step} needs step {after_step} of {after_node}, which did not succeed")]
    DependencyFailed {
        node: String,
        step: &'static str,
        after_node: String,
        after_step: &'static str,
    },
    #[error(transparent)]
    Guest(#[from] GuestError),
    #[error("no step {step} on node {node}: its steps are {known}")]
    UnknownStep {
        node: String,
        step: String,
        known: String,
    },
    #[error("{} of the lab's nodes failed:\n{}", .0.len(), list(.0))]
    Failed(Vec<ProvisionError>),
}

impl crate::failure::Classify for ProvisionError {
    fn class(&self) -> crate::failure::ExitClass {
        crate::failure::ExitClass::Guest
    }
}

impl ProvisionError {
    /// This error of step `step`: a dropped SSH connection names the step it cut.
    fn in_step(self, step: &str) -> ProvisionError {
        match self {
            ProvisionError::Guest(GuestError::Lost { node, what }) => {
                ProvisionError::Guest(GuestError::Lost {
                    node,
                    what: format!("step {step}, {what}"),
                })
            }
            other => other,
        }
    }
}

fn list(errors: &[ProvisionError]) -> String {
    errors
        .iter()
        .map(|e| format!("- {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Which steps to run: all, one node's, one step id's, those before a step, or several of
/// these filters.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub node: Option<String>,
    pub step: Option<String>,
    /// Only the steps the guide puts before this one (`lab up --stop-before STEP`).
    pub before: Option<String>,
}

/// Where a run starts from, which decides how it checks the steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Nodes just created: no step is done, each is checked as it comes.
    Fresh,
    /// Nodes provisioned before (a re-run, `lab provision`): most steps are done. Every
    /// step's check runs first in one session per node ([`super::batch`]); the steps done
    /// are `ok` at once, and the run goes step by step from the first that is not. Checked
    /// one at a time, each would cost a session's start or two (its uploads) under emulation.
    Provisioned,
}

/// (node, step) -> succeeded, as steps finish.
type Board = HashMap<(String, &'static str), bool>;

/// One node's share of the run.
pub struct NodePlan<'a, G> {
    pub guest: &'a G,
    pub steps: Vec<Step>,
}

/// Runs the plans, nodes concurrently. Returns every step's event, or every node's failure.
pub async fn run<G: Guest>(
    plans: &[NodePlan<'_, G>],
    secrets: &LabSecrets,
    start: Start,
    progress: &dyn Progress,
) -> Result<Vec<StepEvent>, ProvisionError> {
    let (board, _) = watch::channel(Board::new());
    let scheduled: Vec<(String, &'static str)> = plans
        .iter()
        .flat_map(|p| p.steps.iter().map(|s| (p.guest.node().to_string(), s.id)))
        .collect();
    let runs = plans
        .iter()
        .map(|p| run_node(p, secrets, start, progress, &board, &scheduled));
    let results = futures::future::join_all(runs).await;
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(e) => events.extend(e),
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Ok(events),
        1 => Err(errors.remove(0)),
        _ => Err(ProvisionError::Failed(errors)),
    }
}

async fn run_node<G: Guest>(
    plan: &NodePlan<'_, G>,
    secrets: &LabSecrets,
    start: Start,
    progress: &dyn Progress,
    board: &watch::Sender<Board>,
    scheduled: &[(String, &'static str)],
) -> Result<Vec<StepEvent>, ProvisionError> {
    let node = plan.guest.node().to_string();
    let mut events = Vec::new();
    let done = match start {
        Start::Fresh => 0,
        Start::Provisioned => {
            let begun = Instant::now();
            let done = match done_already(plan.guest, &plan.steps, secrets).await {
                Ok(done) => done,
                Err(e) => {
                    release(board, &node, &plan.steps);
                    return Err(e.into());
                }
            };
            for step in &plan.steps[..done] {
                let event = |outcome| StepEvent {
                    node: node.clone(),
                    step: step.id,
                    outcome,
                    elapsed: begun.elapsed(),
                };
                progress.event(event(Outcome::Running).into());
                progress.event(event(Outcome::Ok).into());
                events.push(event(Outcome::Ok));
                board.send_modify(|b| {
                    b.insert((node.clone(), step.id), true);
                });
            }
            done
        }
    };
    for (i, step) in plan.steps.iter().enumerate().skip(done) {
        let start = Instant::now();
        let emit = |outcome| StepEvent {
            node: node.clone(),
            step: step.id,
            outcome,
            elapsed: start.elapsed(),
        };
        let result = match wait_for(step, &node, board, scheduled).await {
            Ok(()) => {
                progress.event(emit(Outcome::Running).into());
                run_step(plan.guest, step, secrets)
                    .await
                    .map_err(|e| e.in_step(step.id))
            }
            Err(e) => Err(e),
        };
        let event = emit(match &result {
            Ok(true) => Outcome::Changed,
            Ok(false) => Outcome::Ok,
            Err(_) => Outcome::Failed,
        });
        progress.event(event.clone().into());
        events.push(event);
        if let Err(e) = result {
            release(board, &node, &plan.steps[i..]);
            return Err(e);
        }
        board.send_modify(|b| {
            b.insert((node.clone(), step.id), true);
        });
    }
    Ok(events)
}

/// `steps` of `node` will not succeed: whoever waits for them is released (and fails).
fn release(board: &watch::Sender<Board>, node: &str, steps: &[Step]) {
    board.send_modify(|b| {
        for s in steps {
            b.insert((node.to_string(), s.id), false);
        }
    });
}

/// Waits until the step this one needs has succeeded (when it is part of this run).
async fn wait_for(
    step: &Step,
    node: &str,
    board: &watch::Sender<Board>,
    scheduled: &[(String, &'static str)],
) -> Result<(), ProvisionError> {
    let Some(after) = &step.after else {
        return Ok(());
    };
    let key = (after.node.clone(), after.step);
    if !scheduled.contains(&key) {
        return Ok(()); // not in this run (e.g. `--step` on one node): assume done earlier
    }
    let mut rx = board.subscribe();
    let done = rx
        .wait_for(|b| b.contains_key(&key))
        .await
        .map(|b| b[&key])
        .unwrap_or(false);
    if done {
        Ok(())
    } else {
        Err(ProvisionError::DependencyFailed {
            node: node.to_string(),
            step: step.id,
            after_node: after.node.clone(),
            after_step: after.step,
        })
    }
}

/// The secrets (each once) and files `steps` read, to be written before their scripts run
/// ([`Guest::run_with_files`]: on the real guest, on the script's own channel).
fn uploads<'a>(steps: &'a [Step], secrets: &'a LabSecrets) -> Vec<(String, u32, &'a [u8])> {
    let mut uploads: Vec<(String, u32, &[u8])> = Vec::new();
    for step in steps {
        for name in &step.secrets {
            let path = secret_path(name);
            if !uploads.iter().any(|(p, _, _)| *p == path) {
                uploads.push((path, 0o600, secrets.password(name).as_bytes()));
            }
        }
        for f in &step.files {
            uploads.push((f.path.clone(), f.mode, f.content.as_bytes()));
        }
    }
    uploads
}

/// `script`, run after `steps`' secrets and files are written.
async fn run_after_uploads<G: Guest>(
    guest: &G,
    steps: &[Step],
    secrets: &LabSecrets,
    script: &str,
) -> Result<Output, GuestError> {
    let uploads = uploads(steps, secrets);
    let files: Vec<FileWrite> = uploads
        .iter()
        .map(|(path, mode, content)| FileWrite {
            path,
            mode: *mode,
            content,
        })
        .collect();
    guest.run_with_files(&files, script).await
}

/// How many of `steps`, from the first, are done already: their files and secrets written,
/// their checks run in one session ([`super::batch`]) and the checks `lab` makes itself
/// beside it. The count ends at the first step not done, and before a step that may reboot the
/// node (the usual path runs its reboot check).
async fn done_already<G: Guest>(
    guest: &G,
    steps: &[Step],
    secrets: &LabSecrets,
) -> Result<usize, GuestError> {
    let upto = steps
        .iter()
        .position(|s| s.reboot_check.is_some())
        .unwrap_or(steps.len());
    let steps = &steps[..upto];
    if steps.is_empty() {
        return Ok(0);
    }
    // A check `lab` makes itself holds its place in the batch with `true`.
    let scripts: Vec<&str> = steps
        .iter()
        .map(|s| match s.lab_check {
            Some(_) => "true",
            None => s.check.as_str(),
        })
        .collect();
    // The checks `lab` makes itself (a conversation over the node's connection) meanwhile.
    let own = steps
        .iter()
        .filter(|s| s.lab_check.is_some())
        .map(|s| async move { Ok::<_, GuestError>((s.id, check(guest, s, secrets).await?.0)) });
    let batch = super::batch::script(&scripts);
    let (out, own) = futures::future::join(
        run_after_uploads(guest, steps, secrets, &batch),
        futures::future::try_join_all(own),
    )
    .await;
    let (out, own) = (out?, own?);
    let results = super::batch::split(&format!("{}{}", out.stdout, out.stderr), steps.len());
    let mut done = 0;
    for (step, result) in steps.iter().zip(results) {
        let passed = match (&step.lab_check, result) {
            (Some(_), _) => own.iter().any(|(id, passed)| *id == step.id && *passed),
            (None, Some((_, status))) => status == 0,
            (None, None) => false,
        };
        if !passed {
            break;
        }
        done += 1;
    }
    Ok(done)
}

/// Check, apply when needed, then check again (in one session with the step's uploads,
/// unless `lab` makes the check itself: then the uploads go with the apply); reboot when the
/// step asks. Returns whether the step changed the node.
async fn run_step<G: Guest>(
    guest: &G,
    step: &Step,
    secrets: &LabSecrets,
) -> Result<bool, ProvisionError> {
    let changed = match step.lab_check {
        None => in_one_session(guest, step, secrets).await?,
        Some(_) => checked_by_lab(guest, step, secrets).await?,
    };
    if let Some(reboot_check) = &step.reboot_check
        && guest.run(reboot_check).await?.success()
    {
        guest.reboot().await?;
    }
    Ok(changed)
}

/// Runs the step's check, apply and check again as one script ([`step_run`]), its uploads
/// first: whether it changed the node.
async fn in_one_session<G: Guest>(
    guest: &G,
    step: &Step,
    secrets: &LabSecrets,
) -> Result<bool, ProvisionError> {
    let script = step_run::script(step);
    let out = run_after_uploads(guest, std::slice::from_ref(step), secrets, &script).await?;
    let node = guest.node().to_string();
    match step_run::ran(&format!("{}{}", out.stdout, out.stderr)) {
        Some(Ran::Done) => Ok(false),
        Some(Ran::Applied {
            converged: true, ..
        }) => Ok(true),
        Some(Ran::Failed { status, output }) => Err(ProvisionError::StepFailed {
            node,
            step: step.id,
            command: "apply",
            status,
            tail: step_run::last_lines(&output, 20),
        }),
        Some(Ran::Applied {
            converged: false,
            output,
        }) => Err(ProvisionError::NotConverged {
            node,
            step: step.id,
            tail: step_run::last_lines(&output, 20),
        }),
        None => Err(ProvisionError::StepFailed {
            node,
            step: step.id,
            command: "its script",
            status: out.status,
            tail: out.tail(20),
        }),
    }
}

/// A step whose check `lab` makes itself ([`LabCheck`]): check, apply when needed, then
/// check again, each on its own.
async fn checked_by_lab<G: Guest>(
    guest: &G,
    step: &Step,
    secrets: &LabSecrets,
) -> Result<bool, ProvisionError> {
    let failed = |command, out: &Output| ProvisionError::StepFailed {
        node: guest.node().to_string(),
        step: step.id,
        command,
        status: out.status,
        tail: out.tail(20),
    };
    let changed = if check(guest, step, secrets).await?.0 {
        false
    } else {
        let steps = std::slice::from_ref(step);
        let out = run_after_uploads(guest, steps, secrets, &step.apply).await?;
        if !out.success() {
            return Err(failed("apply", &out));
        }
        let (passed, tail) = check(guest, step, secrets).await?;
        if !passed {
            return Err(ProvisionError::NotConverged {
                node: guest.node().to_string(),
                step: step.id,
                tail,
            });
        }
        true
    };
    Ok(changed)
}

/// Whether the step's check passes, and what it saw: its script's output tail, or the
/// conversation `lab` held itself ([`LabCheck`]).
async fn check<G: Guest>(
    guest: &G,
    step: &Step,
    secrets: &LabSecrets,
) -> Result<(bool, String), GuestError> {
    match &step.lab_check {
        None => {
            let out = guest.run(&step.check).await?;
            Ok((out.success(), out.tail(20)))
        }
        Some(LabCheck::AmqpRights {
            user,
            secret,
            vhost,
        }) => {
            let password = secrets.password(secret);
            let judged = super::verify::rights(guest, "127.0.0.1", user, vhost, password).await?;
            let why = judged.hint.unwrap_or_default();
            Ok((judged.passed, format!("{}\n{why}", judged.measured)))
        }
    }
}

/// Every node's steps, filtered by `sel`; an unknown node or step is an error.
pub fn select(lab: &Lab, sel: &Selection) -> Result<Vec<(String, Vec<Step>)>, ProvisionError> {
    let order = super::order(lab);
    let limit = match &sel.before {
        None => order.len(),
        Some(step) => {
            order
                .iter()
                .position(|s| s == step)
                .ok_or_else(|| ProvisionError::UnknownStep {
                    node: "any node".into(),
                    step: step.clone(),
                    known: order.join(", "),
                })?
        }
    };
    let before = &order[..limit];
    let mut out = Vec::new();
    for node in &lab.nodes {
        if sel.node.as_ref().is_some_and(|n| n != &node.name) {
            continue;
        }
        let steps = super::steps(lab, node);
        let chosen: Vec<Step> = steps
            .iter()
            .filter(|s| sel.step.as_ref().is_none_or(|id| id == s.id))
            .filter(|s| before.contains(&s.id))
            .cloned()
            .collect();
        out.push((node.name.clone(), chosen));
    }
    if let Some(node) = &sel.node
        && out.is_empty()
    {
        let known = lab
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ProvisionError::UnknownStep {
            node: node.clone(),
            step: "(any)".into(),
            known,
        });
    }
    if let Some(step) = &sel.step
        && out.iter().all(|(_, s)| s.is_empty())
    {
        let node = sel.node.clone().unwrap_or_else(|| "any node".into());
        let known: Vec<&str> = lab
            .nodes
            .iter()
            .flat_map(|n| super::steps(lab, n))
            .map(|s| s.id)
            .collect();
        let mut known: Vec<&str> = known.into_iter().collect();
        known.dedup();
        return Err(ProvisionError::UnknownStep {
            node,
            step: step.clone(),
            known: known.join(", "),
        });
    }
    Ok(out)
}
