//! The real [`Guest`]: an in-process SSH client over russh.
//!
//! The server's host key must equal the lab's pinned key (injected through cloud-init, see
//! [`crate::render::cloudinit`]); any other key is refused, never accepted or prompted for.
//! Scripts and file contents travel on the channel's stdin, never on a command line. Every
//! connect and every command is bounded by [`Timeouts`]. When the node lives in a network
//! namespace ([`Target::netns`]), the TCP socket is created inside it by a short-lived thread
//! (a socket keeps its namespace), so `lab` itself stays in the host namespace.

use std::fmt;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg, ChannelReadHalf, Sig};
use tokio::net::TcpStream;

use crate::guest::{Guest, GuestError, Output};
use crate::provision::step::quote;

/// The file cloud-init writes when its last stage has finished: the default readiness marker.
pub const BOOT_FINISHED: &str = "/var/lib/cloud/instance/boot-finished";

/// Where network namespaces created by `ip netns add` are bound.
const NETNS_DIR: &str = "/var/run/netns";

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
    session: tokio::sync::Mutex<Handle<Pinned>>,
}

impl fmt::Debug for SshGuest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshGuest")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The russh handler: accepts exactly the pinned host key and records any other one.
struct Pinned {
    want: PublicKey,
    refused: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let got = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(cert) => {
                *self.refused.lock().expect("not poisoned") =
                    Some(format!("a certificate of {}", openssh(cert.public_key())));
                return Ok(false);
            }
        };
        if got.key_data() == self.want.key_data() {
            return Ok(true);
        }
        *self.refused.lock().expect("not poisoned") = Some(openssh(got.key_data()));
        Ok(false)
    }
}

/// A public key as `type base64`, without comment.
fn openssh(key: &russh::keys::ssh_key::public::KeyData) -> String {
    PublicKey::new(key.clone(), "")
        .to_openssh()
        .unwrap_or_else(|e| format!("<unencodable key: {e}>"))
}

/// The parsed keys of a target.
struct Keys {
    user: Arc<PrivateKey>,
    host: PublicKey,
}

fn parse_keys(t: &Target) -> Result<Keys, GuestError> {
    let damaged = |what: &str, e: &dyn fmt::Display| GuestError::Channel {
        node: t.node.clone(),
        message: format!(
            "the lab's {what} does not parse ({e}): the lab state is damaged; `lab down` and `lab up` rebuild it"
        ),
    };
    let user = PrivateKey::from_openssh(&t.user_key).map_err(|e| damaged("user key", &e))?;
    let host = PublicKey::from_openssh(&t.host_key).map_err(|e| damaged("pinned host key", &e))?;
    Ok(Keys {
        user: Arc::new(user),
        host,
    })
}

/// `fut`, bounded by `limit`; on expiry a [`GuestError::Timeout`] naming `what`.
async fn bounded<T>(
    node: &str,
    what: &str,
    limit: Duration,
    fut: impl Future<Output = Result<T, GuestError>>,
) -> Result<T, GuestError> {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| Err(timeout_error(node, what, limit)))
}

fn timeout_error(node: &str, what: &str, limit: Duration) -> GuestError {
    GuestError::Timeout {
        node: node.to_string(),
        what: what.to_string(),
        secs: limit.as_secs_f64().ceil() as u64,
    }
}

fn connect_error(t: &Target, message: String) -> GuestError {
    GuestError::Connect {
        node: t.node.clone(),
        addr: t.addr.to_string(),
        message,
    }
}

/// Opens the TCP connection (inside `t.netns` when set), TCP_NODELAY on. Expiry of `limit` is
/// a [`GuestError::Connect`]: the port did not answer.
async fn open_tcp(t: &Target, limit: Duration) -> Result<TcpStream, GuestError> {
    let stream = match &t.netns {
        None => match tokio::time::timeout(limit, TcpStream::connect(t.addr)).await {
            Ok(r) => r.map_err(|e| connect_error(t, format!("{e}: is the node up?")))?,
            Err(_) => {
                let secs = limit.as_secs_f64().ceil();
                return Err(connect_error(
                    t,
                    format!("no answer within {secs}s: is the node up?"),
                ));
            }
        },
        Some(ns) => connect_in_netns(t, ns, limit).await?,
    };
    stream
        .set_nodelay(true)
        .map_err(|e| connect_error(t, format!("cannot set TCP_NODELAY: {e}")))?;
    Ok(stream)
}

