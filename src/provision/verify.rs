//! `lab verify`: the guide's result proven from another node (compute1), not from the
//! controller itself. Each check is data: where it runs, what it proves, a script whose
//! stdout is the measurement and whose exit status is the verdict.

use std::time::Duration;

use super::step::{Upload, quote, secret_path, staged};
use crate::model::{Lab, Role};

/// One check of the lab's services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    /// The role of the node it runs on.
    pub on: Role,
    /// What a pass proves.
    pub proves: String,
    pub script: String,
    /// Secrets the script reads from /root/.lab/secrets.
    pub secrets: Vec<&'static str>,
    /// Files uploaded before the script runs (the AMQP login program).
    pub files: Vec<Upload>,
    /// Retried until it passes for this long (services that settle, like chrony).
    pub settle: Duration,
}

/// An AMQP 0-9-1 login (PLAIN) in Python that runs on Python 2.7 (CentOS 7) and 3:
/// exit 0 when the broker answers Connection.Tune, 1 when it refuses the login, 2 when there
/// is no broker to ask (so a refusal test cannot pass on a dead broker).
const AMQP_LOGIN: &str = r#"import socket, struct, sys
host, user, pw = sys.argv[1], sys.argv[2], open(sys.argv[3]).read() if sys.argv[3].startswith('/') else sys.argv[3]
def frame():
    hdr = b''
    while len(hdr) < 7:
        chunk = s.recv(7 - len(hdr))
        if not chunk:
            return None
        hdr += chunk
    size = struct.unpack('>BHI', hdr)[2]
    body = b''
    while len(body) < size + 1:
        chunk = s.recv(size + 1 - len(body))
        if not chunk:
            return None
        body += chunk
    return struct.unpack('>HH', body[:4])
try:
    s = socket.create_connection((host, 5672), 10)
    s.sendall(b'AMQP\x00\x00\x09\x01')
    start = frame()
except Exception as e:
    start = e
if start != (10, 10):
    print('no amqp broker on %s:5672 (%s)' % (host, start))
    sys.exit(2)
resp = b'\x00' + user.encode() + b'\x00' + pw.encode()
args = struct.pack('>I', 0) + struct.pack('>B', 5) + b'PLAIN' + struct.pack('>I', len(resp)) + resp + struct.pack('>B', 5) + b'en_US'
payload = struct.pack('>HH', 10, 11) + args
s.sendall(struct.pack('>BHI', 1, 0, len(payload)) + payload + b'\xce')
try:
    reply = frame()
except (socket.error, OSError):
    reply = None  # RabbitMQ drops the connection on a failed login
if reply == (10, 30):
    print('amqp login as %s on %s:5672 accepted (connection.tune)' % (user, host))
    sys.exit(0)
print('amqp login as %s on %s:5672 refused (%s)' % (user, host, reply and 'connection.close' or 'connection dropped'))
sys.exit(1)
"#;

/// Where the AMQP login program is uploaded on the node that runs it.
fn amqp_login_path() -> String {
    staged("verify", "amqp-login.py")
}

/// The AMQP login program, uploaded with the checks that run it.
fn amqp_login_file() -> Upload {
    Upload {
        path: amqp_login_path(),
        mode: 0o644,
        content: AMQP_LOGIN.to_string(),
    }
}

/// The AMQP login run with `args`, with whichever Python the node has.
fn python(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| quote(a)).collect();
    format!(
        "py=$(command -v python3 || command -v python)\n\"$py\" {} {}",
        quote(&amqp_login_path()),
        args.join(" ")
    )
}

/// Run by `lab reset` on every node right after its clock was set: chrony drops the samples
/// the revert brought back and measures its sources again; on a node that follows another
/// node of the lab it returns once chrony follows it (exit 1 with `chronyc sources` if not
/// within 60 s). Reads `set_time` and `follow`, set by [`clock_resync`].
pub const CLOCK_RESYNC: &str = include_str!("guest/clock-resync.sh");

