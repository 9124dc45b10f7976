//! Reaching a node: the TCP connection (from inside a network namespace when the target has
//! one, through the libvirt host's sshd when it has a jump), the russh handshake that accepts only the pinned host key, the public-key login, and
//! direct-tcpip channels (a TCP connection the node opens for `lab`).

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sched::{CloneFlags, setns};
use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{Channel, ChannelOpenFailure};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::exec::{bounded, channel_error};
use super::jump::Through;
use super::{Target, Timeouts};
use crate::guest::GuestError;

/// Where network namespaces created by `ip netns add` are bound.
const NETNS_DIR: &str = "/var/run/netns";

/// A logged-in russh session.
pub(super) type Session = Handle<Pinned>;

/// The russh handler: accepts exactly the pinned host key and records any other one.
pub(super) struct Pinned {
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
pub(super) struct Keys {
    user: Arc<PrivateKey>,
    host: PublicKey,
}

pub(super) fn parse_keys(t: &Target) -> Result<Keys, GuestError> {
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

/// Runs on its own thread: setns(2) into the namespace at `path` (only this thread changes
/// namespace, and it ends right after), then a bounded connect.
fn connect_from_netns(
    path: &Path,
    addr: SocketAddr,
    limit: Duration,
) -> std::io::Result<std::net::TcpStream> {
    let ns = std::fs::File::open(path)?;
    setns(&ns, CloneFlags::CLONE_NEWNET)?;
    std::net::TcpStream::connect_timeout(&addr, limit)
}

/// TCP, SSH handshake against the pinned key, public-key login: each bounded by
/// `timeouts.connect`.
pub(super) async fn open_session(
    t: &Target,
    keys: &Keys,
    timeouts: &Timeouts,
) -> Result<Session, GuestError> {
    let what = format!("ssh login to {}", t.addr);
    let Some(jump) = &t.via else {
        let stream = open_tcp(t, timeouts.connect).await?;
        return bounded(&t.node, &what, timeouts.connect, handshake(t, keys, stream)).await;
    };
    let stream = match jump.connect_tcp(t.addr, timeouts.connect).await {
        Ok(stream) => stream,
        Err(Through::Host(cause)) => return Err(cause.for_node(&t.node)),
        Err(Through::Refused(message)) => return Err(connect_error(t, message)),
    };
    bounded(&t.node, &what, timeouts.connect, handshake(t, keys, stream)).await
}

/// Seconds between keepalives, and how many may go unanswered: a session whose peer went
/// silent ends about 75 s later.
const KEEPALIVE: (u64, usize) = (15, 4);

/// The russh client settings of every session: no Nagle, a keepalive every 15 s, four missed
/// ones end it. The keepalives are counted between writes; a write the link never takes (the
/// socket's buffer full on a cut link, or a jump's channel out of window) would stall the
/// session before its next count, so a session with nothing received and nothing sent for
/// 90 s ends too (russh's inactivity bound, which also bounds each write). A live peer
/// answers every keepalive, so a quiet command keeps its session.
pub(super) fn client_config() -> Arc<client::Config> {
    let (every, max) = KEEPALIVE;
    Arc::new(client::Config {
        nodelay: true,
        keepalive_interval: Some(Duration::from_secs(every)),
        keepalive_max: max,
        inactivity_timeout: Some(Duration::from_secs(every * (max as u64 + 2))),
        ..Default::default()
    })
}

async fn handshake(
    t: &Target,
    keys: &Keys,
    stream: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
) -> Result<Session, GuestError> {
    let refused = Arc::new(Mutex::new(None));
    let handler = Pinned {
        want: keys.host.clone(),
        refused: refused.clone(),
    };
    let connected = client::connect_stream(client_config(), stream, handler).await;
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

/// A direct-tcpip channel: the node's sshd connects to `host:port` for us.
pub(super) async fn direct_tcpip(
    session: &Session,
    node: &str,
    host: &str,
    port: u16,
) -> Result<Channel<client::Msg>, GuestError> {
    session
        .channel_open_direct_tcpip(host, u32::from(port), "127.0.0.1", 0)
        .await
        .map_err(|e| tcp_error(node, &format!("{host}:{port}"), e))
}

/// A direct-tcpip channel the node's sshd could not open: the connection it tried failed
/// (refused, unreachable, unknown name), or forwarding is off.
fn tcp_error(node: &str, to: &str, e: russh::Error) -> GuestError {
    use ChannelOpenFailure as F;
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
