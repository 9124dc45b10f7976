//! `lab verify`: the guide's result proven from another node (compute1), not from the
//! controller itself. Each check is data: where it runs, what it proves, and its probe: a
//! script whose stdout is the measurement and whose exit status is the verdict, or a network
//! conversation `lab` itself holds over a TCP connection the node opens
//! ([`crate::guest::Guest::connect_tcp`], see [`super::wire`]): nothing is interpreted on the
//! guest, so the same checks hold on CentOS 7 (Python 2.7, MariaDB 10.1) and Debian 12.

use std::fmt;
use std::time::Duration;

use super::wire::{self, AmqpLogin, MysqlHello};
use crate::guest::{FileWrite, Guest, GuestError};
use crate::model::{Lab, Role};
use crate::progress::{CheckEvent, Progress, Verdict};

use super::batch;
mod checks;
pub mod judge;

pub use checks::checks;
use judge::{Judge, Judged};

/// One check of the lab's services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The provisioning step whose result it proves.
    pub step: &'static str,
    pub name: &'static str,
    /// The role of the node it runs on (whose TCP connections a network probe uses).
    pub on: Role,
    /// What a pass proves.
    pub proves: String,
    pub probe: Probe,
    /// Retried until it passes for this long (services that settle, like chrony).
    pub settle: Duration,
    /// What the guide says to do when it fails (a judged probe says it more precisely).
    pub hint: String,
    /// Secrets the probe reads on the node (uploaded to the secrets directory first).
    pub secrets: Vec<&'static str>,
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
    /// Run on the node: its output is read by `lab` ([`Judge`]).
    Facts { script: String, judge: Judge },
    /// The user's rights on `vhost`, over AMQP: a queue declared (configure), a message
    /// published (write) and got back (read); the password is RABBIT_PASS.
    AmqpRights {
        host: String,
        user: &'static str,
        vhost: String,
    },
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

    /// Logs in from the node: the verdict and what the broker said; a broker that does not
    /// answer is said as such (the check's own hint is about the login).
    async fn measure<G: Guest>(
        &self,
        guest: &G,
        secrets: &crate::secrets::LabSecrets,
    ) -> Result<Judged, GuestError> {
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
        let (passed, measured) = match login {
            Ok(AmqpLogin::Accepted) => (
                self.accepted,
                format!("amqp login as {user} on {at} accepted (connection.tune)"),
            ),
            Ok(AmqpLogin::Refused(why)) => (
                !self.accepted,
                format!("amqp login as {user} on {at} refused ({why})"),
            ),
            Err(e) => {
                return Ok(Judged {
                    passed: false,
                    measured: format!("no amqp broker answered: {e}"),
                    hint: Some(judge::no_broker(&at)),
                });
            }
        };
        Ok(Judged {
            passed,
            measured,
            hint: None,
        })
    }
}

/// The AMQP port.
const AMQP_PORT: u16 = 5672;
/// The memcached port.
pub const MEMCACHED_PORT: u16 = 11211;
/// The MySQL port.
const MYSQL_PORT: u16 = 3306;
/// How long one network conversation may take: an AMQP session declares, publishes and gets,
/// and a broker on a starved TCG vCPU (four guests on two cores) took over 10 s in CI.
const NET_TIMEOUT: Duration = Duration::from_secs(30);

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
            Probe::Facts { script, judge } => write!(f, "{script}\n# read by lab: {judge:?}"),
            Probe::AmqpRights { host, user, vhost } => write!(
                f,
                "tcp {host}:{AMQP_PORT} from the node: amqp 0-9-1 as {user} / secret RABBIT_PASS on vhost {vhost}: queue.declare, basic.publish, basic.get"
            ),
        }
    }
}

/// The result of one check: pass or fail, and what it measured (its output).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckResult {
    pub step: &'static str,
    pub name: &'static str,
    pub node: String,
    pub proves: String,
    pub passed: bool,
    /// The check's output: the figures it saw.
    pub measured: String,
    /// On a failure: what is missing, and which file or command of the guide sets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    pub seconds: f64,
}

/// Which checks a run makes: all, or those of the named steps (each with the steps that
/// finish it: `mq` takes `mq-user`'s too, see [`crate::provision::with_parts`]).
pub fn select(lab: &Lab, steps: &[String]) -> Result<Vec<Check>, crate::provision::UnknownStep> {
    let all = checks(lab);
    if steps.is_empty() {
        return Ok(all);
    }
    let mut wanted = Vec::new();
    for name in steps {
        crate::provision::require_step(lab, name)?;
        wanted.extend(crate::provision::with_parts(lab, name));
    }
    Ok(all
        .into_iter()
        .filter(|c| wanted.contains(&c.step))
        .collect())
}

