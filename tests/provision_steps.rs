//! Provisioning steps: golden transcripts per lab and node, and the guide's lines pinned.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use lab::model::{Lab, Role};
use lab::provision::{self, Step};
use lab::secrets::LabSecrets;

const LABS: [&str; 2] = ["openstack-ocata", "openstack-debian12"];

fn node_steps(lab: &Lab, name: &str) -> Vec<Step> {
    provision::steps(lab, lab.node(name).unwrap())
}

fn ids(steps: &[Step]) -> Vec<&'static str> {
    steps.iter().map(|s| s.id).collect()
}

fn step<'a>(steps: &'a [Step], id: &str) -> &'a Step {
    steps
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no step {id}"))
}

/// Every script text of a step: check, apply, reboot check and uploaded files.
fn texts(step: &Step) -> Vec<&str> {
    let mut t = vec![step.check.as_str(), step.apply.as_str()];
    t.extend(step.reboot_check.as_deref());
    t.extend(step.files.iter().map(|f| f.content.as_str()));
    t
}

#[test]
fn golden_transcripts() {
    for name in LABS {
        let lab = common::lab(name);
        for node in &lab.nodes {
            let script = provision::script(&lab, node);
            common::assert_golden(&format!("provision/{name}/{}.sh", node.name), &script);
        }
    }
}

#[test]
fn every_role_gets_its_steps_in_the_guides_order() {
    let lab = common::lab("openstack-ocata");
    assert_eq!(
        ids(&node_steps(&lab, "controller")),
        [
            "network",
            "vault-repos",
            "chrony",
            "openstack-repo",
            "upgrade",
            "client",
            "selinux",
            "sql",
            "sql-secure",
            "mq",
            "mq-user",
            "memcached"
        ]
    );
    assert_eq!(
        ids(&node_steps(&lab, "compute1")),
        [
            "network",
            "vault-repos",
            "chrony",
            "openstack-repo",
            "upgrade",
            "client",
            "selinux"
        ]
    );
    let deb = common::lab("openstack-debian12");
    assert_eq!(
        ids(&node_steps(&deb, "controller")),
        [
            "chrony",
            "client",
            "sql",
            "sql-secure",
            "mq",
            "mq-user",
            "memcached"
        ]
    );
    assert_eq!(ids(&node_steps(&deb, "compute1")), ["chrony", "client"]);
}

#[test]
fn step_ids_are_unique_and_roles_match() {
    for name in LABS {
        let lab = common::lab(name);
        for node in &lab.nodes {
            let steps = provision::steps(&lab, node);
            let unique: BTreeSet<_> = ids(&steps).into_iter().collect();
            assert_eq!(unique.len(), steps.len(), "{name}/{}", node.name);
            assert!(steps.iter().all(|s| s.applies_to(node.role)));
            assert!(
                steps
                    .iter()
                    .all(|s| !s.reason.is_empty() && !s.check.is_empty())
            );
        }
    }
}

#[test]
fn compute_chrony_waits_for_the_controllers() {
    for name in LABS {
        let lab = common::lab(name);
        let compute = node_steps(&lab, "compute1");
        let after = step(&compute, "chrony").after.as_ref().expect("dependency");
        assert_eq!((after.node.as_str(), after.step), ("controller", "chrony"));
        let controller = node_steps(&lab, "controller");
        assert!(controller.iter().all(|s| s.after.is_none()));
        let others: Vec<_> = compute.iter().filter(|s| s.after.is_some()).collect();
        assert_eq!(
            others.len(),
            1,
            "{name}: only chrony depends on another node"
        );
    }
}

