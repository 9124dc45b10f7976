//! `lab verify`: the guide's result proven from another node (compute1), not from the
//! controller itself. Each check is data: where it runs, what it proves, and its probe: a
//! script whose stdout is the measurement and whose exit status is the verdict, or a network
//! conversation `lab` itself holds over a TCP connection the node opens
//! ([`crate::guest::Guest::connect_tcp`], see [`super::wire`]): nothing is interpreted on the
//! guest, so the same checks hold on CentOS 7 (Python 2.7, MariaDB 10.1) and Debian 12.

use std::fmt;
use std::time::Duration;

use super::wire::{self, AmqpLogin, MysqlHello};
use crate::guest::{Guest, GuestError};
use crate::model::{Lab, Role};
use crate::progress::{CheckEvent, Progress, Verdict};

mod checks;

pub use checks::checks;

/// One check of the lab's services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    /// The role of the node it runs on (whose TCP connections a network probe uses).
    pub on: Role,
    /// What a pass proves.
    pub proves: String,
    pub probe: Probe,
    /// Retried until it passes for this long (services that settle, like chrony).
    pub settle: Duration,
}

/// A password a probe logs in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// One of the lab's generated secrets, by name; read in `lab`, never sent to a shell.
    Secret(&'static str),
    /// A fixed wrong password, to prove the broker refuses one.
    Wrong(&'static str),
}

/// How a check measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Run on the node: stdout is the measurement, the exit status the verdict.
    Script(String),
    /// The node reaches a MySQL server on `host:port` (a greeting, or the server's refusal of
    /// a host with no account yet: it answered).
    MysqlAnswers { host: String, port: u16 },
    /// The node reaches `host:open` but no TCP connection to `host:port` opens.
    Closed { host: String, port: u16, open: u16 },
    /// An AMQP 0-9-1 PLAIN login.
    Amqp(Amqp),
    /// memcached on `host:11211` answers `stats` with its pid.
    MemcachedStats { host: String },
}

/// An AMQP 0-9-1 PLAIN login on `host:5672`: a pass when the outcome is `accepted` (a broker
/// that does not answer fails either way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amqp {
    pub host: String,
    pub user: &'static str,
    pub password: Password,
    pub accepted: bool,
}

impl Amqp {
    fn verdict(&self) -> &'static str {
        if self.accepted { "accepted" } else { "refused" }
    }

    /// Logs in from the node: the verdict and what the broker said.
    async fn measure<G: Guest>(
        &self,
        guest: &G,
        secrets: &crate::secrets::LabSecrets,
    ) -> Result<(bool, String), GuestError> {
        let (host, user) = (&self.host, self.user);
        let pw = match &self.password {
            Password::Secret(name) => secrets.password(name).to_string(),
            Password::Wrong(p) => p.to_string(),
        };
        let at = format!("{host}:{AMQP_PORT}");
        let login = match open(guest, host, AMQP_PORT).await? {
            Err(e) => Err(e),
            Ok(mut s) => within(&at, wire::amqp_login(&mut s, user, &pw)).await,
        };
        Ok(match login {
            Ok(AmqpLogin::Accepted) => (
                self.accepted,
                format!("amqp login as {user} on {at} accepted (connection.tune)"),
            ),
            Ok(AmqpLogin::Refused(why)) => (
                !self.accepted,
                format!("amqp login as {user} on {at} refused ({why})"),
            ),
            Err(e) => (false, format!("no amqp broker answered: {e}")),
        })
    }
}

/// The AMQP port.
const AMQP_PORT: u16 = 5672;
/// The memcached port.
const MEMCACHED_PORT: u16 = 11211;
/// The MySQL port.
const MYSQL_PORT: u16 = 3306;
/// How long one network conversation may take.
const NET_TIMEOUT: Duration = Duration::from_secs(10);

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Script(script) => write!(f, "{script}"),
            Probe::MysqlAnswers { host, port } => {
                write!(f, "tcp {host}:{port} from the node: mysql greeting")
            }
            Probe::Closed { host, port, open } => write!(
                f,
                "tcp {host}:{open} from the node opens, tcp {host}:{port} does not"
            ),
            Probe::Amqp(a) => {
                let password = match &a.password {
                    Password::Secret(name) => format!("secret {name}"),
                    Password::Wrong(p) => format!("{p:?}"),
                };
                write!(
                    f,
                    "tcp {}:{AMQP_PORT} from the node: amqp 0-9-1 plain login {} / {password} {}",
                    a.host,
                    a.user,
                    a.verdict()
                )
            }
            Probe::MemcachedStats { host } => {
                write!(
                    f,
                    "tcp {host}:{MEMCACHED_PORT} from the node: memcached stats"
                )
            }
        }
    }
}

/// The result of one check: pass or fail, and what it measured (its output).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    pub node: String,
    pub proves: String,
    pub passed: bool,
    /// The check's output: the figures it saw.
    pub measured: String,
    pub seconds: f64,
}

