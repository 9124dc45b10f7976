//! The real [`Guest`]: an in-process SSH client over russh.
//!
//! The server's host key must equal the lab's pinned key (injected through cloud-init, see
//! [`crate::render::cloudinit`]); any other key is refused, never accepted or prompted for.
//! Scripts and file contents travel on the channel's stdin, never on a command line. Every
//! connect and every command is bounded by [`Timeouts`]. When the node lives in a network
//! namespace ([`Target::netns`]), the TCP socket is created inside it by a short-lived thread
//! (a socket keeps its namespace), so `lab` itself stays in the host namespace. When the
//! node lives on a remote libvirt host ([`Target::via`]), its TCP connection is a
//! direct-tcpip channel the host's sshd opens ([`Jump`]).
//!
//! One job per file: this one holds the types and the [`Guest`] implementation; `transport`
//! reaches the node (TCP, namespaces, handshake, login, direct-tcpip), `config` reads the
//! user's ssh config and `jump` reaches the libvirt host, `exec` frames and runs commands, `log` writes the node's command log, `ready` waits for readiness and reboots, `clock`
//! reads and steps the node's clock over one open channel.

mod clock;
pub mod config;
mod exec;
mod jump;
mod log;
mod ready;
mod transport;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::guest::{FileWrite, Guest, GuestError, Output};
use crate::shell::quote;
pub use clock::ClockLine;
use exec::{
    bounded, channel_error, drive, first_line, run_script, script_stdin, start, write_failed,
};
pub use jump::{Jump, JumpError, UserSsh};
use log::{header, open_log};
pub use ready::{BOOT_FINISHED, wait_ready};
use transport::{Session, direct_tcpip, open_session, parse_keys};

/// How to reach one node.
#[derive(Clone)]
pub struct Target {
    /// The node's name, for messages.
    pub node: String,
    /// Its SSH address (management IP, port 22 on a real node).
    pub addr: SocketAddr,
    /// The login user; `root` runs commands without sudo, anyone else through `sudo -n`.
    pub user: String,
    /// The user's private key, OpenSSH text (unencrypted).
    pub user_key: String,
    /// The node's pinned host public key, OpenSSH text (`ssh-ed25519 AAAA... comment`).
    pub host_key: String,
    /// The network namespace (a name under `/var/run/netns`) the node is reachable from.
    pub netns: Option<String>,
    /// The libvirt host whose sshd opens the node's TCP connection (a `qemu+ssh://` URI);
    /// `None`: this machine connects (from [`Target::netns`] when set).
    pub via: Option<Arc<Jump>>,
    /// The node's command log: each command's header, stdout and stderr are appended.
    pub log: PathBuf,
    /// The file whose presence means cloud-init has finished ([`BOOT_FINISHED`]; tests point
    /// it elsewhere).
    pub ready_marker: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("node", &self.node)
            .field("addr", &self.addr)
            .field("user", &self.user)
            .field("user_key", &"<redacted>")
            .field("host_key", &self.host_key)
            .field("netns", &self.netns)
            .field("via", &self.via)
            .field("log", &self.log)
            .field("ready_marker", &self.ready_marker)
            .finish()
    }
}

/// Every bound of the SSH client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// One TCP connect, and separately the SSH handshake and login that follow it.
    pub connect: Duration,
    /// One command (`run`, `write_file`).
    pub command: Duration,
    /// The whole of [`wait_ready`]: port, login and cloud-init.
    pub ready: Duration,
    /// From the reboot command to the login into the new boot.
    pub reboot: Duration,
    /// The pause between two attempts while polling.
    pub poll: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(10),
            command: Duration::from_secs(30 * 60),
            ready: Duration::from_secs(15 * 60),
            reboot: Duration::from_secs(10 * 60),
            poll: Duration::from_secs(2),
        }
    }
}

/// A logged-in SSH session to a node; implements [`Guest`].
pub struct SshGuest {
    target: Target,
    timeouts: Timeouts,
    session: tokio::sync::Mutex<Session>,
}

