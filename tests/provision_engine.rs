//! The provisioning engine with a fake guest that runs nothing but remembers what it was
//! asked: ordering, idempotence, dependencies across nodes, failure reporting, selection.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lab::guest::{Guest, GuestError, Output};
use lab::model::Lab;
use lab::progress::{Event, Outcome, Progress, StepEvent};
use lab::provision::Step;
use lab::provision::engine::{self, NodePlan, ProvisionError, Selection, Start};
use lab::secrets::LabSecrets;

/// A guest whose state is the set of applied steps: a step's check passes once applied.
struct FakeGuest {
    node: String,
    steps: Vec<Step>,
    applied: Mutex<HashSet<&'static str>>,
    fail_apply: Option<&'static str>,
    never_converges: Option<&'static str>,
    slow_apply: Option<&'static str>,
    reboot_after: Option<&'static str>,
    /// The SSH connection drops under this step's apply (the node rebooted behind `lab`).
    drops_session: Option<&'static str>,
    /// The SSH connection drops under the batch of checks of a provisioned node.
    drops_batch: bool,
    reboots: Mutex<usize>,
    /// Shared by every guest of a test: "node verb step".
    journal: Arc<Mutex<Vec<String>>>,
    files: Mutex<Vec<(String, u32, Vec<u8>)>>,
}

impl FakeGuest {
    fn new(node: &str, steps: Vec<Step>, journal: &Arc<Mutex<Vec<String>>>) -> FakeGuest {
        FakeGuest {
            node: node.into(),
            steps,
            applied: Mutex::default(),
            fail_apply: None,
            never_converges: None,
            slow_apply: None,
            reboot_after: None,
            drops_session: None,
            drops_batch: false,
            reboots: Mutex::new(0),
            journal: journal.clone(),
            files: Mutex::default(),
        }
    }

    fn note(&self, verb: &str, step: &str) {
        self.journal
            .lock()
            .unwrap()
            .push(format!("{} {verb} {step}", self.node));
    }

    /// A step's check, apply and check again in one script, as bash would run it: the same
    /// journal as three scripts, the output marked as the script marks it.
    async fn step_run(&self, id: &'static str) -> Result<Output, GuestError> {
        let converged =
            |me: &Self| me.applied.lock().unwrap().contains(id) && me.never_converges != Some(id);
        self.note("check", id);
        if converged(self) {
            return Ok(Self::marked("\n@@lab-step@@ ok\n"));
        }
        if self
            .apply(id, "script `# lab runs a step in one session`")
            .await?
        {
            let out =
                "line 1\nE: Unable to locate package mariadb-server\n@@lab-step@@ failed 100\n";
            return Ok(Self::marked(out));
        }
        self.note("check", id);
        let checked = if converged(self) { 0 } else { 1 };
        let out = format!("\n@@lab-step@@ applied\nnot yet\n@@lab-step@@ checked {checked}\n");
        Ok(Self::marked(&out))
    }

    /// The apply of step `id` (`what` names its script when the session drops under it):
    /// whether it failed (else the step is applied).
    async fn apply(&self, id: &'static str, what: &str) -> Result<bool, GuestError> {
        self.note("apply", id);
        if self.slow_apply == Some(id) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if self.drops_session == Some(id) {
            return Err(GuestError::Lost {
                node: self.node.clone(),
                what: what.into(),
            });
        }
        if self.fail_apply == Some(id) {
            return Ok(true);
        }
        self.applied.lock().unwrap().insert(id);
        self.note("applied", id);
        Ok(false)
    }

    /// A batch of checks ([`lab::provision::batch`]): each judged as a check on its own is,
    /// `true` (a check `lab` makes itself holds its place) passing.
    fn batch(&self, script: &str) -> Output {
        self.note("batch", "-");
        let mut stdout = String::new();
        for part in script
            .split("\n) </dev/null 2>&1\n")
            .filter(|p| p.contains("(\n"))
        {
            let done = |s: &Step| {
                self.applied.lock().unwrap().contains(s.id) && self.never_converges != Some(s.id)
            };
            let status = match self
                .steps
                .iter()
                .find(|s| part.ends_with(&format!("(\n{}", s.check.trim_end())))
            {
                _ if part.ends_with("(\ntrue") => 0,
                Some(s) if done(s) => 0,
                Some(_) => 1,
                None => panic!("{}: a batched script of no step: {part}", self.node),
            };
            stdout.push_str(&format!("\n@@lab-verify-end@@ {status}\n"));
        }
        Output {
            status: 0,
            stdout,
            stderr: String::new(),
        }
    }