/// Runs `checks` on a node of each one's role (the first such node), all at once (each is a
/// read on its own channel: none changes what another sees), retrying settling checks. The
/// secrets they read are written first (a batch's on its channel, before it runs). Results
/// in the order of `checks`; the first SSH failure writing a secret alone is the error.
pub async fn run<G: Guest>(
    lab: &Lab,
    checks: &[Check],
    guests: &[G],
    secrets: &crate::secrets::LabSecrets,
    progress: &dyn Progress,
) -> Result<Vec<CheckResult>, GuestError> {
    let placed: Vec<(&Check, &G)> = checks
        .iter()
        .filter_map(|check| {
            let node = lab.nodes.iter().find(|n| n.role == check.on)?;
            let guest = guests.iter().find(|g| g.node() == node.name)?;
            Some((check, guest))
        })
        .collect();
    // A node's quick reads run as one batch (one SSH session, the secrets they read sent
    // with it); the others (a conversation held by `lab`, a check that settles, the
    // client's seconds-long start) each on its own, their secrets written first.
    let batched = |c: &Check| {
        c.settle.is_zero()
            && match &c.probe {
                Probe::Facts { .. } => true,
                Probe::Script(s) => !s.starts_with("openstack "),
                _ => false,
            }
    };
    let alone: Vec<(&Check, &G)> = placed
        .iter()
        .filter(|(c, _)| !batched(c))
        .copied()
        .collect();
    upload_secrets(&alone, guests, secrets).await?;
    let mut runs = Vec::new();
    for guest in guests {
        let mine: Vec<(usize, &Check)> = placed
            .iter()
            .enumerate()
            .filter(|(_, (c, g))| g.node() == guest.node() && batched(c))
            .map(|(i, (c, _))| (i, *c))
            .collect();
        if !mine.is_empty() {
            runs.push(futures::future::Either::Left(run_batch(
                mine, guest, secrets, progress,
            )));
        }
    }
    for (i, (check, guest)) in placed.iter().enumerate() {
        if !batched(check) {
            runs.push(futures::future::Either::Right(async move {
                vec![(i, run_one(check, *guest, secrets, progress).await)]
            }));
        }
    }
    let mut results: Vec<(usize, Result<CheckResult, GuestError>)> =
        futures::future::join_all(runs)
            .await
            .into_iter()
            .flatten()
            .collect();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Writes each secret the checks read to the secrets directory of their node, once.
async fn upload_secrets<G: Guest>(
    placed: &[(&Check, &G)],
    guests: &[G],
    secrets: &crate::secrets::LabSecrets,
) -> Result<(), GuestError> {
    for guest in guests {
        let mine = placed
            .iter()
            .filter(|(_, g)| g.node() == guest.node())
            .map(|(c, _)| *c);
        for (path, content) in secret_files(mine, secrets) {
            guest.write_file(&path, 0o600, content).await?;
        }
    }
    Ok(())
}

/// A node's quick reads in one session ([`batch`]), the secrets they read written on its
/// channel first: each reported running at the start and judged from its share of the output.
async fn run_batch<G: Guest>(
    checks: Vec<(usize, &Check)>,
    guest: &G,
    secrets: &crate::secrets::LabSecrets,
    progress: &dyn Progress,
) -> Vec<(usize, Result<CheckResult, GuestError>)> {
    let start = std::time::Instant::now();
    for (_, check) in &checks {
        progress.event(event(guest, check, Verdict::Running, start).into());
    }
    let scripts: Vec<&str> = checks
        .iter()
        .map(|(_, c)| match &c.probe {
            Probe::Facts { script, .. } | Probe::Script(script) => script.as_str(),
            _ => unreachable!("only scripts are batched"),
        })
        .collect();
    let secret_files = secret_files(checks.iter().map(|(_, c)| *c), secrets);
    let files: Vec<FileWrite> = secret_files
        .iter()
        .map(|(path, content)| FileWrite {
            path,
            mode: 0o600,
            content,
        })
        .collect();
    let out = guest.run_with_files(&files, &batch::script(&scripts)).await;
    let outputs = match &out {
        Ok(out) => batch::split(&format!("{}{}", out.stdout, out.stderr), scripts.len()),
        Err(_) => vec![None; scripts.len()],
    };
    checks
        .into_iter()
        .zip(outputs)
        .map(|((i, check), output)| {
            let judged = match (&out, output) {
                (Err(e), _) => Err(e.clone()),
                (Ok(_), Some((text, status))) => Ok(match &check.probe {
                    Probe::Facts { judge, .. } => judge.judge(&text, status),
                    _ => Judged {
                        passed: status == 0,
                        measured: text.trim().to_string(),
                        hint: None,
                    },
                }),
                (Ok(out), None) => Ok(Judged {
                    passed: false,
                    measured: format!(
                        "the checks' session ended before this one (status {}): {}",
                        out.status,
                        out.tail(3)
                    ),
                    hint: None,
                }),
            };
            (i, finish(check, guest, judged, start, progress))
        })
        .collect()
}

/// The secrets `checks` read, each once: its path on the node and its value.
fn secret_files<'a>(
    checks: impl Iterator<Item = &'a Check>,
    secrets: &'a crate::secrets::LabSecrets,
) -> Vec<(String, &'a [u8])> {
    let mut names: Vec<&str> = checks.flat_map(|c| c.secrets.iter().copied()).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|n| {
            let path = crate::provision::step::secret_path(n);
            (path, secrets.password(n).as_bytes())
        })
        .collect()
}