impl fmt::Debug for SshGuest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshGuest")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl SshGuest {
    /// Connects to `target` and logs in; the host key must be the pinned one.
    pub async fn connect(target: &Target, timeouts: &Timeouts) -> Result<SshGuest, GuestError> {
        let keys = parse_keys(target)?;
        open_log(target)?;
        let handle = open_session(target, &keys, timeouts).await?;
        Ok(SshGuest {
            target: target.clone(),
            timeouts: *timeouts,
            session: tokio::sync::Mutex::new(handle),
        })
    }

    /// The target this session was opened for.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// `command` as root: unchanged for root, else through `sudo -n`.
    fn as_root(&self, command: &str) -> String {
        if self.target.user == "root" {
            command.to_string()
        } else {
            format!("sudo -n {command}")
        }
    }

    /// Runs `command` with `stdin` on the current session, bounded by the command timeout.
    async fn exec(&self, what: &str, command: &str, stdin: &[u8]) -> Result<Output, GuestError> {
        let node = &self.target.node;
        let limit = self.timeouts.command;
        let started = Instant::now();
        let open = async { start(&*self.session.lock().await, node, (what, command)).await };
        let channel = bounded(node, what, limit, open).await?;
        let left = limit.saturating_sub(started.elapsed());
        drive(
            channel,
            node,
            stdin,
            (what, left.max(Duration::from_millis(1))),
        )
        .await
    }
}

impl Guest for SshGuest {
    type Tcp = russh::ChannelStream<russh::client::Msg>;

    fn node(&self) -> &str {
        &self.target.node
    }

    async fn connect_tcp(&self, host: &str, port: u16) -> Result<Self::Tcp, GuestError> {
        let node = &self.target.node;
        let to = format!("{host}:{port}");
        let open = async { direct_tcpip(&*self.session.lock().await, node, host, port).await };
        let result = bounded(node, &format!("tcp to {to}"), self.timeouts.connect, open).await;
        let outcome = match &result {
            Ok(_) => "open".to_string(),
            Err(e) => e.to_string(),
        };
        self.log(&format!(
            "{}{outcome}\n",
            header(node, &format!("tcp to {to}"))
        ));
        Ok(result?.into_stream())
    }

    async fn run(&self, script: &str) -> Result<Output, GuestError> {
        self.run_with_files(&[], script).await
    }

    async fn run_with_files(
        &self,
        files: &[FileWrite<'_>],
        script: &str,
    ) -> Result<Output, GuestError> {
        let node = &self.target.node;
        let mut what = format!("script `{}`", first_line(script));
        let stdin = script_stdin(node, files, script)?;
        let result = self.exec(&what, &self.as_root(&run_script()), &stdin).await;
        what.push_str(&format!(" ({} lines)", script.lines().count()));
        for f in files {
            let bytes = f.content.len();
            what.push_str(&format!(
                ", writing {} (mode {:04o}, {bytes} bytes)",
                f.path, f.mode
            ));
        }
        self.log_output(&format!("run {what}"), &result);
        let out = result?;
        match write_failed(&out) {
            None => Ok(out),
            Some(path) => Err(channel_error(
                node,
                format!("writing {path} failed: {}", out.tail(5)),
            )),
        }
    }

    async fn write_file(&self, path: &str, mode: u32, content: &[u8]) -> Result<(), GuestError> {
        let command = format!("install -D -m {mode:04o} /dev/stdin {}", quote(path));
        let what = format!("writing {path} (mode {mode:04o}, {} bytes)", content.len());
        let result = self.exec(&what, &self.as_root(&command), content).await;
        self.log_output(&what, &result);
        let out = result?;
        if out.success() {
            return Ok(());
        }
        Err(channel_error(
            &self.target.node,
            format!("{what} failed with exit {}: {}", out.status, out.tail(5)),
        ))
    }

    async fn reboot(&self) -> Result<(), GuestError> {
        self.reboot_and_reconnect().await
    }
}
