//! The jump host's side of trust: its key checked against the user's known_hosts, and the
//! login with the ssh-agent's keys, then each unencrypted identity file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use russh::client::{self, Handle};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};

use super::config::HostSpec;
use super::{JumpError, UserSsh};

/// The russh handler of a jump session: accepts a host key its known_hosts file records.
pub(super) struct KnownHost {
    pub(super) spec: HostSpec,
    pub(super) file: PathBuf,
    pub(super) verdict: Arc<Mutex<Option<JumpError>>>,
}

impl client::Handler for KnownHost {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let verdict = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => known(&self.spec, &self.file, key),
            PublicKeyOrCertificate::Certificate(_) => Err(JumpError::KnownHosts {
                host: self.spec.hostname.clone(),
                file: self.file.display().to_string(),
                message: "the host offered a certificate, which lab does not check".into(),
            }),
        };
        let accepted = verdict.is_ok();
        *self.verdict.lock().expect("not poisoned") = verdict.err();
        Ok(accepted)
    }
}

/// Whether `file` records `key` for the host (as OpenSSH names it: `host`, or `[host]:port`).
fn known(spec: &HostSpec, file: &Path, key: &PublicKey) -> Result<(), JumpError> {
    let host = spec.hostname.clone();
    let path = file.display().to_string();
    let login = match spec.port {
        22 => format!("{}@{}", spec.user, spec.host),
        port => format!("-p {port} {}@{}", spec.user, spec.host),
    };
    match russh::keys::check_known_hosts_path(&host, spec.port, key, file) {
        Ok(true) => Ok(()),
        Ok(false) => Err(JumpError::UnknownHost {
            host,
            file: path,
            login,
        }),
        Err(russh::keys::Error::KeyChanged { line }) => Err(JumpError::ChangedKey {
            host,
            file: path,
            line,
            login,
        }),
        Err(e) => Err(JumpError::KnownHosts {
            host,
            file: path,
            message: e.to_string(),
        }),
    }
}

/// Logs in as OpenSSH would: each key of the agent, then each identity file that exists and
/// is not encrypted.
pub(super) async fn log_in(
    mut session: Handle<KnownHost>,
    spec: &HostSpec,
    user: &UserSsh,
) -> Result<Handle<KnownHost>, JumpError> {
    let mut tried = Vec::new();
    if let Some(socket) = &user.agent {
        match agent_login(&mut session, spec, socket).await {
            Ok(true) => return Ok(session),
            Ok(false) => tried.push("the agent's keys".to_string()),
            Err(e) => tried.push(format!("no agent at {} ({e})", socket.display())),
        }
    }
    for file in spec.identity_files.iter().filter(|f| f.exists()) {
        let key = match russh::keys::load_secret_key(file, None) {
            Ok(key) => Arc::new(key),
            Err(e) => {
                tried.push(format!("{} skipped ({e})", file.display()));
                continue;
            }
        };
        let hash = rsa_hash(&session, key.public_key()).await;
        let key = PrivateKeyWithHashAlg::new(key, hash);
        let auth = session.authenticate_publickey(&spec.user, key).await;
        if auth.is_ok_and(|a| a.success()) {
            return Ok(session);
        }
        tried.push(file.display().to_string());
    }
    if tried.is_empty() {
        tried.push("no agent, no identity file".into());
    }
    Err(JumpError::Auth {
        host: format!("{}:{}", spec.hostname, spec.port),
        user: spec.user.clone(),
        tried: tried.join(", "),
    })
}

/// Tries each plain key the agent at `socket` holds; whether one logged in.
async fn agent_login(
    session: &mut Handle<KnownHost>,
    spec: &HostSpec,
    socket: &Path,
) -> Result<bool, russh::keys::Error> {
    let mut agent = AgentClient::connect_uds(socket).await?;
    for identity in agent.request_identities().await? {
        let AgentIdentity::PublicKey { key, .. } = identity else {
            continue;
        };
        let hash = rsa_hash(session, &key).await;
        let auth = session
            .authenticate_publickey_with(&spec.user, key, hash, &mut agent)
            .await;
        if auth.is_ok_and(|a| a.success()) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The best signature hash the server takes for an RSA key; `None` for other keys.
async fn rsa_hash(session: &Handle<KnownHost>, key: &PublicKey) -> Option<russh::keys::HashAlg> {
    if !key.algorithm().is_rsa() {
        return None;
    }
    session
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten()
}
