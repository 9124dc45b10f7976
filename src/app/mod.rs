//! The operations behind the CLI verbs: resolve the lab, take its lock, open libvirt, build
//! the render context from the lab's state, and call the lifecycle. The CLI only parses.

use crate::failure::Failure;
use std::path::{Path, PathBuf};

use crate::failure::Context;

use crate::image::Catalogue;
use crate::libvirt::{Hypervisor, Libvirt};
use crate::lifecycle::{self, Progress};
use crate::model::{Lab, Note, Source};
use crate::names;
use crate::render::{Accel, RenderContext};
use crate::secrets::LabSecrets;
use crate::state::{self, LabState};

mod choice;
mod class;
mod clock;
mod console;
mod down;
mod guests;
mod image;
mod inspect;
mod instance;
mod logs;
mod nodes;
mod plan;
mod power;
mod snapshot;
mod up;
mod watch;

pub use choice::{ChosenBy, DEFAULT_LAB, DIR_FILE, LAB_ENV, LabChoice, name_the_lab};

pub use console::{ESCAPE, RawMode, attach};

pub use image::{build_image, buildable};

pub use class::{
    Class, Tagged, down_seats, each_seat, plan_class, record_class, reset_seats, room, start_seats,
    stop_seats, up_seats, verify_seats,
};

pub use instance::{Host, InstanceChoice, NoSuchInstance, Unplaced, in_use, instance_lab};

pub use inspect::{Listed, doctor, list, open_console, snapshots, status};
pub use logs::{LogSource, Logs, read_log, serial_source, serial_tail};

pub use nodes::{ChecksFailed, checks_passed, provision_nodes, ssh_command, ssh_run, verify_nodes};

pub use plan::{Planned, plan};

pub use up::{Provisioning, Stopped, UpReport, before_snapshot, up};

pub use down::down;

pub use power::{Started, start, stop};

pub use snapshot::{reset, snapshot_delete, snapshot_save};

pub use watch::{HostLost, Judge, watching};

pub use guests::{GuestProblem, NodeError, provision, ready, remote_command, ssh_targets, verify};

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

/// What a command resolves a lab for: an instance without a placement record is placed by
/// `up`, named only by `down` (its objects are found by name), and refused by the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Up,
    Down,
    Use,
    /// `lab plan`: an instance without a record is previewed with the lab file's own subnets
    /// (`up` picks its external subnet from the pool then); nothing is recorded.
    Preview,
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
    /// `--instance`: the lab is a copy of the file's lab ([`crate::model::instance`]).
    pub instance: Option<String>,
}

impl Target {
    /// Loads and validates the chosen lab; with `instance`, makes it that instance of the
    /// lab, placed as recorded, or as `purpose` needs when no record exists.
    pub fn resolve(
        choice: LabChoice,
        uri: &str,
        pool_root: Option<PathBuf>,
        instance: Option<&InstanceChoice>,
        purpose: Purpose,
    ) -> crate::failure::Result<Target> {
        let source = choice.source()?;
        let (lab, notes) = source.load(&Catalogue::builtin())?;
        let root = state::root()?;
        let (lab, state) = match instance {
            None => {
                let state = LabState::new(&root, &lab.name);
                (lab, state)
            }
            Some(i) => match purpose {
                // libvirt is asked only for an instance no record places yet.
                Purpose::Up => match instance_lab(&lab, i, &root, Unplaced::Refuse) {
                    Err(e) if e.downcast_ref::<NoSuchInstance>().is_some() => {
                        let hv = Libvirt::open(uri)?;
                        let host = Host {
                            hv: &hv,
                            local: is_local(uri),
                        };
                        instance_lab(&lab, i, &root, Unplaced::Place(&host))?
                    }
                    placed => placed?,
                },
                Purpose::Down | Purpose::Preview => {
                    instance_lab(&lab, i, &root, Unplaced::NameOnly)?
                }
                Purpose::Use => instance_lab(&lab, i, &root, Unplaced::Refuse)?,
            },
        };
        Ok(Target {
            lab,
            notes,
            source,
            uri: uri.to_string(),
            state,
            pool_root,
            choice,
            instance: instance.map(|i| i.name.clone()),
        })
    }