    /// What a step's script writes: `stdout`, exit 0.
    fn marked(stdout: &str) -> Output {
        Output {
            status: 0,
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    fn status(code: u32, stderr: &str) -> Output {
        Output {
            status: code,
            stdout: String::new(),
            stderr: stderr.into(),
        }
    }
}

impl Guest for FakeGuest {
    type Tcp = tokio::io::DuplexStream;

    fn node(&self) -> &str {
        &self.node
    }

    async fn run(&self, script: &str) -> Result<Output, GuestError> {
        if script
            .lines()
            .next()
            .is_some_and(|l| l.ends_with("checks, one after another"))
        {
            if self.drops_batch {
                return Err(GuestError::Lost {
                    node: self.node.clone(),
                    what: "script `# 7 checks, one after another`".into(),
                });
            }
            return Ok(self.batch(script));
        }
        if let Some(step) = self
            .steps
            .iter()
            .find(|s| lab::provision::step_run::script(s) == script)
        {
            return self.step_run(step.id).await;
        }
        let step = self.steps.iter().find(|s| {
            s.check == script || s.apply == script || s.reboot_check.as_deref() == Some(script)
        });
        let step = step.unwrap_or_else(|| panic!("{}: script of no step: {script}", self.node));
        let id = step.id;
        if step.check == script {
            self.note("check", id);
            let done =
                self.applied.lock().unwrap().contains(id) && self.never_converges != Some(id);
            return Ok(Self::status(if done { 0 } else { 1 }, "not yet"));
        }
        if step.apply == script {
            if self.apply(id, "script `set -e`").await? {
                return Ok(Self::status(
                    100,
                    "line 1\nE: Unable to locate package mariadb-server",
                ));
            }
            return Ok(Self::status(0, ""));
        }
        self.note("reboot-check", id);
        let reboot = self.reboot_after == Some(id) && *self.reboots.lock().unwrap() == 0;
        Ok(Self::status(if reboot { 0 } else { 1 }, ""))
    }

    async fn write_file(&self, path: &str, mode: u32, content: &[u8]) -> Result<(), GuestError> {
        self.files
            .lock()
            .unwrap()
            .push((path.into(), mode, content.to_vec()));
        Ok(())
    }

    /// Only the mq-user step's check connects (to the broker, from the node itself): a
    /// broker granting every right once the step was applied, none listening before.
    async fn connect_tcp(&self, host: &str, port: u16) -> Result<Self::Tcp, GuestError> {
        assert_eq!(
            (host, port),
            ("127.0.0.1", 5672),
            "{}: a tcp connection",
            self.node
        );
        self.note("check", "mq-user");
        let granted = self.applied.lock().unwrap().contains("mq-user")
            && self.never_converges != Some("mq-user");
        if !granted {
            return Err(GuestError::Tcp {
                node: self.node.clone(),
                to: format!("{host}:{port}"),
                message: "connection refused".into(),
            });
        }
        let (client, mut broker) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = broker
                .write_all(&lab::provision::amqp::broker_script::granting())
                .await;
            let mut sent = Vec::new();
            let _ = broker.read_to_end(&mut sent).await;
        });
        Ok(client)
    }

    async fn reboot(&self) -> Result<(), GuestError> {
        *self.reboots.lock().unwrap() += 1;
        self.note("reboot", "-");
        Ok(())
    }
}

#[derive(Default)]
struct Events(Mutex<Vec<StepEvent>>);

impl Progress for Events {
    fn event(&self, e: Event) {
        match e {
            Event::Step(step) => self.0.lock().unwrap().push(step),
            other => panic!("the engine reports steps only: {other:?}"),
        }
    }
}

struct World {
    lab: Lab,
    secrets: LabSecrets,
    journal: Arc<Mutex<Vec<String>>>,
    guests: Vec<FakeGuest>,
}

fn world(lab: &str) -> World {
    let lab = common::lab(lab);
    let secrets = LabSecrets::from_seed(&lab, &common::SEED);
    let journal = Arc::new(Mutex::new(Vec::new()));
    let guests = lab
        .nodes
        .iter()
        .map(|n| FakeGuest::new(&n.name, lab::provision::steps(&lab, n), &journal))
        .collect();
    World {
        lab,
        secrets,
        journal,
        guests,
    }
}

async fn provision(w: &World, sel: &Selection) -> (Result<Vec<StepEvent>, ProvisionError>, Events) {
    provision_from(w, sel, Start::Fresh).await
}