/// Connects from a fresh thread that enters network namespace `ns` first; the connected
/// socket stays in that namespace and is handed back to tokio.
async fn connect_in_netns(t: &Target, ns: &str, limit: Duration) -> Result<TcpStream, GuestError> {
    if ns.is_empty() || ns.contains('/') || ns == "." || ns == ".." {
        return Err(connect_error(
            t,
            format!("{ns:?} is not a network namespace name"),
        ));
    }
    let path = Path::new(NETNS_DIR).join(ns);
    let addr = t.addr;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("lab-netns-{ns}"))
        .spawn(move || {
            let _ = tx.send(connect_from_netns(&path, addr, limit));
        })
        .map_err(|e| connect_error(t, format!("cannot start a thread: {e}")))?;
    let std_stream = rx
        .await
        .map_err(|_| connect_error(t, "the namespace thread died".to_string()))?
        .map_err(|e| {
            connect_error(
                t,
                format!("in network namespace {ns}: {e}: check `ip netns list`"),
            )
        })?;
    std_stream
        .set_nonblocking(true)
        .and_then(|()| TcpStream::from_std(std_stream))
        .map_err(|e| connect_error(t, format!("cannot hand the socket to tokio: {e}")))
}

/// Runs on its own thread: setns(2) into the namespace at `path`, then a bounded connect.
fn connect_from_netns(
    path: &Path,
    addr: SocketAddr,
    limit: Duration,
) -> std::io::Result<std::net::TcpStream> {
    let ns = std::fs::File::open(path)?;
    // SAFETY: `ns` is an open namespace file for the whole call; setns only changes the
    // network namespace of this thread, which ends right after the connect.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    std::net::TcpStream::connect_timeout(&addr, limit)
}

/// TCP, SSH handshake against the pinned key, public-key login: each bounded by
/// `timeouts.connect`.
async fn open_session(
    t: &Target,
    keys: &Keys,
    timeouts: &Timeouts,
) -> Result<Handle<Pinned>, GuestError> {
    let stream = open_tcp(t, timeouts.connect).await?;
    let what = format!("ssh login to {}", t.addr);
    bounded(&t.node, &what, timeouts.connect, handshake(t, keys, stream)).await
}

async fn handshake(
    t: &Target,
    keys: &Keys,
    stream: TcpStream,
) -> Result<Handle<Pinned>, GuestError> {
    let config = Arc::new(client::Config {
        nodelay: true,
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 4,
        ..Default::default()
    });
    let refused = Arc::new(Mutex::new(None));
    let handler = Pinned {
        want: keys.host.clone(),
        refused: refused.clone(),
    };
    let connected = client::connect_stream(config, stream, handler).await;
    if let Some(got) = refused.lock().expect("not poisoned").take() {
        return Err(GuestError::HostKey {
            node: t.node.clone(),
            got,
            want: openssh(keys.host.key_data()),
        });
    }
    let mut handle =
        connected.map_err(|e| connect_error(t, format!("ssh handshake failed: {e}")))?;
    let key = PrivateKeyWithHashAlg::new(keys.user.clone(), None);
    let auth_error = |message: String| GuestError::Auth {
        node: t.node.clone(),
        user: t.user.clone(),
        message,
    };
    let auth = handle
        .authenticate_publickey(&t.user, key)
        .await
        .map_err(|e| auth_error(format!("{e}")))?;
    if !auth.success() {
        return Err(auth_error(
            "the lab's user key is not authorized: has cloud-init run on the node?".to_string(),
        ));
    }
    Ok(handle)
}

fn channel_error(node: &str, message: String) -> GuestError {
    GuestError::Channel {
        node: node.to_string(),
        message,
    }
}