/// Runs every check on a node of its role (the first such node), all at once (each is a
/// read on its own channel: none changes what another sees), retrying settling checks.
/// Results in the order of [`checks`]; the first SSH failure is the error.
pub async fn run<G: Guest>(
    lab: &Lab,
    guests: &[G],
    secrets: &crate::secrets::LabSecrets,
    progress: &dyn Progress,
) -> Result<Vec<CheckResult>, GuestError> {
    let placed: Vec<(Check, &G)> = checks(lab)
        .into_iter()
        .filter_map(|check| {
            let node = lab.nodes.iter().find(|n| n.role == check.on)?;
            let guest = guests.iter().find(|g| g.node() == node.name)?;
            Some((check, guest))
        })
        .collect();
    let runs = placed
        .iter()
        .map(|(check, guest)| run_one(check, *guest, secrets, progress));
    futures::future::join_all(runs).await.into_iter().collect()
}

/// One check on its node, reported as it starts and ends.
async fn run_one<G: Guest>(
    check: &Check,
    guest: &G,
    secrets: &crate::secrets::LabSecrets,
    progress: &dyn Progress,
) -> Result<CheckResult, GuestError> {
    let start = std::time::Instant::now();
    let event = |verdict| CheckEvent {
        node: guest.node().to_string(),
        check: check.name,
        verdict,
        elapsed: start.elapsed(),
    };
    progress.event(event(Verdict::Running).into());
    let measured = settled(guest, check, secrets).await;
    let verdict = match &measured {
        Ok((true, _)) => Verdict::Pass,
        _ => Verdict::Fail,
    };
    progress.event(event(verdict).into());
    let (passed, measured) = measured?;
    Ok(CheckResult {
        name: check.name,
        node: guest.node().to_string(),
        proves: check.proves.clone(),
        passed,
        measured,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Measures until the check passes or its settle time is over.
async fn settled<G: Guest>(
    guest: &G,
    check: &Check,
    secrets: &crate::secrets::LabSecrets,
) -> Result<(bool, String), GuestError> {
    let start = std::time::Instant::now();
    loop {
        let (passed, measured) = measure(guest, &check.probe, secrets).await?;
        if passed || start.elapsed() >= check.settle {
            return Ok((passed, measured));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Opens `host:port` from the node: the stream, or why the node could not (a failed
/// measurement); an SSH failure is an error.
async fn open<G: Guest>(
    guest: &G,
    host: &str,
    port: u16,
) -> Result<Result<G::Tcp, String>, GuestError> {
    match guest.connect_tcp(host, port).await {
        Ok(s) => Ok(Ok(s)),
        Err(e @ GuestError::Tcp { .. }) => Ok(Err(e.to_string())),
        Err(e) => Err(e),
    }
}

/// A conversation bounded by [`NET_TIMEOUT`]; what went wrong as text.
async fn within<T>(
    what: &str,
    talk: impl std::future::Future<Output = Result<T, wire::WireError>>,
) -> Result<T, String> {
    match tokio::time::timeout(NET_TIMEOUT, talk).await {
        Ok(r) => r.map_err(|e| format!("{what}: {e}")),
        Err(_) => Err(format!(
            "{what}: no answer within {}s",
            NET_TIMEOUT.as_secs()
        )),
    }
}

/// Runs one probe: the verdict and what it saw. A connection the node cannot open or a
/// conversation that goes wrong is a failed measurement; an SSH failure is an error.
pub async fn measure<G: Guest>(
    guest: &G,
    probe: &Probe,
    secrets: &crate::secrets::LabSecrets,
) -> Result<(bool, String), GuestError> {
    Ok(match probe {
        Probe::Script(script) => {
            let out = guest.run(script).await?;
            let measured = format!("{}{}", out.stdout, out.stderr).trim().to_string();
            (out.success(), measured)
        }
        Probe::MysqlAnswers { host, port } => {
            let mut s = match open(guest, host, *port).await? {
                Ok(s) => s,
                Err(e) => return Ok((false, e)),
            };
            match within(&format!("{host}:{port}"), wire::mysql_hello(&mut s)).await {
                Ok(MysqlHello::Greeting { version }) => (true, format!("greeting: {version}")),
                Ok(MysqlHello::Refused { code, message }) => {
                    (true, format!("answered with error {code}: {message}"))
                }
                Err(e) => (false, e),
            }
        }
        Probe::Closed {
            host,
            port,
            open: reach,
        } => {
            match (
                open(guest, host, *reach).await?,
                open(guest, host, *port).await?,
            ) {
                (Err(e), _) => (false, format!("cannot prove it: {e}")),
                (Ok(_), Ok(_)) => (false, format!("{host}:{port} accepts connections")),
                (Ok(_), Err(e)) => (true, format!("{host}:{reach} open; {e}")),
            }
        }
        Probe::Amqp(a) => a.measure(guest, secrets).await?,
        Probe::MemcachedStats { host } => {
            let at = format!("{host}:{MEMCACHED_PORT}");
            let stats = match open(guest, host, MEMCACHED_PORT).await? {
                Err(e) => Err(e),
                Ok(mut s) => within(&at, wire::memcached_stats(&mut s)).await,
            };
            match stats {
                Ok(stats) => {
                    let shown: Vec<String> = stats
                        .iter()
                        .filter(|(k, _)| ["pid", "version", "uptime"].contains(&k.as_str()))
                        .map(|(k, v)| format!("STAT {k} {v}"))
                        .collect();
                    (stats.iter().any(|(k, _)| k == "pid"), shown.join("\n"))
                }
                Err(e) => (false, e),
            }
        }
    })
}