async fn provision_from(
    w: &World,
    sel: &Selection,
    start: Start,
) -> (Result<Vec<StepEvent>, ProvisionError>, Events) {
    let chosen = engine::select(&w.lab, sel).unwrap();
    let plans: Vec<NodePlan<FakeGuest>> = chosen
        .into_iter()
        .map(|(node, steps)| NodePlan {
            guest: w.guests.iter().find(|g| g.node == node).unwrap(),
            steps,
        })
        .collect();
    let events = Events::default();
    let result = engine::run(&plans, &w.secrets, start, &events).await;
    (result, events)
}

fn outcomes(events: &[StepEvent]) -> Vec<(String, &'static str, Outcome)> {
    events
        .iter()
        .map(|e| (e.node.clone(), e.step, e.outcome))
        .collect()
}

#[tokio::test]
async fn a_first_run_changes_every_step_in_order_and_a_second_changes_nothing() {
    let w = world("openstack-debian12");
    let (first, _) = provision(&w, &Selection::default()).await;
    let first = first.unwrap();
    let controller: Vec<&str> = first
        .iter()
        .filter(|e| e.node == "controller")
        .map(|e| e.step)
        .collect();
    assert_eq!(
        controller,
        [
            "chrony",
            "client",
            "sql",
            "sql-secure",
            "mq",
            "mq-user",
            "memcached"
        ]
    );
    assert!(
        first.iter().all(|e| e.outcome == Outcome::Changed),
        "{:?}",
        outcomes(&first)
    );

    for start in [Start::Fresh, Start::Provisioned] {
        w.journal.lock().unwrap().clear();
        let (second, live) = provision_from(&w, &Selection::default(), start).await;
        changes_nothing(&w, &second.unwrap(), &live);
    }
}

/// A run that found every step done: all `ok`, nothing applied, a live line per step.
fn changes_nothing(w: &World, second: &[StepEvent], live: &Events) {
    assert!(
        second.iter().all(|e| e.outcome == Outcome::Ok),
        "{:?}",
        outcomes(second)
    );
    assert!(
        !w.journal
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(" apply ")),
        "a second run applies nothing"
    );
    let running = live
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.outcome == Outcome::Running)
        .count();
    assert_eq!(
        running,
        second.len(),
        "one live line per step before its result"
    );
}

#[tokio::test]
async fn a_provisioned_node_is_checked_in_one_batch_then_step_by_step_from_the_first_undone() {
    let w = world("openstack-debian12");
    provision(&w, &Selection::default()).await.0.unwrap();
    // Every step checked at once: one batch per node (and the AMQP rights `lab` reads
    // itself), not a session per step.
    w.journal.lock().unwrap().clear();
    provision_from(&w, &Selection::default(), Start::Provisioned)
        .await
        .0
        .unwrap();
    let journal = w.journal.lock().unwrap().clone();
    let want = [
        "compute1 batch -",
        "controller batch -",
        "controller check mq-user",
    ];
    let mut seen = journal.clone();
    seen.sort();
    assert_eq!(seen, want, "{journal:?}");

    // mq undone on the controller (the student's `reset before-mq`): the steps before it
    // are `ok` from the batch; mq is checked, applied and checked again; those after it are
    // checked one by one.
    w.guests[0].applied.lock().unwrap().remove("mq");
    w.journal.lock().unwrap().clear();
    let (events, _) = provision_from(&w, &Selection::default(), Start::Provisioned).await;
    let controller: Vec<(&str, Outcome)> = events
        .unwrap()
        .iter()
        .filter(|e| e.node == "controller")
        .map(|e| (e.step, e.outcome))
        .collect();
    use Outcome::{Changed, Ok as Done};
    assert_eq!(
        controller,
        [
            ("chrony", Done),
            ("client", Done),
            ("sql", Done),
            ("sql-secure", Done),
            ("mq", Changed),
            ("mq-user", Done),
            ("memcached", Done)
        ]
    );
    let journal: Vec<String> = w
        .journal
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("controller"))
        .cloned()
        .collect();
    assert_eq!(
        journal,
        [
            "controller batch -",
            // Read beside the batch, whatever the steps before it found.
            "controller check mq-user",
            "controller check mq",
            "controller apply mq",
            "controller applied mq",
            "controller check mq",
            "controller check mq-user",
            "controller check memcached"
        ]
    );
    // RabbitMQ's user undone too (nothing listens for the rights read beside the batch): a
    // refusal is a step not done, not an error.
    for step in ["mq", "mq-user"] {
        w.guests[0].applied.lock().unwrap().remove(step);
    }
    let (events, _) = provision_from(&w, &Selection::default(), Start::Provisioned).await;
    let changed: Vec<&str> = events
        .unwrap()
        .iter()
        .filter(|e| e.outcome == Changed)
        .map(|e| e.step)
        .collect();
    assert_eq!(changed, ["mq", "mq-user"]);
    // The uploads the checks read were written before the batch: the secrets once each.
    let files = w.guests[0].files.lock().unwrap().clone();
    let secret = |name: &str| {
        files
            .iter()
            .filter(|(p, _, _)| p.ends_with(&format!("/{name}")))
            .count()
    };
    assert!(
        secret("DB_ROOT_PASS") >= 1 && secret("RABBIT_PASS") >= 1,
        "{files:?}"
    );
}

