//! Reaching nodes through the libvirt host's sshd (a `qemu+ssh://` URI): one [`Jump`] holds a
//! logged-in russh session to the host, connected on first use and shared by every node's
//! connection of one operation; each node's TCP connection is a direct-tcpip channel the
//! host's sshd opens. The host (and each `ProxyJump` hop before it, connected through the
//! previous one) is resolved from the user's ssh config ([`super::config`]), its key checked
//! against the user's known_hosts, and the login made with the ssh-agent's keys, then each
//! unencrypted identity file, as OpenSSH would.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use russh::ChannelOpenFailure as F;
use russh::client::{self, Handle};
use tokio::io::{AsyncRead, AsyncWrite};

use super::config::{self, ConfigError, Destination, HostSpec};
use super::transport::client_config;
use crate::guest::{GuestError, JumpKind};

mod linked;
mod login;
use linked::Linked;
use login::{KnownHost, log_in};

/// Hops followed before giving up (a `ProxyJump` loop in the config).
const MAX_HOPS: usize = 8;

/// What the user's own ssh would read: config text, home, name, known_hosts, agent socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSsh {
    /// The ssh config text (`~/.ssh/config`; empty when there is none).
    pub config: String,
    /// The home directory, for `~` in identity files.
    pub home: PathBuf,
    /// The local user name, the default login.
    pub local_user: String,
    /// The known_hosts file host keys are checked against.
    pub known_hosts: PathBuf,
    /// The ssh-agent's socket (`SSH_AUTH_SOCK`), tried first.
    pub agent: Option<PathBuf>,
}

impl UserSsh {
    /// From the environment: `$HOME/.ssh/{config,known_hosts}`, `$USER`, `$SSH_AUTH_SOCK`.
    pub fn from_env() -> UserSsh {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        let home = PathBuf::from(var("HOME").unwrap_or_else(|| "/root".into()));
        let local_user = var("USER").or_else(|| var("LOGNAME"));
        UserSsh {
            config: std::fs::read_to_string(home.join(".ssh/config")).unwrap_or_default(),
            known_hosts: home.join(".ssh/known_hosts"),
            local_user: local_user.map_or("root".into(), |u| u.to_string_lossy().into_owned()),
            agent: var("SSH_AUTH_SOCK").map(PathBuf::from),
            home,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JumpError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot connect to {host}: {message}: is it up, and is the uri right?")]
    Connect { host: String, message: String },
    #[error("{host} is not in {file}: ssh to it once with `ssh {login}` to record its host key")]
    UnknownHost {
        host: String,
        file: String,
        login: String,
    },
    #[error(
        "the host key of {host} is not the one in {file} line {line}: if the host was reinstalled, `ssh-keygen -R {host}` and `ssh {login}` once"
    )]
    ChangedKey {
        host: String,
        file: String,
        line: usize,
        login: String,
    },
    #[error("cannot check the host key of {host} in {file}: {message}")]
    KnownHosts {
        host: String,
        file: String,
        message: String,
    },
    #[error(
        "login as {user} to {host} refused (tried: {tried}): add your key to its authorized_keys or load it with `ssh-add`"
    )]
    Auth {
        host: String,
        user: String,
        tried: String,
    },
    #[error("the sshd of {host} forbids tcp forwarding: set `AllowTcpForwarding yes` there")]
    Forwarding { host: String },
    #[error("more than {MAX_HOPS} ProxyJump hops to {host}: is there a loop in the ssh config?")]
    TooManyHops { host: String },
}

impl JumpError {
    /// Which failure this is, in the words of the guest seam.
    pub fn kind(&self) -> JumpKind {
        match self {
            JumpError::Config(_) => JumpKind::Config,
            JumpError::Connect { .. } => JumpKind::Connect,
            JumpError::UnknownHost { .. } => JumpKind::UnknownHost,
            JumpError::ChangedKey { line, .. } => JumpKind::ChangedKey { line: *line },
            JumpError::KnownHosts { .. } => JumpKind::KnownHosts,
            JumpError::Auth { .. } => JumpKind::Auth,
            JumpError::Forwarding { .. } => JumpKind::Forwarding,
            JumpError::TooManyHops { .. } => JumpKind::TooManyHops,
        }
    }

