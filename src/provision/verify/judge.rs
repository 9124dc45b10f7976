//! Judges: what a fact-gathering script printed on a node, read by `lab` into a verdict and,
//! when it fails, a hint in the install guide's own terms (what is missing, and which file
//! or command sets it). Pure functions of the recorded output, so every profile's good and
//! bad outputs are unit-tested without a guest.

use std::collections::BTreeMap;

/// What a judge made of an output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    pub passed: bool,
    /// What it saw, shown under the check.
    pub measured: String,
    /// On a failure: what is missing and what sets it, in the guide's terms.
    pub hint: Option<String>,
}

impl Judged {
    fn of(problems: Vec<String>, measured: String) -> Judged {
        Judged {
            passed: problems.is_empty(),
            measured,
            hint: (!problems.is_empty()).then(|| problems.join("; ")),
        }
    }
}

/// A setting of the guide's openstack.cnf and the server variable that shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlSetting {
    /// The server variable (`SHOW GLOBAL VARIABLES`), e.g. `max_connections`.
    pub variable: &'static str,
    /// The line's key as the guide writes it, e.g. `max_connections`, `collation-server`.
    pub key: &'static str,
    /// The guide's value.
    pub value: &'static str,
    /// Values the server may show for it (compared without case): MariaDB 10.6+ names the
    /// guide's `utf8` `utf8mb3`.
    pub accepted: &'static [&'static str],
}

/// The guide's openstack.cnf settings other than bind-address (proven by its sockets).
pub const SQL_SETTINGS: &[SqlSetting] = &[
    SqlSetting {
        variable: "default_storage_engine",
        key: "default-storage-engine",
        value: "innodb",
        accepted: &["innodb"],
    },
    SqlSetting {
        variable: "innodb_file_per_table",
        key: "innodb_file_per_table",
        value: "on",
        accepted: &["on"],
    },
    SqlSetting {
        variable: "max_connections",
        key: "max_connections",
        value: "4096",
        accepted: &["4096"],
    },
    SqlSetting {
        variable: "collation_server",
        key: "collation-server",
        value: "utf8_general_ci",
        accepted: &["utf8_general_ci", "utf8mb3_general_ci"],
    },
    SqlSetting {
        variable: "character_set_server",
        key: "character-set-server",
        value: "utf8",
        accepted: &["utf8", "utf8mb3"],
    },
];

/// How a fact-gathering script's output is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judge {
    /// Lines `<package> installed|missing`; each must be installed.
    Packages {
        packages: Vec<&'static str>,
        /// The guide's command that installs them.
        install: String,
    },
    /// Lines `<unit> <is-enabled> <is-active>`; each unit must be enabled and active.
    Services { units: Vec<&'static str> },
    /// `ss -ltn`: the TCP sockets listening on `port` must be exactly `want`.
    Listens {
        port: u16,
        want: Vec<String>,
        /// The service, e.g. `MariaDB`.
        service: &'static str,
        /// What the guide sets, e.g. `bind-address = 10.0.0.11 in /etc/my.cnf.d/openstack.cnf`.
        setting: String,
    },
    /// Lines `<variable>\t<value>` of the server: the guide's openstack.cnf settings.
    SqlSettings { conf: &'static str },
    /// Lines `<fact> <value>` of the secure installation (see [`secure_facts`]).
    SqlSecure,
    /// `chronyc accheck <address>`: the controller's chrony serves the address.
    ChronyAllows {
        address: String,
        node: String,
        cidr: String,
        conf: &'static str,
    },
}

impl Judge {
    /// The verdict on a script's output (stdout and stderr) and exit status.
    pub fn judge(&self, output: &str, status: u32) -> Judged {
        match self {
            Judge::Packages { packages, install } => judge_packages(packages, install, output),
            Judge::Services { units } => judge_services(units, output),
            Judge::Listens {
                port,
                want,
                service,
                setting,
            } => judge_listens(*port, want, service, setting, output),
            Judge::SqlSettings { conf } => judge_sql_settings(conf, output, status),
            Judge::SqlSecure => judge_sql_secure(output, status),
            Judge::ChronyAllows {
                address,
                node,
                cidr,
                conf,
            } => judge_chrony_allows(address, node, cidr, conf, output),
        }
    }
}

/// `key value` lines (the first word, the rest), for the line-oriented fact scripts.
fn facts(output: &str) -> BTreeMap<&str, &str> {
    output
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let (k, v) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (!k.is_empty()).then(|| (k, v.trim()))
        })
        .collect()
}

fn judge_packages(packages: &[&str], install: &str, output: &str) -> Judged {
    let seen = facts(output);
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| seen.get(p) != Some(&"installed"))
        .collect();
    let problems = match missing.as_slice() {
        [] => vec![],
        [one] => vec![format!(
            "package {one} is not installed; the guide installs it: `{install}`"
        )],
        many => vec![format!(
            "packages {} are not installed; the guide installs them: `{install}`",
            many.join(", ")
        )],
    };
    Judged::of(problems, output.trim().to_string())
}