#[tokio::test]
async fn a_batch_cut_short_releases_the_steps_other_nodes_wait_for() {
    let mut w = world("openstack-debian12");
    provision(&w, &Selection::default()).await.0.unwrap();
    // compute1's chrony must run again, after the controller's, whose batch is cut.
    w.guests[1].applied.lock().unwrap().remove("chrony");
    w.guests[0].drops_batch = true;
    let all = Selection::default();
    let run = provision_from(&w, &all, Start::Provisioned);
    let (result, _) = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the waiting node is released, not left waiting");
    let err = result.unwrap_err();
    let ProvisionError::Failed(errors) = &err else {
        panic!("{err}")
    };
    assert!(
        matches!(&errors[0], ProvisionError::Guest(GuestError::Lost { node, .. }) if node == "controller"),
        "{err}"
    );
    assert!(
        matches!(&errors[1], ProvisionError::DependencyFailed { node, after_step: "chrony", .. } if node == "compute1"),
        "{err}"
    );
}

#[tokio::test]
async fn compute_chrony_waits_for_the_controller_chrony() {
    let mut w = world("openstack-debian12");
    w.guests[0].slow_apply = Some("chrony"); // controller
    provision(&w, &Selection::default()).await.0.unwrap();
    let journal = w.journal.lock().unwrap().clone();
    let pos = |l: &str| {
        journal
            .iter()
            .position(|j| j == l)
            .unwrap_or_else(|| panic!("{l} not in {journal:?}"))
    };
    assert!(
        pos("controller applied chrony") < pos("compute1 check chrony"),
        "{journal:?}"
    );
}

