//! The one seam over a guest's shell: run a script as root, write a file as root, reboot.
//! [`crate::ssh`] is the real implementation (russh, pinned host keys); tests of the
//! provisioning engine use a fake that records what it was asked.

use std::future::Future;

/// What a finished command left.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    pub status: u32,
    pub stdout: String,
    pub stderr: String,
}

/// A file a script needs on the node, written (parents created) before the script runs
/// ([`Guest::run_with_files`]). Its `Debug` shows the content's length, never the content
/// (secrets travel so).
#[derive(Clone, Copy)]
pub struct FileWrite<'a> {
    /// Absolute path on the node; no newline.
    pub path: &'a str,
    /// Permission bits, e.g. `0o600`.
    pub mode: u32,
    pub content: &'a [u8],
}

impl std::fmt::Debug for FileWrite<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWrite")
            .field("path", &self.path)
            .field("mode", &format_args!("{:04o}", self.mode))
            .field("bytes", &self.content.len())
            .finish()
    }
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// The last `n` lines of stderr (or stdout when stderr is empty), for error messages.
    pub fn tail(&self, n: usize) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestError {
    #[error("{node}: cannot connect to {addr}: {message}")]
    Connect {
        node: String,
        addr: String,
        message: String,
    },
    #[error(
        "{node}: host key {got} is not the lab's pinned key {want}: the node is not who it claims; `lab down` and `lab up` rebuild it"
    )]
    HostKey {
        node: String,
        got: String,
        want: String,
    },
    #[error("{node}: login as {user} refused: {message}")]
    Auth {
        node: String,
        user: String,
        message: String,
    },
    #[error("{node}: {what} timed out after {secs}s")]
    Timeout {
        node: String,
        what: String,
        secs: u64,
    },
    #[error("{node}: ssh: {message}")]
    Channel { node: String, message: String },
    /// The SSH connection dropped under a command: the node rebooted, stopped or lost its
    /// network. Not retried: the step may have been cut anywhere (steps are idempotent).
    #[error(
        "{node}: ssh connection lost during {what} (did the node reboot or stop? `lab status` shows it): `lab up` goes on (done steps are kept)"
    )]
    Lost { node: String, what: String },
    /// The libvirt host the node is reached through (a `qemu+ssh://` URI) was not reached
    /// or refused the login: final, not retried.
    /// `message` is the whole reason, as the ssh layer words it; `kind` says which, for callers
    /// that act on it.
    #[error("{node}: through the libvirt host: {message}")]
    Jump {
        node: String,
        /// The host (or `ProxyJump` hop) the failure concerns; empty when the user's ssh
        /// config could not be read.
        host: String,
        message: String,
        kind: JumpKind,
    },
    /// The node could not open a TCP connection to `to` (refused, unreachable, or its sshd
    /// forbids forwarding): what a program on the node would have met.
    #[error("{node}: no tcp connection to {to} from the node: {message}")]
    Tcp {
        node: String,
        to: String,
        message: String,
    },
}

impl crate::failure::Classify for GuestError {
    fn class(&self) -> crate::failure::ExitClass {
        crate::failure::ExitClass::Guest
    }
}

/// Why the libvirt host a node is reached through failed ([`GuestError::Jump`]): the seam's own
/// words for it, so the seam names no type of the ssh layer that implements it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JumpKind {
    /// The user's ssh config (or the libvirt uri) could not be read.
    Config,
    /// No SSH connection to the host (or a hop): down, unreachable, or too slow.
    Connect,
    /// The host is not in the user's known_hosts.
    UnknownHost,
    /// The host's key is not the one known_hosts records at `line`.
    ChangedKey { line: usize },
    /// known_hosts could not be read or checked.
    KnownHosts,
    /// The login to the host was refused with every key tried.
    Auth,
    /// The host's sshd forbids TCP forwarding.
    Forwarding,
    /// The `ProxyJump` chain is too long (a loop in the ssh config).
    TooManyHops,
}

/// A node's shell, as root.
pub trait Guest: Send + Sync {
    /// A byte stream to a TCP port, as seen from the node ([`Guest::connect_tcp`]).
    type Tcp: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send;
    /// The node's name, for messages.
    fn node(&self) -> &str;
    /// Runs `script` with `bash -s` as root; the script travels on stdin, never on a command
    /// line. Output is also appended to the node's log.
    fn run(&self, script: &str) -> impl Future<Output = Result<Output, GuestError>> + Send;
    /// Writes `content` to `path` (parents created) with `mode`, as root; the content travels
    /// on the channel.
    fn write_file(
        &self,
        path: &str,
        mode: u32,
        content: &[u8],
    ) -> impl Future<Output = Result<(), GuestError>> + Send;
    /// Writes `files` as [`Guest::write_file`] does, then runs `script` as [`Guest::run`]
    /// does; stops at the first write that fails. The real guest sends all of it on one
    /// channel (one session's start instead of one per file).
    fn run_with_files(
        &self,
        files: &[FileWrite<'_>],
        script: &str,
    ) -> impl Future<Output = Result<Output, GuestError>> + Send {
        async move {
            for f in files {
                self.write_file(f.path, f.mode, f.content).await?;
            }
            self.run(script).await
        }
    }
    /// A TCP connection that the node itself opens to `host:port` (`host` resolved by the
    /// node, as its own programs would): an SSH direct-tcpip channel on the real guest.
    fn connect_tcp(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = Result<Self::Tcp, GuestError>> + Send;
    /// Reboots the node and returns once it answers again.
    fn reboot(&self) -> impl Future<Output = Result<(), GuestError>> + Send;
}
