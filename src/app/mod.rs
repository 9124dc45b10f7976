//! The operations behind the CLI verbs: resolve the lab, take its lock, open libvirt, build
//! the render context from the lab's state, and call the lifecycle. The CLI only parses.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::image::Catalogue;
use crate::libvirt::Libvirt;
use crate::lifecycle::{self, Progress, UpOptions};
use crate::model::{Lab, Note, Source};
use crate::names;
use crate::render::{Accel, RenderContext};
use crate::secrets::LabSecrets;
use crate::state::{self, LabState};

mod choice;
mod console;
mod guests;
mod image;
mod inspect;
mod nodes;
mod plan;

pub use choice::{ChosenBy, DEFAULT_LAB, DIR_FILE, LAB_ENV, LabChoice, name_the_lab};

pub use console::{ESCAPE, RawMode, attach};

pub use image::{build_image, buildable};

pub use inspect::{doctor, log_files, open_console, snapshots, status};

pub use nodes::{checks_passed, provision_nodes, ssh_command, ssh_run, verify_nodes};

pub use plan::{Planned, plan};

pub use guests::{
    GuestProblem, NodeError, provision, ready, remote_command, serial_tail, ssh_targets, verify,
};

/// The libvirt URI when neither `--connect` nor LIBVIRT_DEFAULT_URI says one.
pub const DEFAULT_URI: &str = "qemu:///system";

/// Where a lab lives on the hypervisor host: its pool directory and the serial log directory.
pub fn host_dirs(uri: &str, lab: &str, pool_root: Option<&Path>) -> (PathBuf, PathBuf) {
    let home = || {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/root".into())
    };
    let session = uri.starts_with("qemu:///session");
    let root = pool_root.map(Path::to_path_buf).unwrap_or_else(|| {
        if session {
            home().join(".local/share/libvirt/images")
        } else {
            PathBuf::from(crate::plan::DEFAULT_POOL_ROOT)
        }
    });
    let logs = if session {
        home().join(".cache/libvirt/qemu/log")
    } else {
        PathBuf::from(crate::plan::DEFAULT_LOG_DIR)
    };
    (root.join(names::pool(lab)), logs)
}

/// Whether libvirt runs on this machine (its routes are this machine's).
pub fn is_local(uri: &str) -> bool {
    uri.split_once("://")
        .is_some_and(|(_, rest)| rest.starts_with('/'))
}

/// A lab resolved from its file and the libvirt host it goes to.
pub struct Target {
    pub lab: Lab,
    pub notes: Vec<Note>,
    pub source: Source,
    pub uri: String,
    pub state: LabState,
    pub pool_root: Option<PathBuf>,
    /// How the lab was chosen, for hints that name it.
    pub choice: LabChoice,
}

impl Target {
    /// Loads and validates the chosen lab.
    pub fn resolve(
        choice: LabChoice,
        uri: &str,
        pool_root: Option<PathBuf>,
    ) -> anyhow::Result<Target> {
        let source = choice.source()?;
        let (lab, notes) = source.load(&Catalogue::builtin())?;
        let state = LabState::new(&state::root()?, &lab.name);
        Ok(Target {
            lab,
            notes,
            source,
            uri: uri.to_string(),
            state,
            pool_root,
            choice,
        })
    }

    /// `lab WORDS` as the user types it to reach this lab (with `--lab` when a bare command
    /// would pick another), for hints.
    pub fn command(&self, words: &str) -> String {
        format!("lab {words}{}", self.choice.flag())
    }