#[tokio::test]
async fn a_failed_apply_names_node_step_status_and_stderr_and_stops_that_node() {
    let mut w = world("openstack-debian12");
    w.guests[0].fail_apply = Some("sql");
    let (result, _) = provision(&w, &Selection::default()).await;
    let err = result.unwrap_err();
    let ProvisionError::StepFailed {
        node,
        step,
        command,
        status,
        tail,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(
        (node.as_str(), *step, *command, *status),
        ("controller", "sql", "apply", 100)
    );
    assert!(
        tail.contains("Unable to locate package mariadb-server"),
        "{tail}"
    );
    let journal = w.journal.lock().unwrap().clone();
    assert!(
        !journal
            .iter()
            .any(|l| l.starts_with("controller") && l.ends_with("sql-secure")),
        "{journal:?}"
    );
    assert!(
        journal.contains(&"compute1 applied client".to_string()),
        "the other node carries on: {journal:?}"
    );
}

#[tokio::test]
async fn a_failed_dependency_fails_the_waiting_step_instead_of_hanging() {
    let mut w = world("openstack-debian12");
    w.guests[0].fail_apply = Some("chrony");
    let (result, _) = provision(&w, &Selection::default()).await;
    let err = result.unwrap_err();
    let ProvisionError::Failed(errors) = &err else {
        panic!("{err}")
    };
    assert!(
        matches!(&errors[1], ProvisionError::DependencyFailed { node, after_node, .. } if node == "compute1" && after_node == "controller"),
        "{err}"
    );
}

#[tokio::test]
async fn a_session_dropped_under_a_step_names_node_and_step_and_stops_that_node() {
    let mut w = world("openstack-debian12");
    w.guests[1].drops_session = Some("client");
    let err = provision(&w, &Selection::default()).await.0.unwrap_err();
    assert_eq!(
        err.to_string(),
        "compute1: ssh connection lost during step client, script `# lab runs a step in one session` (did the node reboot or stop? `lab status` shows it): `lab up` goes on (done steps are kept)"
    );
    assert!(matches!(
        err,
        ProvisionError::Guest(GuestError::Lost { .. })
    ));
    let journal = w.journal.lock().unwrap().clone();
    let after: Vec<&String> = journal
        .iter()
        .skip_while(|l| *l != "compute1 apply client")
        .skip(1)
        .filter(|l| l.starts_with("compute1"))
        .collect();
    assert!(after.is_empty(), "nothing after the cut step: {journal:?}");
    assert!(
        journal.contains(&"controller applied memcached".to_string()),
        "the other node carries on: {journal:?}"
    );
}

#[tokio::test]
async fn an_apply_that_does_not_converge_is_an_error() {
    let mut w = world("openstack-debian12");
    w.guests[1].never_converges = Some("client");
    let err = provision(&w, &Selection::default()).await.0.unwrap_err();
    assert!(
        matches!(&err, ProvisionError::NotConverged { node, step, .. } if node == "compute1" && *step == "client"),
        "{err}"
    );
}

#[tokio::test]
async fn secrets_and_files_are_uploaded_before_the_check_that_reads_them() {
    let w = world("openstack-debian12");
    provision(&w, &Selection::default()).await.0.unwrap();
    let files = w.guests[0].files.lock().unwrap().clone();
    let rabbit = files
        .iter()
        .find(|(p, _, _)| p == "/root/.lab/secrets/RABBIT_PASS")
        .expect("RABBIT_PASS uploaded");
    assert_eq!(rabbit.1, 0o600);
    assert_eq!(
        rabbit.2,
        w.secrets.password("RABBIT_PASS").as_bytes(),
        "the value, no newline"
    );
    assert!(
        files
            .iter()
            .any(|(p, m, _)| p.ends_with("/sql/openstack.cnf") && *m == 0o644),
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert!(
        !w.guests[1]
            .files
            .lock()
            .unwrap()
            .iter()
            .any(|(p, _, _)| p.contains("RABBIT_PASS")),
        "compute needs no rabbit secret"
    );
}

#[tokio::test]
async fn a_step_that_asks_for_a_reboot_gets_one() {
    let mut w = world("openstack-ocata");
    w.guests[1].reboot_after = Some("upgrade");
    provision(&w, &Selection::default()).await.0.unwrap();
    assert_eq!(*w.guests[1].reboots.lock().unwrap(), 1);
    assert_eq!(*w.guests[0].reboots.lock().unwrap(), 0);
    let journal = w.journal.lock().unwrap().clone();
    let c: Vec<&String> = journal
        .iter()
        .filter(|l| l.starts_with("compute1"))
        .collect();
    let reboot = c.iter().position(|l| l.ends_with("reboot -")).unwrap();
    assert!(
        c[reboot - 1].ends_with("reboot-check upgrade") && c[reboot + 1].ends_with("check client"),
        "{c:?}"
    );
}

#[tokio::test]
async fn selection_runs_one_step_or_one_node_and_rejects_unknown_ones() {
    let w = world("openstack-debian12");
    let sel = Selection {
        step: Some("sql".into()),
        ..Default::default()
    };
    let events = provision(&w, &sel).await.0.unwrap();
    assert_eq!(
        outcomes(&events),
        [("controller".to_string(), "sql", Outcome::Changed)]
    );
    let sel = Selection {
        node: Some("compute1".into()),
        ..Default::default()
    };
    let events = provision(&w, &sel).await.0.unwrap();
    assert!(
        events.iter().all(|e| e.node == "compute1"),
        "{:?}",
        outcomes(&events)
    );
    let bad = Selection {
        step: Some("nova".into()),
        ..Default::default()
    };
    let err = engine::select(&w.lab, &bad).unwrap_err().to_string();
    assert!(
        err.contains("no step nova") && err.contains("memcached"),
        "{err}"
    );
}

#[tokio::test]
async fn stop_before_runs_every_step_the_guide_puts_before_it_on_every_node() {
    let w = world("openstack-debian12");
    let sel = Selection {
        before: Some("mq".into()),
        ..Default::default()
    };
    let events = provision(&w, &sel).await.0.unwrap();
    let mut ran: Vec<(String, &str)> = outcomes(&events)
        .into_iter()
        .map(|(node, step, _)| (node, step))
        .collect();
    ran.sort();
    assert_eq!(
        ran,
        [
            ("compute1".to_string(), "chrony"),
            ("compute1".to_string(), "client"),
            ("controller".to_string(), "chrony"),
            ("controller".to_string(), "client"),
            ("controller".to_string(), "sql"),
            ("controller".to_string(), "sql-secure"),
        ]
    );
    let none = Selection {
        before: Some("chrony".into()),
        ..Default::default()
    };
    assert!(provision(&w, &none).await.0.unwrap().is_empty());
    let bad = Selection {
        before: Some("nova".into()),
        ..Default::default()
    };
    let err = engine::select(&w.lab, &bad).unwrap_err().to_string();
    assert!(err.contains("no step nova"), "{err}");
}