#[test]
fn chrony_follows_the_guide() {
    let lab = common::lab("openstack-ocata");
    let ctl = node_steps(&lab, "controller");
    let conf = &step(&ctl, "chrony").files[0].content;
    assert!(conf.contains("\nserver pool.ntp.org iburst\nallow 10.0.0.0/24\nlocal stratum 10\n"));
    assert!(step(&ctl, "chrony").apply.contains("/etc/chrony.conf"));
    assert!(
        step(&ctl, "chrony")
            .apply
            .contains("systemctl restart chronyd")
    );
    let cmp = node_steps(&lab, "compute1");
    let conf = &step(&cmp, "chrony").files[0].content;
    assert!(conf.contains("\nserver controller iburst\n"));
    assert!(!conf.contains("allow") && !conf.contains("pool.ntp.org"));
    let deb = common::lab("openstack-debian12");
    let s = node_steps(&deb, "controller");
    assert!(
        step(&s, "chrony").apply.contains(
            "install -m 0644 /root/.lab/files/chrony/chrony.conf /etc/chrony/chrony.conf"
        )
    );
    assert!(
        step(&s, "chrony")
            .apply
            .contains("systemctl restart chrony\n")
            || step(&s, "chrony")
                .apply
                .ends_with("systemctl restart chrony")
    );
}

#[test]
fn vault_rewrite_precedes_every_yum_call() {
    let lab = common::lab("openstack-ocata");
    for node in &lab.nodes {
        let steps = provision::steps(&lab, node);
        let vault = steps.iter().position(|s| s.id == "vault-repos").unwrap();
        let first_yum = steps
            .iter()
            .position(|s| texts(s).iter().any(|t| t.contains("yum ")))
            .unwrap();
        assert_eq!(
            first_yum, vault,
            "{}: vault-repos is the first step naming yum",
            node.name
        );
        let repo = &steps[vault].files[0].content;
        for dir in ["os", "updates", "extras"] {
            let line = format!("\nbaseurl=https://vault.centos.org/7.9.2009/{dir}/$basearch/\n");
            assert!(repo.contains(&line), "{line}");
        }
        assert!(!repo.contains("mirrorlist="));
        assert!(
            steps[vault].apply.contains(
                "sed -i -e 's/^mirrorlist=/#mirrorlist=/' /etc/yum.repos.d/CentOS-*.repo"
            )
        );
        assert!(
            steps[vault]
                .check
                .contains("! grep -q '^mirrorlist=' /etc/yum.repos.d/CentOS-*.repo")
        );
        let ocata = &step(&steps, "openstack-repo").files[0].content;
        assert!(ocata.contains(
            "\nbaseurl=https://vault.centos.org/7.6.1810/cloud/x86_64/openstack-ocata/\n"
        ));
        assert!(!ocata.contains("mirrorlist="));
    }
}

#[test]
fn openstack_cnf_is_exactly_the_guides() {
    let expected = "[mysqld]\nbind-address = 10.0.0.11\n\ndefault-storage-engine = innodb\ninnodb_file_per_table = on\nmax_connections = 4096\ncollation-server = utf8_general_ci\ncharacter-set-server = utf8\n";
    for (name, dest) in [
        ("openstack-ocata", "/etc/my.cnf.d/openstack.cnf"),
        (
            "openstack-debian12",
            "/etc/mysql/mariadb.conf.d/99-openstack.cnf",
        ),
    ] {
        let lab = common::lab(name);
        let steps = node_steps(&lab, "controller");
        let sql = step(&steps, "sql");
        assert_eq!(sql.files[0].content, expected);
        assert!(
            sql.apply
                .contains(&format!("/root/.lab/files/sql/openstack.cnf {dest}"))
        );
        assert!(
            sql.apply
                .contains("systemctl enable mariadb\nsystemctl restart mariadb")
        );
    }
    let lab = common::lab("openstack-ocata");
    let steps = node_steps(&lab, "controller");
    assert!(
        step(&steps, "sql")
            .apply
            .contains("yum install -y mariadb mariadb-server python2-PyMySQL")
    );
}