/// A direct-tcpip channel the node's sshd could not open: the connection it tried failed
/// (refused, unreachable, unknown name), or forwarding is off.
fn tcp_error(node: &str, to: &str, e: russh::Error) -> GuestError {
    use russh::ChannelOpenFailure as F;
    let message = match e {
        russh::Error::ChannelOpenFailure(F::ConnectFailed) => "connection failed".to_string(),
        russh::Error::ChannelOpenFailure(F::AdministrativelyProhibited) => {
            "the node's sshd forbids tcp forwarding (AllowTcpForwarding)".to_string()
        }
        russh::Error::ChannelOpenFailure(other) => format!("{other:?}"),
        other => return channel_error(node, format!("cannot open a tcp channel: {other}")),
    };
    GuestError::Tcp {
        node: node.to_string(),
        to: to.to_string(),
        message,
    }
}

/// Opens a session channel on `handle` and starts `command` on it.
async fn start(
    handle: &Handle<Pinned>,
    node: &str,
    command: &str,
) -> Result<Channel<client::Msg>, GuestError> {
    let fail = |what: &str, e: russh::Error| {
        channel_error(node, format!("{what}: {e}: is the node still up?"))
    };
    let channel = handle
        .channel_open_session()
        .await
        .map_err(|e| fail("cannot open a session channel", e))?;
    channel
        .exec(true, command)
        .await
        .map_err(|e| fail("cannot start the command", e))?;
    Ok(channel)
}

/// Feeds `stdin` then EOF to a started command and collects its output and status, within
/// `limit`; past it, the command is sent SIGTERM and its channel closed.
async fn drive(
    channel: Channel<client::Msg>,
    node: &str,
    stdin: &[u8],
    (what, limit): (&str, Duration),
) -> Result<Output, GuestError> {
    let (mut read, write) = channel.split();
    let send = async {
        write.data(stdin).await?;
        write.eof().await
    };
    let Ok((sent, out)) =
        tokio::time::timeout(limit, async { tokio::join!(send, collect(&mut read)) }).await
    else {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = write.signal(Sig::TERM).await;
            write.close().await
        })
        .await;
        return Err(timeout_error(node, what, limit));
    };
    let out = out.map_err(|m| channel_error(node, m))?;
    match sent {
        // A failed command may close its stdin early: its status tells the story.
        Err(e) if out.success() => Err(channel_error(node, format!("sending stdin failed: {e}"))),
        _ => Ok(out),
    }
}

/// Runs `command` with `stdin` on a new channel of `handle`, within `limit`.
async fn exec(
    handle: &Handle<Pinned>,
    node: &str,
    command: &str,
    stdin: &[u8],
    bound: (&str, Duration),
) -> Result<Output, GuestError> {
    let started = Instant::now();
    let channel = bounded(node, bound.0, bound.1, start(handle, node, command)).await?;
    let left = bound.1.saturating_sub(started.elapsed());
    drive(
        channel,
        node,
        stdin,
        (bound.0, left.max(Duration::from_millis(1))),
    )
    .await
}

/// Reads a channel to its end: stdout, stderr (extended data 1), exit status.
async fn collect(read: &mut ChannelReadHalf) -> Result<Output, String> {
    let (mut stdout, mut stderr, mut status) = (Vec::new(), Vec::new(), None);
    while let Some(msg) = read.wait().await {
        match msg {
            ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
            ChannelMsg::ExtendedData { data, ext: 1 } => stderr.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                stderr
                    .extend_from_slice(format!("\nkilled by signal {signal_name:?}\n").as_bytes());
                status = Some(255);
            }
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    let status = status.ok_or(
        "the connection closed before the command finished: see the node's log and serial console",
    )?;
    Ok(Output {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// The node's current boot id, read within `limit`.
async fn boot_id(
    handle: &Handle<Pinned>,
    node: &str,
    limit: Duration,
) -> Result<String, GuestError> {
    let out = exec(handle, node, BOOT_ID, b"", ("reading the boot id", limit)).await?;
    parse_boot_id(node, &out)
}

const BOOT_ID: &str = "cat /proc/sys/kernel/random/boot_id";

fn parse_boot_id(node: &str, out: &Output) -> Result<String, GuestError> {
    if !out.success() || out.stdout.trim().is_empty() {
        return Err(channel_error(
            node,
            format!("cannot read the boot id: {}", out.tail(3)),
        ));
    }
    Ok(out.stdout.trim().to_string())
}

/// Appends to the node's log; a log that cannot be written is not worth failing a command.
fn append_log(path: &Path, text: &str) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Ok(mut f) = file {
        let _ = f.write_all(text.as_bytes());
    }
}

/// Creates the log's directory and checks the log can be opened for appending.
fn open_log(t: &Target) -> Result<(), GuestError> {
    if let Some(dir) = t.log.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| log_error(t, &e))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&t.log)
        .map(drop)
        .map_err(|e| log_error(t, &e))
}

fn log_error(t: &Target, e: &std::io::Error) -> GuestError {
    channel_error(
        &t.node,
        format!(
            "cannot write the log {}: {e}: check the state directory's permissions",
            t.log.display()
        ),
    )
}

fn header(node: &str, what: &str) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("==> [{secs}] {node}: {what}\n")
}

