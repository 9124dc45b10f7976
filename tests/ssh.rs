//! The SSH client against a real OpenSSH server started by each test on 127.0.0.1 (or inside
//! a network namespace of its own), with the lab's derived host and user keys; a second sshd
//! with keys ssh-keygen makes plays a remote libvirt host the node is reached through. Needs
//! root, `/usr/sbin/sshd` (openssh-server), `ssh-keygen` (openssh-client) and, for the
//! namespace test, `ip` (iproute2).

mod common;

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lab::guest::{FileWrite, Guest, GuestError};
use lab::secrets::LabSecrets;
use lab::shell::quote;
use lab::ssh::{SshGuest, Target, Timeouts, wait_ready};

const SSHD: &str = "/usr/sbin/sshd";

fn secrets() -> LabSecrets {
    let lab = common::lab("openstack-debian12");
    LabSecrets::from_seed(&lab, &common::SEED)
}

/// An sshd child serving the controller's host key and accepting the lab user key for the
/// current user; killed by its PID on drop.
struct Sshd {
    child: Child,
    dir: tempfile::TempDir,
    addr: SocketAddr,
    netns: Option<String>,
}

impl Sshd {
    fn start(netns: Option<&str>) -> Sshd {
        Sshd::start_with(netns, "")
    }

    /// [`Sshd::start`] with `extra` lines first in its configuration (the first value wins).
    fn start_with(netns: Option<&str>, extra: &str) -> Sshd {
        let s = secrets();
        let keys = (
            s.host_keys["controller"].private_openssh.as_str(),
            s.user_key.public_openssh.as_str(),
        );
        Sshd::launch(netns, extra, keys)
    }