#[test]
fn secure_installation_is_sql_checked_first() {
    let lab = common::lab("openstack-ocata");
    let steps = node_steps(&lab, "controller");
    let s = step(&steps, "sql-secure");
    assert_eq!(s.secrets, ["DB_ROOT_PASS"]);
    // Root logs in with DB_ROOT_PASS itself: a secure installation done by hand with it
    // (no /root/.my.cnf of lab's) is done.
    assert!(
        s.check
            .starts_with("pw=$(cat /root/.lab/secrets/DB_ROOT_PASS) &&"),
        "{}",
        s.check
    );
    assert!(!s.check.contains(".my.cnf"), "{}", s.check);
    assert!(
        s.check
            .contains(r#"MYSQL_PWD="$pw" mysql --no-defaults --user=root -NB"#),
        "{}",
        s.check
    );
    let sql: String = s.files.iter().map(|f| f.content.as_str()).collect();
    for line in [
        "WHERE User = ''",
        "User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1')",
        "Password <> PASSWORD(@pw)",
        "SCHEMA_NAME = 'test'",
        "DROP DATABASE IF EXISTS test;",
        "DELETE FROM mysql.db WHERE Db = 'test' OR Db LIKE 'test\\\\_%';",
        "FLUSH PRIVILEGES;",
    ] {
        assert!(sql.contains(line), "{line}");
    }
    assert!(s.files.iter().all(|f| f.mode == 0o600));
    assert!(
        s.apply
            .contains("SET PASSWORD FOR 'root'@'%s' = PASSWORD('%s');")
    );
    assert!(s.apply.ends_with("mv /root/.my.cnf.lab /root/.my.cnf"));
    assert!(s.apply.contains("umask 077"));
}

/// Runs mq-user's apply with a stub `rabbitmqctl` that logs its calls: it knows the users
/// `users` lists (`down`: the broker does not answer). Returns the calls and the status.
fn mq_user_apply(apply: &str, users: &str) -> (Vec<String>, i32) {
    let dir = tempfile::tempdir().unwrap();
    let stub = common::write_temp(
        dir.path(),
        "rabbitmqctl",
        r#"#!/bin/bash
echo "rabbitmqctl $*" >> "$CALLS"
[ "$USERS" = down ] && { echo 'Error: unable to perform an operation on node' >&2; exit 69; }
case "$*" in
  *add_user*) [ -z "$USERS" ] || { echo 'Error: user_already_exists: openstack' >&2; exit 70; } ;;
  *list_users*) printf 'user	tags
%s' "$USERS" | sed 's/$/	[]/' ;;
esac
exit 0
"#,
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let calls = dir.path().join("calls");
    let out = Command::new("bash")
        .arg("-c")
        .arg(apply.replace("/root/.lab/secrets/RABBIT_PASS", "/dev/null"))
        .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
        .env("CALLS", &calls)
        .env("USERS", users)
        .output()
        .unwrap();
    let calls = std::fs::read_to_string(&calls).unwrap_or_default();
    (
        calls.lines().map(String::from).collect(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn rabbit_user_and_permissions() {
    for (name, stdin) in [("openstack-ocata", false), ("openstack-debian12", true)] {
        let lab = common::lab(name);
        let steps = node_steps(&lab, "controller");
        let s = step(&steps, "mq-user");
        assert_eq!(s.secrets, ["RABBIT_PASS"]);
        assert!(
            s.apply
                .contains("rabbitmqctl set_permissions openstack \".*\" \".*\" \".*\"")
        );
        assert!(
            s.check
                .starts_with("rabbitmqctl -q list_user_permissions openstack")
        );
        assert_eq!(
            s.check.matches("rabbitmqctl").count(),
            1,
            "one Erlang boot per check"
        );
        // A new user: two calls, as by hand; one that exists: its add fails, it is listed.
        for (users, calls, ok) in [("", 2, true), ("openstack\n", 3, true), ("down", 3, false)] {
            let (got_calls, got_status) = mq_user_apply(&s.apply, users);
            assert_eq!(
                (got_calls.len(), got_status == 0),
                (calls, ok),
                "{name}, users {users:?}: {got_calls:?}"
            );
            assert!(got_calls[0].contains("add_user openstack"), "{got_calls:?}");
        }
        assert_eq!(
            s.apply
                .contains("add_user openstack < /root/.lab/secrets/RABBIT_PASS"),
            stdin,
            "{name}"
        );
        let mq = step(&steps, "mq");
        assert!(
            mq.apply
                .contains("systemctl enable rabbitmq-server\nsystemctl start rabbitmq-server")
        );
    }
}

#[test]
fn memcached_listens_on_the_controller() {
    let lab = common::lab("openstack-ocata");
    let steps = node_steps(&lab, "controller");
    let s = step(&steps, "memcached");
    assert!(s.apply.contains(
        "printf '%s\\n' 'OPTIONS=\"-l 127.0.0.1,::1,controller\"' >> /etc/sysconfig/memcached"
    ));
    assert!(
        s.apply
            .contains("yum install -y memcached python-memcached")
    );
    let deb = common::lab("openstack-debian12");
    let steps = node_steps(&deb, "controller");
    let s = step(&steps, "memcached");
    assert!(
        s.apply
            .contains("printf '%s\\n' '-l 127.0.0.1,::1,controller' >> /etc/memcached.conf")
    );
    assert!(s.apply.contains("sed -i -e '/^-l /d' /etc/memcached.conf"));
}

/// Runs memcached's `script` (its check or apply, for Debian 12) in a local bash whose
/// memcached.conf is a temp file, whose packages are installed and whose `systemctl restart`
/// starts a listener on `port` one second later (its PID in `dir`/listener). The controller's
/// name is 127.0.0.1 there.
fn memcached_script(script: &str, dir: &std::path::Path, port: u16) -> i32 {
    use std::os::unix::fs::PermissionsExt;
    let conf = dir.join("memcached.conf");
    if !conf.exists() {
        std::fs::write(&conf, "-m 64\n-l 127.0.0.1\n").unwrap();
    }
    let stubs = [
        (
            "dpkg-query",
            "for _ in \"${@:3}\"; do echo 'install ok installed'; done",
        ),
        (
            "systemctl",
            r#"[ "$1" = restart ] || exit 0
python3 -c 'import socket, sys, time
time.sleep(1)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
time.sleep(60)' "$PORT" >/dev/null 2>&1 &
echo $! > "$DIR/listener""#,
        ),
    ];
    for (name, body) in stubs {
        let p = common::write_temp(dir, name, &format!("#!/bin/bash\n{body}\n"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let script = script
        .replace("/etc/memcached.conf", conf.to_str().unwrap())
        .replace(
            "/dev/tcp/controller/11211",
            &format!("/dev/tcp/127.0.0.1/{port}"),
        );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
        .env("PORT", port.to_string())
        .env("DIR", dir)
        .output()
        .unwrap();
    out.status.code().unwrap_or(-1)
}

#[test]
fn memcached_is_done_once_it_takes_connections_not_once_started() {
    let lab = common::lab("openstack-debian12");
    let steps = node_steps(&lab, "controller");
    let s = step(&steps, "memcached");
    assert!(s.check.contains("/dev/tcp/controller/11211"), "{}", s.check);
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert_ne!(
        memcached_script(&s.check, dir.path(), port),
        0,
        "not configured yet"
    );
    let applied = memcached_script(&s.apply, dir.path(), port);
    // The apply returns once the listener (started a second after the restart) takes a
    // connection: the other nodes' first one, right after, is taken.
    let taken = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    let checked = memcached_script(&s.check, dir.path(), port);
    let pid = std::fs::read_to_string(dir.path().join("listener")).unwrap();
    // bash's own kill: no package to install for it.
    Command::new("bash")
        .args(["-c", "kill \"$0\"", pid.trim()])
        .status()
        .unwrap();
    assert_eq!(applied, 0);
    assert!(taken, "memcached took no connection right after its step");
    assert_eq!(checked, 0, "the step's check after it");
}

#[test]
fn selinux_is_conditional_and_upgrade_may_reboot() {
    let lab = common::lab("openstack-ocata");
    let steps = node_steps(&lab, "compute1");
    let s = step(&steps, "selinux");
    assert!(
        s.check
            .starts_with("[ \"$(getenforce)\" = Disabled ] || rpm -q")
    );
    assert_eq!(s.apply, "yum install -y openstack-selinux");
    let up = step(&steps, "upgrade");
    assert_eq!(up.apply, "yum upgrade -y");
    assert!(up.reboot_check.as_deref().unwrap().contains("uname -r"));
    assert!(steps.iter().filter(|s| s.reboot_check.is_some()).count() == 1);
}

#[test]
fn installed_packages_pass_checks_without_network() {
    let deb = common::lab("openstack-debian12");
    for node in &deb.nodes {
        for s in provision::steps(&deb, node) {
            for t in texts(&s) {
                assert!(!t.contains("yum") && !t.contains("rpm "), "{}", s.id);
            }
            if s.apply.contains("apt-get install") {
                assert!(
                    s.check.contains("dpkg-query -W -f='${Status}\\n'"),
                    "{}",
                    s.id
                );
                let guarded = s.apply.contains("if ! [ \"$(dpkg-query")
                    || s.check.starts_with("[ \"$(dpkg-query") && !s.check.contains("&&");
                assert!(guarded, "{}: install only when missing", s.id);
            }
        }
    }
}

#[test]
fn no_secret_value_appears_anywhere() {
    for name in LABS {
        let lab = common::lab(name);
        let secrets = LabSecrets::from_seed(&lab, &common::SEED);
        for node in &lab.nodes {
            let script = provision::script(&lab, node);
            let steps = provision::steps(&lab, node);
            for (pname, value) in &secrets.passwords {
                assert!(
                    !script.contains(value.as_str()),
                    "{pname} in {name}/{}",
                    node.name
                );
                for s in &steps {
                    for t in texts(s) {
                        assert!(!t.contains(value.as_str()), "{pname} in {}", s.id);
                    }
                }
            }
            for s in &steps {
                for secret in &s.secrets {
                    assert!(lab::secrets::PASSWORD_NAMES.contains(secret));
                    let path = format!("/root/.lab/secrets/{secret}");
                    assert!(
                        texts(s).iter().any(|t| t.contains(&path)),
                        "{} reads {secret}",
                        s.id
                    );
                }
            }
        }
    }
}

/// The script at `path` parses under `bash -n` and passes ShellCheck (warnings and up).
fn assert_valid_bash(path: &std::path::Path) {
    let (code, _, err) = common::run(Command::new("bash").arg("-n").arg(path));
    assert_eq!(code, 0, "bash -n {}: {err}", path.display());
    let (code, out, _) = common::run(
        Command::new("shellcheck")
            .args(["-S", "warning", "-s", "bash"])
            .arg(path),
    );
    assert_eq!(code, 0, "shellcheck {}:\n{out}", path.display());
}

#[test]
fn transcripts_are_valid_bash_and_pass_shellcheck() {
    common::require_tool("shellcheck", "shellcheck");
    let dir = tempfile::tempdir().unwrap();
    for name in LABS {
        let lab = common::lab(name);
        for node in &lab.nodes {
            let path = common::write_temp(
                dir.path(),
                &format!("{name}-{}.sh", node.name),
                &provision::script(&lab, node),
            );
            assert_valid_bash(&path);
            let header = format!(
                "role {}",
                if node.role == Role::Controller {
                    "controller"
                } else {
                    "compute"
                }
            );
            assert!(provision::script(&lab, node).contains(&header));
        }
    }
}

// --- CentOS 7: repositories, their key, networking without NetworkManager -----------------

/// The issue's fingerprint of the Cloud SIG key, as the SIG publishes it.
const SIG_CLOUD_FINGERPRINT: &str = "736A F511 6D9C 40E2 AF6B 074B F9B9 FEE7 7644 29E6";

fn upload<'a>(step: &'a Step, name: &str) -> &'a lab::provision::Upload {
    step.files
        .iter()
        .find(|f| f.path.ends_with(&format!("/{name}")))
        .unwrap_or_else(|| panic!("{}: no upload {name}", step.id))
}

/// The seed lab with a `[provision]` table appended.
fn seed_lab_with(provision: &str) -> Lab {
    let text = std::fs::read_to_string(common::root().join("labs/openstack-ocata.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_temp(
        dir.path(),
        "lab.toml",
        &format!("{text}\n[provision]\n{provision}"),
    );
    lab::model::Source::resolve(path.to_str().unwrap())
        .unwrap()
        .load(&lab::image::Catalogue::builtin())
        .unwrap()
        .0
}

#[test]
fn the_ocata_repo_is_rdos_own_with_a_vendored_key() {
    let lab = common::lab("openstack-ocata");
    for node in &lab.nodes {
        let steps = provision::steps(&lab, node);
        let s = step(&steps, "openstack-repo");
        let repo = &upload(s, "openstack-ocata.repo").content;
        // The [centos-openstack-ocata] section of RDO's CentOS-OpenStack-ocata.repo, line by
        // line, only the mirrorlist replaced by base URLs.
        let lines: Vec<&str> = repo.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "[centos-openstack-ocata]",
                "name=CentOS-7 - OpenStack ocata",
                "baseurl=https://vault.centos.org/7.6.1810/cloud/x86_64/openstack-ocata/",
                "        https://archive.kernel.org/centos-vault/7.6.1810/cloud/x86_64/openstack-ocata/",
                "failovermethod=priority",
                "gpgcheck=1",
                "enabled=1",
                "gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-SIG-Cloud",
                "exclude=sip,PyQt4",
            ]
        );
        // The key is uploaded as the repository holds it and installed where gpgkey= says.
        let key = upload(s, "RPM-GPG-KEY-CentOS-SIG-Cloud");
        let vendored = std::fs::read_to_string(
            common::root()
                .join("profiles/centos7-ocata/steps/openstack-repo/RPM-GPG-KEY-CentOS-SIG-Cloud"),
        )
        .unwrap();
        assert_eq!(key.content, vendored);
        assert_eq!(key.content, provision::centos7::SIG_CLOUD_KEY);
        assert_eq!(key.mode, 0o644);
        let dest = provision::centos7::SIG_CLOUD_KEY_PATH;
        assert_eq!(dest, "/etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-SIG-Cloud");
        assert!(
            s.check.contains(&format!("cmp -s {} {dest}", key.path)),
            "{}",
            s.check
        );
        assert!(s.check.contains("rpm -q gpg-pubkey-764429e6 >/dev/null"));
        assert!(
            s.apply
                .contains(&format!("install -m 0644 {} {dest}\n", key.path)),
            "{}",
            s.apply
        );
        assert!(s.apply.contains(&format!("|| rpm --import {dest}\n")));
        let key_at = s.apply.find(&format!("{dest}\n")).unwrap();
        let repo_at = s.apply.find(provision::centos7::OCATA_REPO_FILE).unwrap();
        assert!(
            key_at < repo_at,
            "the key is in place before the repo that names it"
        );
    }
    // Nothing fetches a key from a web site at install time.
    for node in &lab.nodes {
        for s in provision::steps(&lab, node) {
            for t in texts(&s) {
                assert!(!t.contains("gpgkey=http"), "{}", s.id);
                assert!(!t.contains("centos.org/keys"), "{}", s.id);
            }
        }
    }
}

#[test]
fn the_vendored_cloud_sig_key_has_the_published_fingerprint() {
    common::require_tool("gpg", "gnupg");
    let home = tempfile::tempdir().unwrap();
    let key = common::write_temp(
        home.path(),
        "RPM-GPG-KEY-CentOS-SIG-Cloud",
        provision::centos7::SIG_CLOUD_KEY,
    );
    let (code, out, err) = common::run(
        Command::new("gpg")
            .arg("--homedir")
            .arg(home.path())
            .args([
                "--batch",
                "--with-colons",
                "--import-options",
                "show-only",
                "--import",
            ])
            .arg(&key),
    );
    assert_eq!(code, 0, "gpg: {err}");
    // One public key (no subkeys), whose fingerprint is the SIG's.
    let pubs: Vec<&str> = out.lines().filter(|l| l.starts_with("pub:")).collect();
    assert_eq!(pubs.len(), 1, "{out}");
    assert_eq!(pubs[0].split(':').nth(4), Some("F9B9FEE7764429E6"), "{out}");
    let fprs: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("fpr:"))
        .map(|l| l.split(':').nth(9).unwrap())
        .collect();
    let expected = SIG_CLOUD_FINGERPRINT.replace(' ', "");
    assert_eq!(fprs, [expected.as_str()], "{out}");
    assert_eq!(provision::centos7::SIG_CLOUD_KEY_FINGERPRINT, expected);
    assert!(out.contains("CentOS Cloud SIG"), "{out}");
    // rpm names the imported key after the short key id: what the step's check asks for.
    let short = expected[expected.len() - 8..].to_lowercase();
    assert_eq!(short, "764429e6");
}

/// Every `baseurl=` of a repo file, with its continuation lines, as Python's ini parser reads
/// it (yum's iniparse follows it): section -> the urls, in order.
fn baseurls_as_parsed(repo: &str) -> BTreeMap<String, Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_temp(dir.path(), "x.repo", repo);
    let script = "import configparser, sys\n\
                  c = configparser.RawConfigParser()\n\
                  c.read(sys.argv[1])\n\
                  for s in c.sections():\n    \
                  print(s + '=' + ' '.join(c.get(s, 'baseurl').split()))\n";
    let (code, out, err) = common::run(Command::new("python3").args(["-c", script]).arg(&path));
    assert_eq!(code, 0, "python3: {err}");
    out.lines()
        .map(|l| {
            let (s, urls) = l.split_once('=').unwrap();
            (s.to_string(), urls.split(' ').map(String::from).collect())
        })
        .collect()
}

#[test]
fn every_repo_lists_its_base_urls_in_order_with_priority_failover() {
    common::require_tool("python3", "python3");
    let lab = common::lab("openstack-ocata");
    let steps = node_steps(&lab, "controller");
    let base = &upload(step(&steps, "vault-repos"), "CentOS-Base.repo").content;
    let parsed = baseurls_as_parsed(base);
    for (id, dir) in [
        ("base", "os"),
        ("updates", "updates"),
        ("extras", "extras"),
        ("centosplus", "centosplus"),
    ] {
        assert_eq!(
            parsed[id],
            [
                format!("https://vault.centos.org/7.9.2009/{dir}/$basearch/"),
                format!("https://archive.kernel.org/centos-vault/7.9.2009/{dir}/$basearch/"),
            ],
            "{id}"
        );
    }
    assert_eq!(base.matches("\nfailovermethod=priority\n").count(), 4);
    let ocata = &upload(step(&steps, "openstack-repo"), "openstack-ocata.repo").content;
    assert_eq!(
        baseurls_as_parsed(ocata)["centos-openstack-ocata"],
        lab.provision.ocata_repo_urls
    );
    assert_eq!(ocata.matches("\nfailovermethod=priority\n").count(), 1);
}

#[test]
fn a_classroom_mirror_named_first_is_tried_first() {
    let lab = seed_lab_with(
        "centos_base_urls = [\"http://mirror.classroom.test/centos-vault/7.9.2009\", \"https://vault.centos.org/7.9.2009\"]\n\
         ocata_repo_urls = [\"http://mirror.classroom.test/centos-vault/7.6.1810/cloud/x86_64/openstack-ocata/\"]\n",
    );
    let steps = node_steps(&lab, "compute1");
    let base = &upload(step(&steps, "vault-repos"), "CentOS-Base.repo").content;
    let ocata = &upload(step(&steps, "openstack-repo"), "openstack-ocata.repo").content;
    common::assert_golden("provision/local-mirror/CentOS-Base.repo", base);
    common::assert_golden("provision/local-mirror/openstack-ocata.repo", ocata);
    assert!(base.contains(
        "\nbaseurl=http://mirror.classroom.test/centos-vault/7.9.2009/os/$basearch/\n        https://vault.centos.org/7.9.2009/os/$basearch/\nfailovermethod=priority\n"
    ));
    assert!(ocata.contains(
        "\nbaseurl=http://mirror.classroom.test/centos-vault/7.6.1810/cloud/x86_64/openstack-ocata/\nfailovermethod=priority\n"
    ));
    assert!(!base.contains("archive.kernel.org") && !ocata.contains("vault.centos.org"));
}

/// A directory standing in for a CentOS 7 guest's network files: ifcfg files, unit files, and
/// a `systemctl` on PATH that only logs its arguments.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new(units: &[&str], ifcfg: &[(&str, &str)]) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["units", "ifcfg", "bin"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        for u in units {
            std::fs::write(dir.path().join("units").join(u), "[Unit]\n").unwrap();
        }
        for (name, text) in ifcfg {
            std::fs::write(dir.path().join("ifcfg").join(name), text).unwrap();
        }
        let stub = dir.path().join("bin/systemctl");
        std::fs::write(&stub, "#!/bin/sh\necho \"$*\" >> \"$SYSTEMCTL_LOG\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
        Sandbox { dir }
    }

    /// Runs `script` with the guest's paths moved into the sandbox; returns systemctl's calls.
    fn run(&self, shell: &[&str], script: &str) -> Vec<String> {
        let d = self.dir.path().display();
        let script = script
            .replace("/usr/lib/systemd/system/", &format!("{d}/units/"))
            .replace("/etc/sysconfig/network-scripts/", &format!("{d}/ifcfg/"));
        assert!(!script.contains("/usr/lib/systemd") && !script.contains("/etc/sysconfig"));
        let log = self.dir.path().join("systemctl.log");
        let path = format!("{d}/bin:{}", std::env::var("PATH").unwrap());
        let (code, out, err) = common::run(
            Command::new(shell[0])
                .args(&shell[1..])
                .arg(&script)
                .env("PATH", path)
                .env("SYSTEMCTL_LOG", &log),
        );
        assert_eq!(code, 0, "{script}\n{out}{err}");
        let calls = std::fs::read_to_string(&log).unwrap_or_default();
        calls.lines().map(String::from).collect()
    }

    fn ifcfg(&self) -> BTreeMap<String, String> {
        std::fs::read_dir(self.dir.path().join("ifcfg"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let text = std::fs::read_to_string(e.path()).unwrap();
                (e.file_name().into_string().unwrap(), text)
            })
            .collect()
    }
}