fn first_line(script: &str) -> &str {
    script
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
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
        let open = async { start(&*self.session.lock().await, node, command).await };
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

    /// Whether the readiness marker exists (no sudo: the marker is world-readable).
    async fn marker_present(&self) -> Result<bool, GuestError> {
        let command = format!("test -f {}", quote(&self.target.ready_marker));
        let out = self.exec("readiness check", &command, b"").await?;
        Ok(out.success())
    }

    /// The current boot id of the node.
    pub async fn boot_id(&self) -> Result<String, GuestError> {
        let out = self.exec("reading the boot id", BOOT_ID, b"").await?;
        parse_boot_id(&self.target.node, &out)
    }

    fn log(&self, text: &str) {
        append_log(&self.target.log, text);
    }

    fn log_output(&self, what: &str, result: &Result<Output, GuestError>) {
        let mut text = header(&self.target.node, what);
        match result {
            Ok(out) => {
                text.push_str(&out.stdout);
                if !out.stdout.is_empty() && !out.stdout.ends_with('\n') {
                    text.push('\n');
                }
                if !out.stderr.is_empty() {
                    text.push_str("--- stderr\n");
                    text.push_str(&out.stderr);
                    if !out.stderr.ends_with('\n') {
                        text.push('\n');
                    }
                }
                text.push_str(&format!("<== exit {}\n", out.status));
            }
            Err(e) => text.push_str(&format!("<== error: {e}\n")),
        }
        self.log(&text);
    }
}

/// How a script runs: saved from stdin to a private temp file, then run with stdin from
/// /dev/null. A plain `bash -s` would let any command that reads stdin (rabbitmqctl, apt)
/// swallow the rest of the script, which then ends early with status 0.
const RUN_SCRIPT: &str = "bash -c 'f=$(mktemp) || exit 125; trap \"rm -f $f\" EXIT; cat > \"$f\"; bash \"$f\" < /dev/null'";

impl Guest for SshGuest {
    type Tcp = russh::ChannelStream<client::Msg>;

    fn node(&self) -> &str {
        &self.target.node
    }

    async fn connect_tcp(&self, host: &str, port: u16) -> Result<Self::Tcp, GuestError> {
        let node = &self.target.node;
        let to = format!("{host}:{port}");
        let open = async {
            let session = self.session.lock().await;
            session
                .channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 0)
                .await
                .map_err(|e| tcp_error(node, &to, e))
        };
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
        let what = format!("script `{}`", first_line(script));
        let result = self
            .exec(&what, &self.as_root(RUN_SCRIPT), script.as_bytes())
            .await;
        let lines = script.lines().count();
        self.log_output(&format!("run {what} ({lines} lines)"), &result);
        result
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
        let before = self.boot_id().await?;
        let deadline = Instant::now() + self.timeouts.reboot;
        let command = self.as_root("systemctl reboot");
        self.log(&header(
            &self.target.node,
            &format!("reboot (boot id {before})"),
        ));
        let bound = ("the reboot command", self.timeouts.connect);
        let issued = {
            let session = self.session.lock().await;
            exec(&session, &self.target.node, &command, b"", bound).await
        };
        // The connection usually drops under the command (an error or a timeout here is
        // expected); a command that answers with a failure did not reboot anything.
        if let Some(out) = issued.ok().filter(|o| !o.success()) {
            let message = format!(
                "`{command}` failed with exit {}: {}",
                out.status,
                out.tail(3)
            );
            return Err(channel_error(&self.target.node, message));
        }
        let fresh = self.reconnect_after(&before, deadline).await?;
        let old = std::mem::replace(&mut *self.session.lock().await, fresh);
        drop(old);
        self.log(&header(&self.target.node, "back after reboot"));
        Ok(())
    }
}