    /// `lab WORDS` as the user types it to reach this lab (with `--lab` when a bare command
    /// would pick another), for hints.
    pub fn command(&self, words: &str) -> String {
        let instance = match &self.instance {
            Some(name) => format!(" --instance {name}"),
            None => String::new(),
        };
        format!("lab {words}{}{instance}", self.choice.flag())
    }

    /// The libvirt domain of node `name`, or an error listing the lab's nodes.
    pub fn domain(&self, name: &str) -> Result<String, lifecycle::LifecycleError> {
        match self.lab.node(name) {
            Some(n) => Ok(names::domain(&self.lab.name, &n.name)),
            None => Err(lifecycle::LifecycleError::no_such_node(&self.lab, name)),
        }
    }

    pub fn connect(&self) -> crate::failure::Result<Libvirt> {
        Ok(Libvirt::open(&self.uri)?)
    }

    /// `hv` while its connection stands, else a new one: after a long SSH phase, during
    /// which libvirtd may have been restarted (the guests ran on). A cheap call asks first:
    /// a connection no call used since the restart has not noticed it yet.
    pub fn still_connected(&self, hv: Libvirt) -> crate::failure::Result<Libvirt> {
        match hv.node_size() {
            Err(e) if e.is_connection_lost() => self.connect(),
            _ => Ok(hv),
        }
    }

    /// The render context from the lab's state (the secrets seed is created on first use).
    pub fn context(&self, accel: Accel) -> crate::failure::Result<RenderContext> {
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

/// Runs `work` until it ends or a stop is asked for ([`crate::interrupt`]); then it is
/// dropped (its SSH sessions close; guest steps are idempotent, so a re-run redoes the one
/// that was cut) and the error says `during`.
pub async fn until_interrupted<T>(
    during: &str,
    work: impl std::future::Future<Output = crate::failure::Result<T>>,
) -> crate::failure::Result<T> {
    tokio::select! {
        out = work => out,
        () = crate::interrupt::wait() => Err(crate::interrupt::check(during).unwrap_err().into()),
    }
}

/// The async runtime for SSH work (libvirt calls stay on plain threads).
pub fn runtime() -> crate::failure::Result<tokio::runtime::Runtime> {
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
    f: impl AsyncFnOnce(&RenderContext, Vec<crate::ssh::SshGuest>) -> crate::failure::Result<T>,
) -> crate::failure::Result<T> {
    with_guests_reporting(t, timeouts, &lifecycle::Quiet, None, f)
}

/// [`with_guests`], reporting the wait for each node (`node NAME ready`) to `progress`;
/// with `watch`, a node whose domain stops running meanwhile ends the work ([`watching`]).
pub fn with_guests_reporting<T>(
    t: &Target,
    timeouts: &crate::ssh::Timeouts,
    progress: &dyn Progress,
    watch: Option<&dyn Hypervisor>,
    f: impl AsyncFnOnce(&RenderContext, Vec<crate::ssh::SshGuest>) -> crate::failure::Result<T>,
) -> crate::failure::Result<T> {
    // The accel only shapes domain XML, which SSH work never renders.
    let ctx = t.context(Accel::Tcg)?;
    let work = until_interrupted(
        "while working on the nodes: re-run the command to go on",
        async {
            let guests = ready(t, &ctx, timeouts, progress).await?;
            f(&ctx, guests).await
        },
    );
    watching(&t.lab, watch, &runtime()?, work)
}

/// An error when domains or networks of the lab's names belong to another state directory
/// (for commands that act on the lab's objects without creating them).
pub fn check_owner(t: &Target, hv: &Libvirt) -> crate::failure::Result<()> {
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

/// Writes the lab user's key (0600) and the pinned known_hosts into the lab's state, for
/// users' own ssh, scp, rsync and Ansible; returns their paths.
/// An error when the lab was never brought up (no new keys are made here).
pub fn access_files(t: &Target) -> crate::failure::Result<(PathBuf, PathBuf)> {
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
pub fn secrets(t: &Target) -> crate::failure::Result<LabSecrets> {
    if !t.state.exists() {
        return Err(Failure::host(format!(
            "lab {} has no state in {}: run `{}` first",
            t.lab.name,
            t.state.dir().display(),
            t.command("up")
        )));
    }
    Ok(LabSecrets::from_seed(&t.lab, &t.state.seed()?))
}