    /// The libvirt domain of node `name`, or an error listing the lab's nodes.
    pub fn domain(&self, name: &str) -> Result<String, lifecycle::LifecycleError> {
        match self.lab.node(name) {
            Some(n) => Ok(names::domain(&self.lab.name, &n.name)),
            None => Err(lifecycle::LifecycleError::NoSuchNode {
                lab: self.lab.name.clone(),
                node: name.to_string(),
                known: self
                    .lab
                    .nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    pub fn connect(&self) -> anyhow::Result<Libvirt> {
        Ok(Libvirt::open(&self.uri)?)
    }

    /// The render context from the lab's state (the secrets seed is created on first use).
    pub fn context(&self, accel: Accel) -> anyhow::Result<RenderContext> {
        Ok(self.context_with(&self.state.seed()?, accel))
    }

    /// The render context of this lab and host with the secrets of `seed`; every node at its
    /// first generation (`lab up` reads the real ones from libvirt).
    pub fn context_with(&self, seed: &[u8; 32], accel: Accel) -> RenderContext {
        let (pool_dir, log_dir) = host_dirs(&self.uri, &self.lab.name, self.pool_root.as_deref());
        RenderContext {
            accel,
            secrets: LabSecrets::from_seed(&self.lab, seed),
            pool_dir,
            log_dir,
            generations: Default::default(),
            nested: crate::host::nested_virt(),
        }
    }
}

/// What `lab up` did.
#[derive(Debug, Default)]
pub struct UpReport {
    /// Whether libvirt objects were created or started.
    pub changed: bool,
    /// Provisioning steps (empty with `--no-provision`).
    pub steps: Vec<crate::progress::StepEvent>,
    pub checks: Vec<crate::provision::verify::CheckResult>,
    /// Whether this run took the `lab-up` snapshot.
    pub snapshot_saved: bool,
}

/// `lab up`: converge libvirt to the lab; with `provision`, wait for SSH, provision, verify
/// from the other node, and take the `lab-up` snapshot that bare `lab reset` returns to.
/// A first `up` that fails before the nodes exist leaves no state behind. The base image is
/// `image`, else the lab's image from the cache.
pub fn up(
    t: &Target,
    accel: Accel,
    image: Option<&Path>,
    recreate: &[String],
    provision: Option<&crate::ssh::Timeouts>,
    progress: &dyn Progress,
) -> anyhow::Result<UpReport> {
    let image = match image {
        Some(path) => path.to_path_buf(),
        None => crate::cache::Cache::open()?.path_for(&t.lab.image.name)?,
    };
    let image = image.as_path();
    let _lock = t.state.lock("up")?;
    let fresh = !t.state.exists();
    let ctx = t.context(accel)?;
    let created = (|| {
        t.state
            .write(names::state::LAB_FILE, t.source.text.as_bytes())?;
        access_files(t)?;
        let hv = t.connect()?;
        let opts = UpOptions {
            image,
            check_routes: is_local(&t.uri),
            recreate,
        };
        Ok::<_, anyhow::Error>((lifecycle::up(&hv, &t.lab, &ctx, &opts, progress)?, hv))
    })();
    let (changed, hv) = match created {
        Ok(r) => r,
        Err(e) => {
            if fresh {
                let _ = t.state.remove();
            }
            return Err(e);
        }
    };
    // The lab exists now: bare commands are about it, also while provisioning fails.
    state::set_current(&t.state.root, &t.choice.record(&t.lab.name))?;
    let mut report = UpReport {
        changed,
        ..Default::default()
    };
    let Some(timeouts) = provision else {
        return Ok(report);
    };
    let rt = runtime()?;
    let (steps, checks) = rt.block_on(until_interrupted(
        "while the nodes boot and are provisioned: they keep running; `lab up` goes on where it stopped (done steps are kept), `lab down` removes the lab",
        async {
            let guests = ready(t, &ctx, timeouts, progress).await?;
            let steps =
                guests::provision(t, &ctx, &guests, &Default::default(), progress)
                    .await?;
            let start = std::time::Instant::now();
            let (kind, name) = ("verify", "checks from compute1");
            progress.event(lifecycle::Work::running(kind, name).into());
            let checks = verify(t, &ctx, &guests, progress).await;
            let action = match &checks {
                Ok(_) => lifecycle::Action::Done,
                Err(_) => lifecycle::Action::Failed,
            };
            progress.event(lifecycle::Work::since(kind, name, action, start).into());
            Ok::<_, anyhow::Error>((steps, checks?))
        },
    ))?;
    report.steps = steps;
    report.checks = checks;
    if let Some(failed) = report.checks.iter().find(|c| !c.passed) {
        let msg = format!(
            "check {} failed on {}: {}
{}",
            failed.name, failed.node, failed.proves, failed.measured
        );
        return Err(GuestProblem(msg).into());
    }
    if !lifecycle::list_snapshots(&hv, &t.lab)?
        .iter()
        .any(|s| s == lifecycle::UP_SNAPSHOT)
    {
        lifecycle::save_snapshot(&hv, &t.lab, lifecycle::UP_SNAPSHOT, progress)?;
        report.snapshot_saved = true;
    }
    Ok(report)
}

/// Runs `work` until it ends or a stop is asked for ([`crate::interrupt`]); then it is
/// dropped (its SSH sessions close; guest steps are idempotent, so a re-run redoes the one
/// that was cut) and the error says `during`.
pub async fn until_interrupted<T>(
    during: &str,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::select! {
        out = work => out,
        () = crate::interrupt::wait() => Err(crate::interrupt::check(during).unwrap_err().into()),
    }
}

/// The async runtime for SSH work (libvirt calls stay on plain threads).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Connects to every node (they must be up) and runs `f` with them.
pub fn with_guests<T>(
    t: &Target,
    timeouts: &crate::ssh::Timeouts,
    f: impl AsyncFnOnce(&RenderContext, Vec<crate::ssh::SshGuest>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    with_guests_reporting(t, timeouts, &lifecycle::Quiet, f)
}

/// [`with_guests`], reporting the wait for each node (`node NAME ready`) to `progress`.
pub fn with_guests_reporting<T>(
    t: &Target,
    timeouts: &crate::ssh::Timeouts,
    progress: &dyn Progress,
    f: impl AsyncFnOnce(&RenderContext, Vec<crate::ssh::SshGuest>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    // The accel only shapes domain XML, which SSH work never renders.
    let ctx = t.context(Accel::Tcg)?;
    runtime()?.block_on(until_interrupted(
        "while working on the nodes: re-run the command to go on",
        async {
            let guests = ready(t, &ctx, timeouts, progress).await?;
            f(&ctx, guests).await
        },
    ))
}

/// `lab snapshot save`: under the lab's lock, with every node resumed whatever happens
/// (a stop asked for meanwhile waits for the few seconds a snapshot takes).
pub fn snapshot_save(t: &Target, name: &str, progress: &dyn Progress) -> anyhow::Result<()> {
    let _lock = t.state.lock("snapshot save")?;
    let hv = t.connect()?;
    check_owner(t, &hv)?;
    Ok(lifecycle::save_snapshot(&hv, &t.lab, name, progress)?)
}

/// `lab snapshot delete`, under the lab's lock.
pub fn snapshot_delete(t: &Target, name: &str, progress: &dyn Progress) -> anyhow::Result<()> {
    let _lock = t.state.lock("snapshot delete")?;
    let hv = t.connect()?;
    check_owner(t, &hv)?;
    Ok(lifecycle::delete_snapshot(&hv, &t.lab, name, progress)?)
}

/// An error when domains or networks of the lab's names belong to another state directory
/// (for commands that act on the lab's objects without creating them).
pub fn check_owner(t: &Target, hv: &Libvirt) -> anyhow::Result<()> {
    let Some(seed) = t.state.existing_seed()? else {
        return Ok(());
    };
    let owner = LabSecrets::from_seed(&t.lab, &seed).owner;
    let inv = lifecycle::Inventory::read(hv, &t.lab.name, Some(&owner))?;
    let clashes: Vec<_> = inv
        .clashes(&t.lab)
        .into_iter()
        .filter(|c| matches!(c, lifecycle::Clash::OtherState { .. }))
        .collect();
    if clashes.is_empty() {
        Ok(())
    } else {
        Err(lifecycle::LifecycleError::Clashes {
            lab: t.lab.name.clone(),
            clashes,
        }
        .into())
    }
}

/// `lab down`: remove what libvirt says the lab owns, then its state.
pub fn down(t: &Target, progress: &dyn Progress) -> anyhow::Result<usize> {
    let _lock = t.state.lock("down")?;
    let hv = t.connect()?;
    let (pool_dir, _) = host_dirs(&t.uri, &t.lab.name, t.pool_root.as_deref());
    // Without a state directory there is no identity: every object named for the lab goes.
    let owner = t
        .state
        .existing_seed()?
        .map(|seed| LabSecrets::from_seed(&t.lab, &seed).owner);
    let removed = lifecycle::down(
        &hv,
        &t.lab.name,
        owner.as_deref(),
        Some(&pool_dir),
        progress,
    )?;
    t.state
        .remove()
        .context("the lab is down, but its state directory stays")?;
    state::clear_current(&t.state.root, &t.lab.name)?;
    Ok(removed)
}

/// Writes the lab user's key (0600) and the pinned known_hosts into the lab's state, for
/// users' own ssh, scp, rsync and Ansible; returns their paths.
/// An error when the lab was never brought up (no new keys are made here).
pub fn access_files(t: &Target) -> anyhow::Result<(PathBuf, PathBuf)> {
    let secrets = secrets(t)?;
    use names::access::{IDENTITY, KNOWN_HOSTS};
    t.state
        .write(IDENTITY, secrets.user_key.private_openssh.as_bytes())?;
    let hosts = crate::render::access::known_hosts(&t.lab, &secrets);
    t.state.write(KNOWN_HOSTS, hosts.as_bytes())?;
    Ok((
        t.state.dir().join(IDENTITY),
        t.state.dir().join(KNOWN_HOSTS),
    ))
}

/// The lab's secrets, from its state; an error when the lab was never brought up.
pub fn secrets(t: &Target) -> anyhow::Result<LabSecrets> {
    if !t.state.exists() {
        anyhow::bail!(
            "lab {} has no state in {}: run `{}` first",
            t.lab.name,
            t.state.dir().display(),
            t.command("up")
        );
    }
    Ok(LabSecrets::from_seed(&t.lab, &t.state.seed()?))
}

/// `lab reset`: revert every node and set its clock through the guest agent at once, then
/// over SSH (the clock too where the agent failed) make chrony follow its source again and
/// read each clock back. A node SSH cannot reach, whose chrony does not follow its source or
/// whose clock is more than 0.5 s off the host's is an error naming it (exit status 4).
/// Returns a note per node whose clock the guest agent could not set.
pub fn reset(t: &Target, name: &str, progress: &dyn Progress) -> anyhow::Result<Vec<String>> {
    let _lock = t.state.lock("reset")?;
    let hv = t.connect()?;
    check_owner(t, &hv)?;
    let unset_domains = lifecycle::reset(&hv, &t.lab, name, progress)?;
    let unset: Vec<String> = t
        .lab
        .nodes
        .iter()
        .filter(|n| {
            let d = names::domain(&t.lab.name, &n.name);
            unset_domains.iter().any(|(u, _)| *u == d)
        })
        .map(|n| n.name.clone())
        .collect();
    let ctx = t.context(Accel::Tcg)?;
    let wrong = runtime()?.block_on(guests::resync_clocks(t, &ctx, &unset, progress));
    let agent = |node: &str| {
        let d = names::domain(&t.lab.name, node);
        unset_domains.iter().find(|(u, _)| *u == d).map(|(_, e)| e)
    };
    if wrong.is_empty() {
        let notes = unset
            .iter()
            .filter_map(|node| {
                let e = agent(node)?;
                Some(format!("{node}: clock set over ssh, the guest agent failed ({e}): is qemu-guest-agent running in it?"))
            })
            .collect();
        return Ok(notes);
    }
    let lines: Vec<String> = wrong
        .iter()
        .map(|(node, why)| match agent(node) {
            Some(e) => format!("{node}: {why} (the guest agent failed too: {e})"),
            None => format!("{node}: {why}"),
        })
        .collect();
    let first = &wrong[0].0;
    Err(guests::GuestProblem(format!(
        "{}: see `lab logs {first} --provision`, then run `lab reset {name}` again",
        lines.join("; ")
    ))
    .into())
}