impl SshGuest {
    /// Logs in again until the node answers with a boot id other than `before`.
    async fn reconnect_after(
        &self,
        before: &str,
        deadline: Instant,
    ) -> Result<Handle<Pinned>, GuestError> {
        let t = &self.target;
        let keys = parse_keys(t)?;
        let mut last = "the old boot still answered".to_string();
        loop {
            let Some(left) = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
            else {
                return Err(GuestError::Timeout {
                    node: t.node.clone(),
                    what: format!("reboot (last: {last}; see the serial console)"),
                    secs: self.timeouts.reboot.as_secs(),
                });
            };
            let timeouts = Timeouts {
                connect: self.timeouts.connect.min(left),
                ..self.timeouts
            };
            match open_session(t, &keys, &timeouts).await {
                Ok(handle) => match boot_id(&handle, &t.node, left).await {
                    Ok(id) if id != before => return Ok(handle),
                    Ok(_) => last = "the old boot still answered".to_string(),
                    Err(e) => last = e.to_string(),
                },
                Err(e @ GuestError::HostKey { .. }) => return Err(e),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(self.timeouts.poll.min(left)).await;
        }
    }
}

/// How far [`wait_ready`] got, for its timeout message.
struct Progress {
    stage: &'static str,
    last: String,
}

impl Progress {
    fn note(&mut self, e: &GuestError) {
        self.stage = match e {
            GuestError::Connect { .. } => "no answer on the ssh port yet",
            GuestError::Auth { .. } => "the ssh port answers, login refused",
            GuestError::Timeout { .. } | GuestError::Channel { .. } | GuestError::Tcp { .. } => {
                "the ssh port answers, no working session"
            }
            GuestError::HostKey { .. } => "wrong host key",
        };
        self.last = e.to_string();
    }
}

/// Waits, under one deadline (`timeouts.ready`), for the node's ssh port to answer, the login
/// to work and cloud-init to have finished ([`Target::ready_marker`] exists); returns the
/// logged-in session. A wrong host key fails at once. The timeout error names the stage
/// reached and the last error seen.
pub async fn wait_ready(target: &Target, timeouts: &Timeouts) -> Result<SshGuest, GuestError> {
    let deadline = Instant::now() + timeouts.ready;
    let mut progress = Progress {
        stage: "no answer on the ssh port yet",
        last: "none".to_string(),
    };
    let mut guest: Option<SshGuest> = None;
    while let Some(left) = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
    {
        let bounded_timeouts = Timeouts {
            connect: timeouts.connect.min(left),
            command: timeouts.command.min(left),
            ..*timeouts
        };
        match guest.take() {
            None => match SshGuest::connect(target, &bounded_timeouts).await {
                Ok(g) => {
                    guest = Some(g);
                    continue;
                }
                Err(e @ GuestError::HostKey { .. }) => return Err(e),
                Err(e) => progress.note(&e),
            },
            Some(g) => {
                match bounded(&target.node, "readiness check", left, g.marker_present()).await {
                    Ok(true) => {
                        return Ok(SshGuest {
                            timeouts: *timeouts,
                            ..g
                        });
                    }
                    Ok(false) => {
                        progress.stage = "logged in, cloud-init has not finished";
                        progress.last = format!("{} is missing", target.ready_marker);
                        guest = Some(g);
                    }
                    // Cut short by the deadline: the stage reached is still the one to report.
                    Err(GuestError::Timeout { .. }) => {}
                    Err(e) => progress.note(&e),
                }
            }
        }
        tokio::time::sleep(timeouts.poll.min(left)).await;
    }
    Err(GuestError::Timeout {
        node: target.node.clone(),
        what: format!(
            "waiting for the node to be ready (reached: {}; last: {})",
            progress.stage, progress.last
        ),
        secs: timeouts.ready.as_secs(),
    })
}