/// [`CLOCK_RESYNC`] for one node: `set_time` is the host's time when the guest agent could
/// not set the clock (the script sets it first), `follow` whether the node's chrony follows
/// another node of the lab (compute nodes follow the controller).
pub fn clock_resync(set_time: Option<std::time::SystemTime>, follow: bool) -> String {
    let set_time = set_time.map_or(String::new(), |t| {
        let t = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        format!("@{}.{:09}", t.as_secs(), t.subsec_nanos())
    });
    let follow = if follow { "yes" } else { "no" };
    format!(
        "set_time={}\nfollow={follow}\n{CLOCK_RESYNC}",
        quote(&set_time)
    )
}

/// Whether a node's chrony follows another node of the lab (and so must follow it again
/// after a reset before `lab verify` can pass): the compute nodes follow the controller.
pub fn follows_a_node(role: Role) -> bool {
    role == Role::Compute
}

/// How far a guest clock may be off the host's when `lab reset` returns, in seconds.
pub const MAX_CLOCK_OFFSET: f64 = 0.5;

/// Prints the guest's clock: seconds since the epoch, to the nanosecond.
pub const READ_CLOCK: &str = "date +%s.%N\n";

/// One reading of a guest clock: the host's clock when the command was sent and when its
/// answer came, and the guest's clock in between (seconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockReading {
    pub sent: f64,
    pub guest: f64,
    pub received: f64,
}

impl ClockReading {
    /// The guest's offset from the host, taking the guest's reading at the middle of the
    /// round trip, and the most that can be wrong by (half the round trip).
    pub fn offset(&self) -> (f64, f64) {
        let half = (self.received - self.sent) / 2.0;
        (self.guest - (self.sent + half), half)
    }

    /// Whether the guest clock is more than [`MAX_CLOCK_OFFSET`] off the host's wherever in
    /// the round trip it was read.
    pub fn too_far(&self) -> bool {
        let (offset, half) = self.offset();
        offset.abs() - half > MAX_CLOCK_OFFSET
    }
}

/// The reading of `readings` with the shortest round trip (the tightest bound), if any.
pub fn best_reading(readings: &[ClockReading]) -> Option<ClockReading> {
    readings
        .iter()
        .copied()
        .min_by(|a, b| (a.received - a.sent).total_cmp(&(b.received - b.sent)))
}

/// The guest clock [`READ_CLOCK`] printed, in seconds since the epoch.
pub fn parse_clock(stdout: &str) -> Option<f64> {
    stdout.trim().parse().ok().filter(|t: &f64| t.is_finite())
}