    /// An sshd with `keys`: its private host key and the authorized public key.
    fn launch(netns: Option<&str>, extra: &str, keys: (&str, &str)) -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: apt-get install openssh-server (.ci/run does)"
        );
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let port = match netns {
            Some(_) => 2222,
            None => free_port(),
        };
        let config = write_config(dir.path(), port, extra, keys);
        let log = File::create(dir.path().join("sshd.log")).unwrap();
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, SSHD]);
                c
            }
            None => Command::new(SSHD),
        };
        cmd.args(["-D", "-e", "-f"]).arg(&config);
        let child = cmd.stdin(Stdio::null()).stderr(log).spawn().unwrap();
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let sshd = Sshd {
            child,
            dir,
            addr,
            netns: netns.map(str::to_string),
        };
        if netns.is_none() {
            sshd.wait_listening();
        }
        sshd
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(self.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A target for the controller, pinned to its real host key.
    fn target(&self) -> Target {
        let s = secrets();
        Target {
            node: "controller".to_string(),
            addr: self.addr,
            user: current_user(),
            user_key: s.user_key.private_openssh.clone(),
            host_key: s.host_keys["controller"].public_openssh.clone(),
            netns: self.netns.clone(),
            via: None,
            log: self.path("logs/controller.log"),
            ready_marker: self.path("boot-finished").to_str().unwrap().to_string(),
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn current_user() -> String {
    let (code, out, err) = common::run(Command::new("id").arg("-un"));
    assert_eq!(code, 0, "{err}");
    out.trim().to_string()
}

fn write_config(dir: &Path, port: u16, extra: &str, (host, authorized): (&str, &str)) -> PathBuf {
    let host_key = dir.join("host_key");
    std::fs::write(&host_key, host).unwrap();
    std::fs::set_permissions(&host_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let keys = common::write_temp(dir, "authorized_keys", &format!("{authorized}\n"));
    let config = format!(
        "{extra}Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
         UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\nLogLevel VERBOSE\n",
        host_key.display(),
        keys.display(),
        dir.join("sshd.pid").display()
    );
    common::write_temp(dir, "sshd_config", &config)
}

fn quick() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        command: Duration::from_secs(20),
        ready: Duration::from_secs(20),
        reboot: Duration::from_secs(20),
        poll: Duration::from_millis(100),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pinned_key_is_accepted_and_status_stdout_stderr_come_back() {
    let sshd = Sshd::start(None);
    let guest = SshGuest::connect(&sshd.target(), &quick()).await.unwrap();
    assert_eq!(guest.node(), "controller");
    let out = guest
        .run("echo out\necho x >&2\nexit 3\necho never\n")
        .await
        .unwrap();
    assert_eq!(
        (out.status, out.stdout.as_str(), out.stderr.as_str()),
        (3, "out\n", "x\n")
    );
    let out = guest
        .run("read -r line < /proc/self/comm; echo \"$line\"; id -u")
        .await
        .unwrap();
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.ends_with("0\n"), "runs as root: {out:?}");
    assert!(sshd.log().contains("Accepted publickey"), "{}", sshd.log());
}

/// The clock line reads this machine's own clock here (its steps would move it: they are
/// proven on real guests by `lab reset` in tests/e2e/run.sh and faults.sh).
#[tokio::test(flavor = "multi_thread")]
async fn the_clock_line_reads_the_nodes_clock_within_milliseconds_and_logs_itself() {
    let sshd = Sshd::start(None);
    let guest = SshGuest::connect(&sshd.target(), &quick()).await.unwrap();
    let mut line = guest.clock_line().await.unwrap();
    let first = line.read().await.unwrap();
    let best = line.best_of(5).await.unwrap();
    line.close().await;
    for r in [first, best] {
        let (offset, half) = r.offset();
        assert!(
            half < 0.25,
            "a reading is one line on an open channel: {r:?}"
        );
        assert!(offset.abs() <= half + 0.001, "the same clock: {r:?}");
        assert_eq!(r.correction(), None, "{r:?}");
    }
    assert!(best.sent >= first.received, "readings come in order");
    let log = std::fs::read_to_string(&sshd.target().log).unwrap();
    assert!(log.contains("controller: clock line\nopen\n"), "{log}");
}

/// `lab ssh NODE WORDS...` as the CLI sends it: the words joined as OpenSSH does.
async fn lab_ssh(guest: &SshGuest, words: &[&str]) -> lab::guest::Output {
    let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    guest.run(&lab::app::remote_command(&words)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn lab_ssh_command_lines_run_in_the_remote_shell_as_with_openssh() {
    let sshd = Sshd::start(None);
    let guest = SshGuest::connect(&sshd.target(), &quick()).await.unwrap();
    let dir = sshd.dir.path().display().to_string();
    // One word holding a pipeline: the shell runs it (it was exec'd as a program name).
    let out = lab_ssh(&guest, &["printf 'a\\nb\\nc\\n' | head -n 2 | wc -l"]).await;
    assert_eq!((out.status, out.stdout.trim()), (0, "2"), "{out:?}");
    // Several words, as after `--`: a command and its arguments.
    let file = format!("{dir}/touched");
    let out = lab_ssh(&guest, &["touch", &file]).await;
    assert!(out.success(), "{out:?}");
    assert!(Path::new(&file).exists());
    // The remote shell splits and expands the joined line, as OpenSSH's does.
    let out = lab_ssh(&guest, &["echo", "$((6 * 7))", "'a  b'"]).await;
    assert_eq!(out.stdout, "42 a  b\n", "{out:?}");
    let out = lab_ssh(&guest, &["exit 5"]).await;
    assert_eq!(out.status, 5, "the exit status comes back: {out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_that_reads_stdin_cannot_swallow_the_rest_of_the_script() {
    let sshd = Sshd::start(None);
    let guest = SshGuest::connect(&sshd.target(), &quick()).await.unwrap();
    // rabbitmqctl and apt read stdin: under `bash -s` they ate the script's tail.
    let out = guest
        .run("cat > /dev/null\necho after\nexit 7\n")
        .await
        .unwrap();
    assert_eq!((out.status, out.stdout.as_str()), (7, "after\n"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn another_host_key_is_refused_before_login() {
    let sshd = Sshd::start(None);
    let s = secrets();
    let mut target = sshd.target();
    target.host_key = s.host_keys["compute1"].public_openssh.clone();
    let err = SshGuest::connect(&target, &quick()).await.unwrap_err();
    let GuestError::HostKey { node, got, want } = &err else {
        panic!("expected a host key error, got {err:?}");
    };
    assert_eq!(node, "controller");
    let real = &s.host_keys["controller"].public_openssh;
    assert!(real.starts_with(got.as_str()), "got {got}, real {real}");
    assert!(target.host_key.starts_with(want.as_str()), "want {want}");
    assert!(err.to_string().contains("lab down"), "{err}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !sshd.log().contains("Accepted"),
        "nothing may log in: {}",
        sshd.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn large_binary_upload_arrives_identical_with_its_mode_and_stays_out_of_the_log() {
    let sshd = Sshd::start(None);
    let target = sshd.target();
    let guest = SshGuest::connect(&target, &quick()).await.unwrap();
    let mut content: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    content[..4].copy_from_slice(&[0xff, 0xfe, 0x00, 0xc3]);
    let marker = b"UPLOADED-CONTENT-MARKER";
    content[1000..1000 + marker.len()].copy_from_slice(marker);
    let path = sshd.path("new dir/it's a \"quoted\" $HOME file.bin");
    guest
        .write_file(path.to_str().unwrap(), 0o640, &content)
        .await
        .unwrap();
    let written = std::fs::read(&path).unwrap();
    assert!(
        written == content,
        "{} bytes written, {} sent",
        written.len(),
        content.len()
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o640);
    let log = std::fs::read(&target.log).unwrap();
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains("(mode 0640, 8388608 bytes)"), "{text}");
    assert!(!text.contains("UPLOADED-CONTENT-MARKER"), "{text}");
    assert!(log.len() < 4096, "the log holds {} bytes", log.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_write_is_an_error_naming_the_path() {
    let sshd = Sshd::start(None);
    let guest = SshGuest::connect(&sshd.target(), &quick()).await.unwrap();
    let err = guest
        .write_file("/dev/null/cannot", 0o600, b"x\n")
        .await
        .unwrap_err();
    assert!(matches!(err, GuestError::Channel { .. }), "{err:?}");
    assert!(err.to_string().contains("/dev/null/cannot"), "{err}");
}

/// Files and script on one channel: each file arrives byte for byte (no newline added to a
/// password, a line `-` inside a file, binary bytes) with its mode before the script runs,
/// and the log names each file, never its content.
#[tokio::test(flavor = "multi_thread")]
async fn files_sent_with_a_script_arrive_exact_before_it_runs() {
    let sshd = Sshd::start(None);
    let target = sshd.target();
    let guest = SshGuest::connect(&target, &quick()).await.unwrap();
    let binary: Vec<u8> = (0..=255u8).chain(b"-\n\n-\nend".iter().copied()).collect();
    let (secret, conf, bin, empty) = (
        sshd.path("secrets/PASS"),
        sshd.path("files/sql/it's \"my\" conf"),
        sshd.path("files/bin"),
        sshd.path("files/empty"),
    );
    let files = [
        FileWrite {
            path: secret.to_str().unwrap(),
            mode: 0o600,
            content: b"s3cret-NO-NEWLINE",
        },
        FileWrite {
            path: conf.to_str().unwrap(),
            mode: 0o644,
            content: b"[mysqld]\n-\n",
        },
        FileWrite {
            path: bin.to_str().unwrap(),
            mode: 0o640,
            content: &binary,
        },
        FileWrite {
            path: empty.to_str().unwrap(),
            mode: 0o600,
            content: b"",
        },
    ];
    let script = format!("cat {}; wc -c < {}", shell_word(&secret), shell_word(&bin));
    let out = guest.run_with_files(&files, &script).await.unwrap();
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, "s3cret-NO-NEWLINE264\n"),
        "{out:?}"
    );
    for (f, written) in files.iter().map(|f| (f, std::fs::read(f.path).unwrap())) {
        assert!(written == f.content, "{}: {written:?}", f.path);
        let mode = std::fs::metadata(f.path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, f.mode, "{}", f.path);
    }
    let log = std::fs::read_to_string(&target.log).unwrap();
    assert_eq!(
        log.matches("==> [").count(),
        1,
        "one channel, one entry: {log}"
    );
    assert!(log.contains("PASS (mode 0600, 17 bytes)"), "{log}");
    assert!(
        !log.contains("s3cret-NO-NEWLINE\n"),
        "only the script printed it: {log}"
    );
}

/// A file that cannot be written stops there: the script does not run, and the error names
/// the file.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_cannot_be_written_stops_the_script_and_is_named() {
    let sshd = Sshd::start(None);
    let guest = SshGuest::connect(&sshd.target(), &quick()).await.unwrap();
    let (ran, after) = (sshd.path("ran"), sshd.path("after"));
    let files = [
        FileWrite {
            path: "/dev/null/cannot",
            mode: 0o600,
            content: b"x",
        },
        FileWrite {
            path: after.to_str().unwrap(),
            mode: 0o600,
            content: b"y",
        },
    ];
    let err = guest
        .run_with_files(&files, &format!("touch {}", shell_word(&ran)))
        .await
        .unwrap_err();
    assert!(matches!(err, GuestError::Channel { .. }), "{err:?}");
    assert!(
        err.to_string().contains("writing /dev/null/cannot failed"),
        "{err}"
    );
    assert!(
        !ran.exists() && !after.exists(),
        "went on after the failed write"
    );
}

fn shell_word(path: &Path) -> String {
    quote(path.to_str().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_holds_each_commands_header_and_both_streams() {
    let sshd = Sshd::start(None);
    let target = sshd.target();
    let guest = SshGuest::connect(&target, &quick()).await.unwrap();
    guest
        .run("echo to-stdout-1\necho to-stderr-1 >&2\n")
        .await
        .unwrap();
    guest.run("echo to-stdout-2; exit 4").await.unwrap();
    let log = std::fs::read_to_string(&target.log).unwrap();
    for want in [
        "run script `echo to-stdout-1`",
        "to-stdout-1\n",
        "to-stderr-1\n",
        "<== exit 0",
    ] {
        assert!(log.contains(want), "{want:?} missing from:\n{log}");
    }
    for want in ["to-stdout-2\n", "<== exit 4"] {
        assert!(log.contains(want), "{want:?} missing from:\n{log}");
    }
    assert_eq!(log.matches("==> [").count(), 2, "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_past_its_timeout_fails_quickly() {
    let sshd = Sshd::start(None);
    // 3 s, not 1: a command's own round trips (temp file, run, read back) take over a second
    // on a loaded 2-core host, and the session must stay usable after the timeout.
    let timeouts = Timeouts {
        command: Duration::from_secs(3),
        ..quick()
    };
    let guest = SshGuest::connect(&sshd.target(), &timeouts).await.unwrap();
    let start = Instant::now();
    let err = guest.run("sleep 30").await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let GuestError::Timeout { node, what, secs } = &err else {
        panic!("expected a timeout, got {err:?}");
    };
    assert_eq!((node.as_str(), *secs), ("controller", 3));
    assert!(what.contains("sleep 30"), "{what}");
    let out = guest.run("echo still usable").await.unwrap();
    assert_eq!(out.stdout, "still usable\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_dropped_under_a_command_is_a_lost_session_naming_node_and_command() {
    let sshd = Sshd::start(None);
    let guest = SshGuest::connect(&sshd.target(), &quick()).await.unwrap();
    // As a reboot does: the node's sshd process of this connection dies under the command
    // (the script kills its own ancestor, a child of this test's sshd).
    let script = "echo cut-here\np=$PPID\nuntil grep -q '^sshd' /proc/$p/comm; do p=$(awk '{print $4}' /proc/$p/stat); done\nkill -9 $p\nsleep 5\n";
    let err = guest.run(script).await.unwrap_err();
    let GuestError::Lost { node, what } = &err else {
        panic!("expected a lost session, got {err:?}");
    };
    assert_eq!(
        (node.as_str(), what.as_str()),
        ("controller", "script `echo cut-here`")
    );
    assert!(
        err.to_string().starts_with(
            "controller: ssh connection lost during script `echo cut-here` (did the node reboot or stop?"
        ),
        "{err}"
    );
    let again = guest.run("echo again").await.unwrap_err();
    assert!(matches!(again, GuestError::Lost { .. }), "{again:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn connecting_to_a_closed_port_is_a_connect_error() {
    let mut target = Sshd::start(None).target();
    target.addr.set_port(free_port());
    let err = SshGuest::connect(&target, &quick()).await.unwrap_err();
    assert!(matches!(err, GuestError::Connect { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_ready_waits_for_the_marker_and_names_the_stage_on_timeout() {
    let sshd = Sshd::start(None);
    let target = sshd.target();
    let short = Timeouts {
        ready: Duration::from_secs(2),
        ..quick()
    };
    let err = wait_ready(&target, &short).await.unwrap_err();
    let GuestError::Timeout { what, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(what.contains("cloud-init has not finished"), "{what}");

    let marker = PathBuf::from(&target.ready_marker);
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        std::fs::write(marker, "").unwrap();
    });
    let start = Instant::now();
    let guest = wait_ready(&target, &quick()).await.unwrap();
    writer.join().unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(600),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(guest.run("echo ready").await.unwrap().stdout, "ready\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_ready_on_a_silent_port_says_so() {
    let mut target = Sshd::start(None).target();
    target.addr.set_port(free_port());
    let short = Timeouts {
        ready: Duration::from_secs(1),
        ..quick()
    };
    let start = Instant::now();
    let err = wait_ready(&target, &short).await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    let GuestError::Timeout { what, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(what.contains("no answer on the ssh port"), "{what}");
}

/// A network namespace of the test's own, deleted on drop.
struct Netns(String);

impl Netns {
    fn create() -> Netns {
        let name = format!("labssh{}", std::process::id());
        let (code, _, err) = common::run(Command::new("ip").args(["netns", "add", &name]));
        assert_eq!(
            code, 0,
            "ip netns add {name} (needs root and iproute2): {err}"
        );
        let ns = Netns(name);
        let (code, _, err) =
            common::run(Command::new("ip").args(["-n", &ns.0, "link", "set", "lo", "up"]));
        assert_eq!(code, 0, "{err}");
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_inside_a_network_namespace_is_reached_through_it() {
    let ns = Netns::create();
    let sshd = Sshd::start(Some(&ns.0));
    let mut target = sshd.target();
    std::fs::write(&target.ready_marker, "").unwrap();

    target.netns = None;
    let err = SshGuest::connect(&target, &quick()).await.unwrap_err();
    assert!(
        matches!(err, GuestError::Connect { .. }),
        "the host namespace has no sshd on 2222: {err:?}"
    );

    target.netns = Some(ns.0.clone());
    let guest = wait_ready(&target, &quick()).await.unwrap();
    let out = guest.run("readlink /proc/self/ns/net").await.unwrap();
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert!(out.success(), "{out:?}");
    assert_ne!(
        out.stdout.trim(),
        host.to_str().unwrap(),
        "the command ran in the namespace"
    );
    drop(guest);
    drop(sshd);
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_keys_are_errors_and_debug_hides_the_private_key() {
    let sshd = Sshd::start(None);
    let mut target = sshd.target();
    let shown = format!("{target:?}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    target.host_key = "ssh-ed25519 not-base64!".to_string();
    let err = SshGuest::connect(&target, &quick()).await.unwrap_err();
    assert!(
        err.to_string().contains("pinned host key does not parse"),
        "{err}"
    );
    let mut target = sshd.target();
    target.user_key = "-----BEGIN OPENSSH PRIVATE KEY-----\ngarbage\n".to_string();
    let err = SshGuest::connect(&target, &quick()).await.unwrap_err();
    assert!(err.to_string().contains("user key does not parse"), "{err}");
    assert!(!sshd.log().contains("Accepted"), "{}", sshd.log());
}

/// A one-connection server on 127.0.0.1 that answers like memcached: reads `stats\r\n`, writes
/// three STAT lines and END.
async fn fake_memcached() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = [0u8; 7];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"stats\r\n");
        s.write_all(b"STAT pid 4242\r\nSTAT uptime 7\r\nSTAT version 1.6.18\r\nEND\r\n")
            .await
            .unwrap();
    });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tcp_connection_from_the_node_goes_through_sshd_and_a_closed_port_is_a_tcp_error() {
    let sshd = Sshd::start(None);
    let guest = SshGuest::connect(&sshd.target(), &quick()).await.unwrap();
    let port = fake_memcached().await;
    let mut stream = guest.connect_tcp("127.0.0.1", port).await.unwrap();
    let stats = lab::provision::wire::memcached_stats(&mut stream)
        .await
        .unwrap();
    assert_eq!(stats[0], ("pid".to_string(), "4242".to_string()));
    let closed = free_port();
    match guest.connect_tcp("localhost", closed).await {
        Err(GuestError::Tcp { node, to, message }) => {
            assert_eq!(
                (node.as_str(), to),
                ("controller", format!("localhost:{closed}"))
            );
            assert_eq!(message, "connection failed");
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    let log = std::fs::read_to_string(sshd.path("logs/controller.log")).unwrap();
    assert!(
        log.contains(&format!("tcp to 127.0.0.1:{port}\nopen")),
        "{log}"
    );
    assert!(log.contains("connection failed"), "{log}");
    let out = guest.run("echo still here").await.unwrap();
    assert_eq!(
        out.stdout, "still here\n",
        "the session outlives a failed channel"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sshd_that_forbids_forwarding_is_named_in_the_error() {
    let sshd = Sshd::start_with(None, "AllowTcpForwarding no\n");
    let guest = SshGuest::connect(&sshd.target(), &quick()).await.unwrap();
    let port = sshd.addr.port();
    let err = guest.connect_tcp("127.0.0.1", port).await.err().unwrap();
    assert!(
        err.to_string()
            .contains("forbids tcp forwarding (AllowTcpForwarding)"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_port_probe_proves_reachability_first() {
    use lab::provision::verify::{Probe, measure};
    let sshd = Sshd::start(None);
    let guest = SshGuest::connect(&sshd.target(), &quick()).await.unwrap();
    let open = sshd.addr.port();
    let closed = free_port();
    let probe = |port, reach| Probe::Closed {
        host: "127.0.0.1".into(),
        port,
        open: reach,
    };
    let j = measure(&guest, &probe(closed, open), &secrets())
        .await
        .unwrap();
    let (passed, seen) = (j.passed, j.measured);
    assert!(passed, "{seen}");
    assert!(seen.contains("connection failed"), "{seen}");
    let j = measure(&guest, &probe(open, open), &secrets())
        .await
        .unwrap();
    let (passed, seen) = (j.passed, j.measured);
    assert!(!passed, "an open port fails: {seen}");
    let j = measure(&guest, &probe(closed, closed), &secrets())
        .await
        .unwrap();
    let (passed, seen) = (j.passed, j.measured);
    assert!(!passed, "an unreachable host proves nothing: {seen}");
    assert!(seen.starts_with("cannot prove it"), "{seen}");
}

/// A key pair made by ssh-keygen in `dir`: (private, public) OpenSSH text.
fn keygen(dir: &Path, name: &str) -> (String, String) {
    let path = dir.join(name);
    let (code, _, err) = common::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&path),
    );
    assert_eq!(code, 0, "ssh-keygen (openssh-client): {err}");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    (read(&path), read(&path.with_extension("pub")))
}

/// The libvirt host of a remote URI: an sshd with its own host key, accepting a login key
/// that ssh-keygen made (`home/id_login`), logging its direct-tcpip requests.
struct LibvirtHost {
    sshd: Sshd,
    home: tempfile::TempDir,
    host_public: String,
}

impl LibvirtHost {
    fn start() -> LibvirtHost {
        LibvirtHost::start_with("")
    }

    /// [`LibvirtHost::start`] with `extra` sshd configuration first.
    fn start_with(extra: &str) -> LibvirtHost {
        let home = tempfile::tempdir().unwrap();
        let (host_private, host_public) = keygen(home.path(), "host_key");
        let (_, login_public) = keygen(home.path(), "id_login");
        let keys = (host_private.as_str(), login_public.as_str());
        let sshd = Sshd::launch(None, &format!("{extra}LogLevel DEBUG1\n"), keys);
        LibvirtHost {
            sshd,
            home,
            host_public,
        }
    }

    /// `[127.0.0.1]:PORT KEY`, the known_hosts line of this host with `key`.
    fn known_line(&self, key: &str) -> String {
        let key: Vec<&str> = key.split_whitespace().take(2).collect();
        format!("[127.0.0.1]:{} {}\n", self.sshd.addr.port(), key.join(" "))
    }

    /// The user's ssh as the test sets it: `config`, this home, `known_hosts` text, no agent.
    fn user_ssh(&self, config: &str, known_hosts: &str) -> lab::ssh::UserSsh {
        let file = common::write_temp(self.home.path(), "known_hosts", known_hosts);
        lab::ssh::UserSsh {
            config: config.to_string(),
            home: self.home.path().to_path_buf(),
            local_user: current_user(),
            known_hosts: file,
            agent: None,
        }
    }

    /// A config naming this host `libvirt` (its address, port and login key).
    fn config(&self) -> String {
        format!(
            "Host libvirt\n  HostName 127.0.0.1\n  Port {}\n  IdentityFile ~/id_login\n",
            self.sshd.addr.port()
        )
    }

    /// `target` reached through a jump to `dest` with `user`.
    fn through(target: &mut Target, dest: &str, user: lab::ssh::UserSsh) {
        let uri = format!("qemu+ssh://{dest}/system");
        let dest = lab::ssh::config::remote_host(&uri).unwrap().unwrap();
        target.via = Some(std::sync::Arc::new(lab::ssh::Jump::new(dest, user)));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_on_a_remote_libvirt_host_is_reached_through_its_sshd() {
    let host = LibvirtHost::start();
    let node = Sshd::start(None);
    let user = host.user_ssh(&host.config(), &host.known_line(&host.host_public));
    let mut target = node.target();
    LibvirtHost::through(&mut target, "libvirt", user);
    std::fs::write(&target.ready_marker, "").unwrap();
    let guest = wait_ready(&target, &quick()).await.unwrap();
    let out = guest.run("echo through the host").await.unwrap();
    assert_eq!(out.stdout, "through the host\n", "{out:?}");
    // A second node's connection shares the one session to the host.
    let again = SshGuest::connect(&target, &quick()).await.unwrap();
    assert_eq!(again.run("id -u").await.unwrap().stdout, "0\n");
    let log = host.sshd.log();
    let port = node.addr.port();
    assert_eq!(log.matches("Accepted publickey").count(), 1, "{log}");
    assert!(
        log.contains(&format!("target 127.0.0.1 port {port}")),
        "the host's sshd opened the node's connection: {log}"
    );
    let shown = format!("{target:?}");
    assert!(
        shown.contains("Jump") && !shown.contains("PRIVATE KEY"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_jump_hops_are_followed_to_the_libvirt_host() {
    let host = LibvirtHost::start();
    let node = Sshd::start(None);
    let port = host.sshd.addr.port();
    // `libvirt` is reached through `gate` (the same sshd: two hops, each checked and logged in).
    let config = format!(
        "Host libvirt\n  ProxyJump gate\nHost gate\n  ProxyJump none\nHost *\n  HostName 127.0.0.1\n  Port {port}\n  IdentityFile ~/id_login\n"
    );
    let user = host.user_ssh(&config, &host.known_line(&host.host_public));
    let mut target = node.target();
    LibvirtHost::through(&mut target, "libvirt", user);
    let guest = SshGuest::connect(&target, &quick()).await.unwrap();
    assert_eq!(
        guest.run("echo two hops").await.unwrap().stdout,
        "two hops\n"
    );
    let log = host.sshd.log();
    assert_eq!(log.matches("Accepted publickey").count(), 2, "{log}");
    assert!(
        log.contains(&format!("target 127.0.0.1 port {port}")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_or_unknown_host_key_of_the_libvirt_host_is_a_clear_final_error() {
    use lab::guest::JumpKind;
    let host = LibvirtHost::start();
    let node = Sshd::start(None);
    let wrong = host.known_line(&secrets().host_keys["compute1"].public_openssh);
    for (known, changed) in [(wrong.as_str(), true), ("", false)] {
        let user = host.user_ssh(&host.config(), known);
        let file = user.known_hosts.display().to_string();
        let mut target = node.target();
        LibvirtHost::through(&mut target, "libvirt", user);
        let start = Instant::now();
        let err = wait_ready(&target, &quick()).await.unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5), "not retried");
        let GuestError::Jump {
            node,
            host: jumped,
            kind,
            ..
        } = &err
        else {
            panic!("expected a jump error, got {err:?}");
        };
        assert_eq!(node, "controller");
        assert_eq!(jumped, "127.0.0.1");
        let text = err.to_string();
        assert!(text.contains(&file), "{text}");
        match kind {
            JumpKind::ChangedKey { line: 1 } if changed => {
                assert!(text.contains("`ssh-keygen -R 127.0.0.1`"), "{text}")
            }
            JumpKind::UnknownHost if !changed => {
                let login = format!(
                    "`ssh -p {} {}@libvirt`",
                    host.sshd.addr.port(),
                    current_user()
                );
                assert!(text.contains(&login), "{text}")
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(!host.sshd.log().contains("Accepted"), "{}", host.sshd.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_login_or_a_closed_node_port_through_the_host_say_what_failed() {
    let host = LibvirtHost::start();
    let node = Sshd::start(None);
    let known = host.known_line(&host.host_public);
    // No identity file the host accepts: the login is refused, naming what was tried.
    let config = host.config().replace("~/id_login", "~/missing");
    let mut target = node.target();
    LibvirtHost::through(&mut target, "libvirt", host.user_ssh(&config, &known));
    let err = SshGuest::connect(&target, &quick()).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            GuestError::Jump {
                kind: lab::guest::JumpKind::Auth,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        text.contains("refused (tried: no agent, no identity file)"),
        "{text}"
    );
    // A node port nobody listens on: a connect error (retried while the node boots).
    let mut target = node.target();
    target.addr.set_port(free_port());
    LibvirtHost::through(
        &mut target,
        "libvirt",
        host.user_ssh(&host.config(), &known),
    );
    let err = SshGuest::connect(&target, &quick()).await.unwrap_err();
    assert!(matches!(err, GuestError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("could not connect to it: is the node up?"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_libvirt_host_that_forbids_forwarding_is_a_final_error() {
    let host = LibvirtHost::start_with("AllowTcpForwarding no\n");
    let node = Sshd::start(None);
    let known = host.known_line(&host.host_public);
    let mut target = node.target();
    LibvirtHost::through(
        &mut target,
        "libvirt",
        host.user_ssh(&host.config(), &known),
    );
    let start = Instant::now();
    let err = wait_ready(&target, &quick()).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5), "not retried");
    assert!(
        matches!(
            err,
            GuestError::Jump {
                kind: lab::guest::JumpKind::Forwarding,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("set `AllowTcpForwarding yes` there"),
        "{err}"
    );
}