const NM_UNITS: [&str; 2] = [
    "NetworkManager.service",
    "NetworkManager-wait-online.service",
];

#[test]
fn the_network_step_runs_with_and_without_network_manager() {
    let lab = common::lab("openstack-ocata");
    let steps = node_steps(&lab, "controller");
    let s = step(&steps, "network");
    assert!(
        s.check
            .contains("! systemctl is-enabled --quiet NetworkManager-wait-online")
    );
    let bash = ["bash", "-euo", "pipefail", "-c"];
    // The GenericCloud image may have no NetworkManager at all: nothing is asked of it.
    let eth0 = "DEVICE=eth0\nNM_CONTROLLED=yes\n";
    let bare = Sandbox::new(&[], &[("ifcfg-eth0", eth0), ("ifcfg-lo", "DEVICE=lo\n")]);
    assert_eq!(
        bare.run(&bash, &s.apply),
        ["enable network", "start network"]
    );
    let files = bare.ifcfg();
    assert_eq!(files["ifcfg-eth0"], "DEVICE=eth0\nNM_CONTROLLED=no\n");
    assert_eq!(files["ifcfg-lo"], "DEVICE=lo\n");
    // No ifcfg file at all: the loop does nothing (no file named after the glob).
    let empty = Sandbox::new(&NM_UNITS, &[]);
    assert_eq!(
        empty.run(&bash, &s.apply),
        [
            "disable --now NetworkManager",
            "disable NetworkManager-wait-online",
            "enable network",
            "start network"
        ]
    );
    assert!(empty.ifcfg().is_empty());
}

/// What the engine runs for a step (its check, apply, check again in one script) is valid
/// bash and passes ShellCheck, for every step of every lab.
#[test]
fn each_step_as_the_engine_runs_it_is_valid_bash_and_passes_shellcheck() {
    common::require_tool("shellcheck", "shellcheck");
    let dir = tempfile::tempdir().unwrap();
    for name in LABS {
        let lab = common::lab(name);
        for node in &lab.nodes {
            for step in provision::steps(&lab, node) {
                let script = format!("#!/bin/bash\n{}", provision::step_run::script(&step));
                let file = format!("{name}-{}-{}.sh", node.name, step.id);
                let path = common::write_temp(dir.path(), &file, &script);
                assert_valid_bash(&path);
            }
        }
    }
}