/// The checks of a lab, in the order they are shown.
pub fn checks(lab: &Lab) -> Vec<Check> {
    let c = lab.controller();
    let ip = lab.internal_address(c).to_string();
    let name = c.name.as_str();
    let q = quote(&ip);
    let check = |name, on, proves: String, script: String| Check {
        name,
        on,
        proves,
        script,
        secrets: Vec::new(),
        files: Vec::new(),
        settle: Duration::ZERO,
    };
    let mut rabbit = check(
        "amqp-login",
        Role::Compute,
        format!("RabbitMQ on {name}:5672 accepts user openstack with RABBIT_PASS"),
        python(&[name, "openstack", &secret_path("RABBIT_PASS")]),
    );
    rabbit.secrets.push("RABBIT_PASS");
    rabbit.files.push(amqp_login_file());
    let mut wrong = check(
        "amqp-wrong-password",
        Role::Compute,
        format!("RabbitMQ on {name}:5672 refuses a wrong password"),
        format!(
            "status=0\n{} || status=$?\n[ \"$status\" -eq 1 ]",
            python(&[name, "openstack", "not-the-password"])
        ),
    );
    wrong.files.push(amqp_login_file());
    let mut chrony = check(
        "chrony",
        Role::Compute,
        format!("chrony on the compute node follows {name} ({ip})"),
        format!(
            "chronyc -n tracking | grep -E '^(Reference ID|Stratum|System time)'\nchronyc -n tracking | grep -q \"^Reference ID.*({ip})\""
        ),
    );
    chrony.settle = Duration::from_secs(90);
    vec![
        check(
            "sql-bind",
            Role::Controller,
            format!("MariaDB listens on the internal address {ip} only"),
            format!(
                "v=$(mysql -N -B -e 'SELECT @@bind_address')\necho \"bind_address=$v\"\n[ \"$v\" = {q} ]"
            ),
        ),
        check(
            "sql-remote",
            Role::Compute,
            format!(
                "MariaDB answers on {ip}:3306 from the compute node (a greeting, or its refusal of a host with no account yet)"
            ),
            format!(
                "exec 3<>/dev/tcp/{ip}/3306\ngreeting=$(timeout 5 head -c 64 <&3 | tr -dc '[:print:]')\necho \"greeting: $greeting\"\ncase $greeting in *MariaDB*|*[0-9].[0-9]*|*\"is not allowed to connect\"*) ;; *) exit 1 ;; esac"
            ),
        ),
        rabbit,
        wrong,
        check(
            "memcached",
            Role::Compute,
            format!("memcached answers `stats` on {name}:11211 (by name)"),
            format!(
                "exec 3<>/dev/tcp/{name}/11211\nprintf 'stats\\r\\nquit\\r\\n' >&3\nout=$(timeout 5 cat <&3)\necho \"$out\" | grep -E '^STAT (pid|version|uptime) '\necho \"$out\" | grep -q '^STAT pid '"
            ),
        ),
        chrony,
        check(
            "client-compute",
            Role::Compute,
            "the OpenStack client runs on the compute node".into(),
            "openstack --version 2>&1".into(),
        ),
        check(
            "client-controller",
            Role::Controller,
            "the OpenStack client runs on the controller".into(),
            "openstack --version 2>&1".into(),
        ),
    ]
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

/// Runs every check on a node of its role (the first such node), retrying settling checks.
pub async fn run<G: crate::guest::Guest>(
    lab: &Lab,
    guests: &[G],
    secrets: &crate::secrets::LabSecrets,
) -> Result<Vec<CheckResult>, crate::guest::GuestError> {
    let mut results = Vec::new();
    for check in checks(lab) {
        let Some(node) = lab.nodes.iter().find(|n| n.role == check.on) else {
            continue;
        };
        let Some(guest) = guests.iter().find(|g| g.node() == node.name) else {
            continue;
        };
        for name in &check.secrets {
            guest
                .write_file(&secret_path(name), 0o600, secrets.password(name).as_bytes())
                .await?;
        }
        for f in &check.files {
            guest
                .write_file(&f.path, f.mode, f.content.as_bytes())
                .await?;
        }
        let start = std::time::Instant::now();
        let out = loop {
            let out = guest.run(&check.script).await?;
            if out.success() || start.elapsed() >= check.settle {
                break out;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        let measured = format!("{}{}", out.stdout, out.stderr).trim().to_string();
        results.push(CheckResult {
            name: check.name,
            node: node.name.clone(),
            proves: check.proves.clone(),
            passed: out.success(),
            measured,
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::{ClockReading, best_reading, parse_clock};

    fn reading(sent: f64, guest: f64, received: f64) -> ClockReading {
        ClockReading {
            sent,
            guest,
            received,
        }
    }

    #[test]
    fn a_clock_is_too_far_only_when_off_by_more_than_half_a_second_across_the_round_trip() {
        let (offset, half) = reading(100.0, 100.35, 100.2).offset();
        assert!((offset - 0.25).abs() < 1e-9 && (half - 0.1).abs() < 1e-9);
        assert!(!reading(100.0, 100.4, 100.2).too_far());
        assert!(!reading(100.0, 99.6, 100.2).too_far(), "0.4 s behind");
        assert!(reading(100.0, 100.75, 100.2).too_far(), "0.55-0.75 s ahead");
        assert!(reading(100.0, 99.45, 100.2).too_far(), "0.55-0.75 s behind");
        assert!(
            !reading(100.0, 101.5, 101.2).too_far(),
            "a 1.2 s round trip cannot prove a 0.9 s offset"
        );
    }

    #[test]
    fn the_tightest_reading_wins_and_dates_parse() {
        let best = best_reading(&[
            reading(0.0, 5.0, 1.0),
            reading(2.0, 2.1, 2.2),
            reading(3.0, 3.0, 3.5),
        ]);
        assert_eq!(best, Some(reading(2.0, 2.1, 2.2)));
        assert_eq!(best_reading(&[]), None);
        let t = parse_clock("1795769509.123456789\n").unwrap();
        assert!((t - 1_795_769_509.123_456).abs() < 1e-5, "{t}");
        assert_eq!(parse_clock("date: invalid\n"), None);
        assert_eq!(parse_clock("inf"), None);
    }
}