fn judge_services(units: &[&str], output: &str) -> Judged {
    let seen = facts(output);
    let mut problems = Vec::new();
    for unit in units {
        let state = seen.get(unit).copied().unwrap_or("");
        let mut words = state.split_whitespace();
        let (enabled, active) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let enabled_ok = enabled == "enabled";
        let active_ok = active == "active";
        let shown = |w: &str| {
            if w.is_empty() {
                "unknown".to_string()
            } else {
                w.to_string()
            }
        };
        match (enabled_ok, active_ok) {
            (true, true) => {}
            (false, true) => problems.push(format!(
                "{unit} runs but is {} at boot; the guide runs `systemctl enable {unit}`",
                shown(enabled)
            )),
            (true, false) => problems.push(format!(
                "{unit} is enabled but {}; the guide runs `systemctl start {unit}`",
                shown(active)
            )),
            (false, false) => problems.push(format!(
                "{unit} is {} and {}; the guide runs `systemctl enable {unit}` and `systemctl start {unit}`",
                shown(enabled),
                shown(active)
            )),
        }
    }
    Judged::of(problems, output.trim().to_string())
}

/// The local addresses of `ss -ltn`'s sockets on `port`: brackets and `%interface` dropped.
pub fn listening(output: &str, port: u16) -> Vec<String> {
    let suffix = format!(":{port}");
    let mut out: Vec<String> = output
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|local| local.strip_suffix(&suffix))
        .map(|addr| {
            let addr = addr.trim_start_matches('[').trim_end_matches(']');
            addr.split('%').next().unwrap_or(addr).to_string()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn judge_listens(port: u16, want: &[String], service: &str, setting: &str, output: &str) -> Judged {
    let got = listening(output, port);
    let mut want_sorted = want.to_vec();
    want_sorted.sort();
    let shown = |a: &[String]| {
        if a.is_empty() {
            "nothing".to_string()
        } else {
            a.iter()
                .map(|x| addr_port(x, port))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let measured = format!("listening on port {port}: {}", shown(&got));
    let problems = if got == want_sorted {
        vec![]
    } else if got.is_empty() {
        vec![format!(
            "{service} does not listen on port {port}; is it running? the guide sets {setting}"
        )]
    } else {
        vec![format!(
            "{service} listens on {}, not {}; the guide sets {setting}",
            shown(&got),
            shown(&want_sorted)
        )]
    };
    Judged::of(problems, measured)
}

fn addr_port(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

fn judge_sql_settings(conf: &str, output: &str, status: u32) -> Judged {
    if status != 0 {
        return cannot_query(output);
    }
    let seen: BTreeMap<String, &str> = output
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()))
        .collect();
    let mut problems = Vec::new();
    for s in SQL_SETTINGS {
        let value = seen.get(s.variable).copied().unwrap_or("");
        if !s.accepted.iter().any(|a| a.eq_ignore_ascii_case(value)) {
            let now = if value.is_empty() { "not set" } else { value };
            problems.push(format!(
                "{} is {now}; the guide sets {} = {} in {conf}",
                s.variable, s.key, s.value
            ));
        }
    }
    let measured = SQL_SETTINGS
        .iter()
        .map(|s| {
            format!(
                "{} = {}",
                s.variable,
                seen.get(s.variable).copied().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    Judged::of(problems, measured)
}

fn cannot_query(output: &str) -> Judged {
    let first = output
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output");
    Judged {
        passed: false,
        measured: output.trim().to_string(),
        hint: Some(format!(
            "cannot query MariaDB as root ({first}); is it running? the guide starts it with `systemctl start mariadb`"
        )),
    }
}

/// The facts the secure-installation script prints, one `<fact> <value>` line each.
pub mod secure_facts {
    /// Anonymous accounts (a count).
    pub const ANONYMOUS: &str = "anonymous";
    /// Hosts of root accounts other than localhost, 127.0.0.1 and ::1 (comma-separated, or `-`).
    pub const REMOTE_ROOT: &str = "remote-root";
    /// Root accounts whose password is not DB_ROOT_PASS (a count).
    pub const ROOT_PASSWORD: &str = "root-not-db-root-pass";
    /// Whether the `test` database exists (a count).
    pub const TEST_DATABASE: &str = "test-database";
    /// Grants on test and test_% (a count).
    pub const TEST_GRANTS: &str = "test-grants";
}

fn judge_sql_secure(output: &str, status: u32) -> Judged {
    if status != 0 {
        return cannot_query(output);
    }
    use secure_facts::*;
    let seen = facts(output);
    let count = |k: &str| seen.get(k).and_then(|v| v.parse::<u64>().ok());
    let mut problems = Vec::new();
    let said = "the guide's `mysql_secure_installation`";
    match count(ANONYMOUS) {
        Some(0) => {}
        Some(n) => problems.push(format!(
            "{n} anonymous accounts are left; {said} removes them (answer Y to \"Remove anonymous users?\")"
        )),
        None => problems.push(format!("no {ANONYMOUS} fact in the output")),
    }
    match seen.get(REMOTE_ROOT).copied() {
        Some("-") => {}
        Some(hosts) => problems.push(format!(
            "root may log in from {hosts}; {said} removes remote root (answer Y to \"Disallow root login remotely?\")"
        )),
        None => problems.push(format!("no {REMOTE_ROOT} fact in the output")),
    }
    match count(ROOT_PASSWORD) {
        Some(0) => {}
        Some(_) => problems.push(format!(
            "root's password is not DB_ROOT_PASS (`lab creds`); {said} sets it (\"Set root password?\")"
        )),
        None => problems.push(format!("no {ROOT_PASSWORD} fact in the output")),
    }
    match (count(TEST_DATABASE), count(TEST_GRANTS)) {
        (Some(0), Some(0)) => {}
        (Some(_), Some(_)) => problems.push(format!(
            "the test database or its grants are left; {said} removes them (answer Y to \"Remove test database and access to it?\")"
        )),
        _ => problems.push(format!("no {TEST_DATABASE} fact in the output")),
    }
    Judged::of(problems, output.trim().to_string())
}

fn judge_chrony_allows(address: &str, node: &str, cidr: &str, conf: &str, output: &str) -> Judged {
    let allowed = output.contains("Access allowed");
    let problems = if allowed {
        vec![]
    } else {
        vec![format!(
            "chrony does not serve {address} ({node}); the guide sets `allow {cidr}` in {conf} and restarts chrony"
        )]
    };
    Judged::of(problems, output.trim().to_string())
}

/// The hint when no AMQP broker answers on `at`.
pub fn no_broker(at: &str) -> String {
    format!(
        "RabbitMQ does not answer on {at}; the guide installs rabbitmq-server, then `systemctl enable rabbitmq-server` and `systemctl start rabbitmq-server`"
    )
}

/// The guide's command that grants the rights.
const SET_PERMISSIONS: &str = r#"rabbitmqctl set_permissions openstack ".*" ".*" ".*""#;

/// The verdict on what an AMQP session proved of `user`'s rights on `vhost` (at `at`), or
/// why no broker answered.
pub fn amqp_rights(
    user: &str,
    vhost: &str,
    at: &str,
    access: Result<crate::provision::amqp::AmqpAccess, String>,
) -> Judged {
    use crate::provision::amqp::{AmqpAccess, Right};
    let fail = |measured: String, hint: String| Judged {
        passed: false,
        measured,
        hint: Some(hint),
    };
    match access {
        Err(e) => fail(format!("no amqp broker answered: {e}"), no_broker(at)),
        Ok(AmqpAccess::LoginRefused(why)) => fail(
            format!("login as {user} refused ({why})"),
            format!(
                "user {user} cannot log in with RABBIT_PASS; the guide runs `rabbitmqctl add_user {user} RABBIT_PASS` (`lab creds`), then `{SET_PERMISSIONS}`"
            ),
        ),
        Ok(AmqpAccess::VhostRefused(why)) => fail(
            format!("logged in; vhost {vhost} refused ({why})"),
            format!(
                "user {user} has no permissions on vhost {vhost}; the guide runs `{SET_PERMISSIONS}`"
            ),
        ),
        Ok(AmqpAccess::Opened {
            configure,
            write,
            read,
        }) => {
            let rights = [("configure", configure), ("write", write), ("read", read)];
            let measured = rights
                .iter()
                .map(|(name, r)| match r {
                    Right::Allowed(how) => format!("{name}: allowed ({how})"),
                    Right::Refused(why) => format!("{name}: REFUSED ({why})"),
                    Right::Unproven(why) => format!("{name}: not proven ({why})"),
                })
                .collect::<Vec<_>>()
                .join("\n");
            let refused: Vec<&str> = rights
                .iter()
                .filter(|(_, r)| matches!(r, Right::Refused(_)))
                .map(|(name, _)| *name)
                .collect();
            let unproven = rights.iter().any(|(_, r)| matches!(r, Right::Unproven(_)));
            if !refused.is_empty() {
                fail(
                    measured,
                    format!(
                        "user {user} may not {} on vhost {vhost}; the guide runs `{SET_PERMISSIONS}` (configure, write, read: all three `.*`)",
                        refused.join(" or ")
                    ),
                )
            } else if unproven {
                fail(
                    measured,
                    format!(
                        "the broker allowed what was tried but not every right was proven; the guide runs `{SET_PERMISSIONS}`"
                    ),
                )
            } else {
                Judged {
                    passed: true,
                    measured,
                    hint: None,
                }
            }
        }
    }
}