    /// The host (or hop) the failure concerns; empty for a config error.
    pub fn host(&self) -> &str {
        match self {
            JumpError::Config(_) => "",
            JumpError::Connect { host, .. }
            | JumpError::UnknownHost { host, .. }
            | JumpError::ChangedKey { host, .. }
            | JumpError::KnownHosts { host, .. }
            | JumpError::Auth { host, .. }
            | JumpError::Forwarding { host }
            | JumpError::TooManyHops { host } => host,
        }
    }

    /// The guest error of `node` reached through the failed host: [`GuestError::Jump`] with
    /// this error's host, text and kind.
    pub fn for_node(&self, node: &str) -> GuestError {
        GuestError::Jump {
            node: node.to_string(),
            host: self.host().to_string(),
            message: self.to_string(),
            kind: self.kind(),
        }
    }
}

/// A logged-in session to the libvirt host, shared by the nodes of one operation.
pub struct Jump {
    dest: Destination,
    user: UserSsh,
    session: tokio::sync::Mutex<Option<Arc<Chain>>>,
}

impl fmt::Debug for Jump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jump").field("dest", &self.dest).finish()
    }
}

/// The session to a host and the sessions of the hops it goes through (kept open with it).
struct Chain {
    session: Handle<KnownHost>,
    /// Kept open: the session runs over them.
    hops: Vec<Handle<KnownHost>>,
}

/// Why a channel through the jump did not open: the host was not reached (final), or the host
/// could not connect to the address (the node may not be up yet).
#[derive(Debug)]
pub(super) enum Through {
    Host(JumpError),
    Refused(String),
}

impl Jump {
    /// A jump to `dest` (not connected yet) with the user's ssh settings.
    pub fn new(dest: Destination, user: UserSsh) -> Jump {
        Jump {
            dest,
            user,
            session: tokio::sync::Mutex::new(None),
        }
    }

    /// The host, as `ssh -J` takes it.
    pub fn destination(&self) -> &Destination {
        &self.dest
    }

    /// A TCP connection the host opens to `addr`, each step bounded by `limit`; the session
    /// is connected first when there is none (or it died). Only connecting holds the lock:
    /// the nodes' channels open side by side.
    pub(super) async fn connect_tcp(
        &self,
        addr: SocketAddr,
        limit: Duration,
    ) -> Result<Linked, Through> {
        let chain = self.chain(limit).await.map_err(Through::Host)?;
        let (ip, port) = (addr.ip().to_string(), u32::from(addr.port()));
        let open = chain
            .session
            .channel_open_direct_tcpip(ip, port, "127.0.0.1", 0);
        match tokio::time::timeout(limit, open).await {
            Ok(Ok(channel)) => Ok(Linked::new(channel.into_stream(), chain)),
            Ok(Err(russh::Error::ChannelOpenFailure(F::AdministrativelyProhibited))) => {
                let host = self.dest.to_string();
                Err(Through::Host(JumpError::Forwarding { host }))
            }
            Ok(Err(e)) => {
                if !matches!(e, russh::Error::ChannelOpenFailure(_)) {
                    // The session broke: the next attempt connects again.
                    let mut held = self.session.lock().await;
                    if held.as_ref().is_some_and(|c| Arc::ptr_eq(c, &chain)) {
                        *held = None;
                    }
                }
                Err(Through::Refused(refusal(&self.dest, e)))
            }
            Err(_) => Err(Through::Refused(format!(
                "{} did not open a channel within {}s",
                self.dest,
                limit.as_secs_f64().ceil()
            ))),
        }
    }

    /// The open session, connected now when there is none or it closed.
    async fn chain(&self, limit: Duration) -> Result<Arc<Chain>, JumpError> {
        let mut held = self.session.lock().await;
        if let Some(chain) = held.as_ref().filter(|c| !c.session.is_closed()) {
            return Ok(chain.clone());
        }
        let user = &self.user;
        let spec = config::resolve(&self.dest, &user.config, &user.home, &user.local_user)?;
        let chain = Arc::new(connect(spec, user, limit, 0).await?);
        *held = Some(chain.clone());
        Ok(chain)
    }
}