/// A check's progress event.
fn event<G: Guest>(
    guest: &G,
    check: &Check,
    verdict: Verdict,
    start: std::time::Instant,
) -> CheckEvent {
    CheckEvent {
        node: guest.node().to_string(),
        check: check.name,
        verdict,
        elapsed: start.elapsed(),
    }
}

/// One check on its node, reported as it starts and ends.
async fn run_one<G: Guest>(
    check: &Check,
    guest: &G,
    secrets: &crate::secrets::LabSecrets,
    progress: &dyn Progress,
) -> Result<CheckResult, GuestError> {
    let start = std::time::Instant::now();
    progress.event(event(guest, check, Verdict::Running, start).into());
    let measured = settled(guest, check, secrets).await;
    finish(check, guest, measured, start, progress)
}

/// The result of a check from its measurement (its own hint when the judge gave none),
/// reported.
fn finish<G: Guest>(
    check: &Check,
    guest: &G,
    measured: Result<Judged, GuestError>,
    start: std::time::Instant,
    progress: &dyn Progress,
) -> Result<CheckResult, GuestError> {
    let verdict = match &measured {
        Ok(j) if j.passed => Verdict::Pass,
        _ => Verdict::Fail,
    };
    progress.event(event(guest, check, verdict, start).into());
    let judged = measured?;
    let hint = match judged.hint {
        Some(h) => Some(h),
        None if !judged.passed && !check.hint.is_empty() => Some(check.hint.clone()),
        None => None,
    };
    Ok(CheckResult {
        step: check.step,
        name: check.name,
        node: guest.node().to_string(),
        proves: check.proves.clone(),
        passed: judged.passed,
        measured: judged.measured,
        hint,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Measures until the check passes or its settle time is over.
async fn settled<G: Guest>(
    guest: &G,
    check: &Check,
    secrets: &crate::secrets::LabSecrets,
) -> Result<Judged, GuestError> {
    let start = std::time::Instant::now();
    loop {
        let judged = measure(guest, &check.probe, secrets).await?;
        if judged.passed || start.elapsed() >= check.settle {
            return Ok(judged);
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
) -> Result<Judged, GuestError> {
    let plain = |(passed, measured): (bool, String)| Judged {
        passed,
        measured,
        hint: None,
    };
    Ok(match probe {
        Probe::Facts { script, judge } => {
            let out = guest.run(script).await?;
            judge.judge(&format!("{}{}", out.stdout, out.stderr), out.status)
        }
        Probe::AmqpRights { host, user, vhost } => {
            rights(guest, host, user, vhost, secrets.password("RABBIT_PASS")).await?
        }
        Probe::Amqp(a) => a.measure(guest, secrets).await?,
        other => plain(measure_plain(guest, other).await?),
    })
}

/// The probes whose verdict is their own (the check's hint applies when they fail).
async fn measure_plain<G: Guest>(guest: &G, probe: &Probe) -> Result<(bool, String), GuestError> {
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
        Probe::Facts { .. } | Probe::AmqpRights { .. } | Probe::Amqp(_) => {
            unreachable!("judged in measure")
        }
    })
}

/// The user's rights on `vhost` over AMQP from the node, judged.
pub(crate) async fn rights<G: Guest>(
    guest: &G,
    host: &str,
    user: &str,
    vhost: &str,
    password: &str,
) -> Result<Judged, GuestError> {
    let at = format!("{host}:{AMQP_PORT}");
    let access = match open(guest, host, AMQP_PORT).await? {
        Err(e) => Err(e),
        Ok(mut s) => {
            within(
                &at,
                crate::provision::amqp::amqp_access(&mut s, user, password, vhost),
            )
            .await
        }
    };
    Ok(judge::amqp_rights(user, vhost, &at, access))
}
