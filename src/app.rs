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
}

impl Target {
    /// Loads and validates the lab (`--lab FILE|NAME`).
    pub fn resolve(lab_arg: &str, uri: &str, pool_root: Option<PathBuf>) -> anyhow::Result<Target> {
        let source = Source::resolve(lab_arg)?;
        let (lab, notes) = source.load(&Catalogue::builtin())?;
        let state = LabState::new(&state::root()?, &lab.name);
        Ok(Target {
            lab,
            notes,
            source,
            uri: uri.to_string(),
            state,
            pool_root,
        })
    }

    pub fn connect(&self) -> anyhow::Result<Libvirt> {
        Ok(Libvirt::open(&self.uri)?)
    }

    /// The render context from the lab's state (the secrets seed is created on first use).
    pub fn context(&self, accel: Accel) -> anyhow::Result<RenderContext> {
        let seed = self.state.seed()?;
        let (pool_dir, log_dir) = host_dirs(&self.uri, &self.lab.name, self.pool_root.as_deref());
        Ok(RenderContext {
            accel,
            secrets: LabSecrets::from_seed(&self.lab, &seed),
            pool_dir,
            log_dir,
            generations: Default::default(),
        })
    }
}

/// `lab up`: converge libvirt to the lab. A first `up` that fails leaves no state behind.
pub fn up(t: &Target, accel: Accel, image: &Path, progress: &dyn Progress) -> anyhow::Result<bool> {
    let _lock = t.state.lock("up")?;
    let fresh = !t.state.exists();
    let result = (|| {
        let ctx = t.context(accel)?;
        t.state
            .write(names::state::LAB_FILE, t.source.text.as_bytes())?;
        let hv = t.connect()?;
        let opts = UpOptions {
            image,
            check_routes: is_local(&t.uri),
        };
        Ok(lifecycle::up(&hv, &t.lab, &ctx, &opts, progress)?)
    })();
    if result.is_err() && fresh {
        let _ = t.state.remove();
    }
    result
}

/// `lab down`: remove what libvirt says the lab owns, then its state.
pub fn down(t: &Target, progress: &dyn Progress) -> anyhow::Result<usize> {
    let _lock = t.state.lock("down")?;
    let hv = t.connect()?;
    let (pool_dir, _) = host_dirs(&t.uri, &t.lab.name, t.pool_root.as_deref());
    let removed = lifecycle::down(&hv, &t.lab.name, Some(&pool_dir), progress)?;
    t.state
        .remove()
        .context("the lab is down, but its state directory stays")?;
    Ok(removed)
}

/// Writes the lab user's key (0600) and the pinned known_hosts into the lab's state, for
/// users' own ssh, scp, rsync and Ansible; returns their paths.
pub fn access_files(t: &Target) -> anyhow::Result<(PathBuf, PathBuf)> {
    let seed = t.state.seed()?;
    let secrets = LabSecrets::from_seed(&t.lab, &seed);
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
            "lab {} has no state in {}: run `lab up` first",
            t.lab.name,
            t.state.dir().display()
        );
    }
    Ok(LabSecrets::from_seed(&t.lab, &t.state.seed()?))
}