/// What a direct-tcpip refusal of the host means for the node behind it.
fn refusal(host: &Destination, e: russh::Error) -> String {
    match e {
        russh::Error::ChannelOpenFailure(F::ConnectFailed) => {
            format!("{host} could not connect to it: is the node up?")
        }
        russh::Error::ChannelOpenFailure(F::AdministrativelyProhibited) => {
            format!("the sshd of {host} forbids tcp forwarding (AllowTcpForwarding)")
        }
        other => format!("through {host}: {other}"),
    }
}

/// Connects to `spec` (through its `ProxyJump` hops, each resolved with the config as
/// OpenSSH does) and logs in.
fn connect<'a>(
    spec: HostSpec,
    user: &'a UserSsh,
    limit: Duration,
    depth: usize,
) -> BoxFuture<'a, Result<Chain, JumpError>> {
    Box::pin(async move {
        let host = format!("{}:{}", spec.hostname, spec.port);
        let (stream, hops): (Box<dyn Stream>, _) = match spec.proxy_jump.split_last() {
            None => {
                let tcp = tokio::net::TcpStream::connect((spec.hostname.as_str(), spec.port));
                (
                    Box::new(within(limit, &host, tcp, |e| e.to_string()).await?),
                    vec![],
                )
            }
            Some(_) if depth >= MAX_HOPS => return Err(JumpError::TooManyHops { host }),
            Some((last, before)) => {
                let mut hop = config::resolve(last, &user.config, &user.home, &user.local_user)?;
                if !before.is_empty() {
                    hop.proxy_jump = before.to_vec();
                }
                let Chain { session, mut hops } = connect(hop, user, limit, depth + 1).await?;
                let port = u32::from(spec.port);
                let open = session.channel_open_direct_tcpip(&spec.hostname, port, "127.0.0.1", 0);
                let channel = within(limit, &host, open, |e| refusal(last, e)).await?;
                hops.push(session);
                (Box::new(channel.into_stream()), hops)
            }
        };
        let login = async {
            let session = handshake(&spec, user, stream).await?;
            log_in(session, &spec, user).await
        };
        let timed_out = |_| JumpError::Connect {
            host: host.clone(),
            message: format!("no login within {}s", limit.as_secs_f64().ceil()),
        };
        let session = tokio::time::timeout(limit, login)
            .await
            .map_err(timed_out)??;
        Ok(Chain { session, hops })
    })
}

/// A byte stream an SSH session runs over: TCP, or a channel through the previous hop.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}

/// `future` within `limit`; its error (said by `why`) or its expiry a [`JumpError::Connect`].
async fn within<T, E>(
    limit: Duration,
    host: &str,
    future: impl std::future::Future<Output = Result<T, E>>,
    why: impl FnOnce(E) -> String,
) -> Result<T, JumpError> {
    let error = |message| JumpError::Connect {
        host: host.to_string(),
        message,
    };
    match tokio::time::timeout(limit, future).await {
        Ok(result) => result.map_err(|e| error(why(e))),
        Err(_) => Err(error(format!(
            "no answer within {}s",
            limit.as_secs_f64().ceil()
        ))),
    }
}

/// The SSH handshake, the host key checked against the user's known_hosts.
async fn handshake(
    spec: &HostSpec,
    user: &UserSsh,
    stream: Box<dyn Stream>,
) -> Result<Handle<KnownHost>, JumpError> {
    let verdict = Arc::new(Mutex::new(None));
    let handler = KnownHost {
        spec: spec.clone(),
        file: user.known_hosts.clone(),
        verdict: verdict.clone(),
    };
    let connected = client::connect_stream(client_config(), stream, handler).await;
    if let Some(refused) = verdict.lock().expect("not poisoned").take() {
        return Err(refused);
    }
    connected.map_err(|e| JumpError::Connect {
        host: format!("{}:{}", spec.hostname, spec.port),
        message: format!("ssh handshake failed: {e}"),
    })
}
