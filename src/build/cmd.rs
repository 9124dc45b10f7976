//! External commands as data: a program, its arguments, optional stdin and environment.
//! Built by pure functions (so tests can compare them), run in one place, which captures
//! stderr into the error and names the Debian package of a missing program.

use std::fmt;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One command line, not yet run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    /// Text written to the command's stdin (then closed); `None` leaves stdin empty.
    pub stdin: Option<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

impl Cmd {
    /// A command running `program` with no arguments yet.
    pub fn new(program: &str) -> Cmd {
        Cmd {
            program: program.to_string(),
            args: Vec::new(),
            stdin: None,
            env: Vec::new(),
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, a: impl AsRef<str>) -> Cmd {
        self.args.push(a.as_ref().to_string());
        self
    }

    /// Appends a path argument (lossy for non-UTF-8 paths, which `lab` never creates).
    pub fn path(self, p: &Path) -> Cmd {
        let s = p.to_string_lossy().into_owned();
        self.arg(s)
    }

    /// Appends several arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// Feeds `text` to the command's stdin.
    pub fn stdin(mut self, text: impl Into<String>) -> Cmd {
        self.stdin = Some(text.into());
        self
    }

    /// Sets an environment variable for the command.
    pub fn env(mut self, key: &str, value: &str) -> Cmd {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs the command to completion; its stdout on success. A stop asked for meanwhile
    /// ([`crate::interrupt`]) ends it.
    pub fn run(&self) -> Result<String, CommandError> {
        self.run_stoppable(true, &mut |_| {})
    }

    /// Runs the command to completion even when a stop is asked for: for the cleanup that
    /// a stop needs (unmount, detach).
    pub fn run_always(&self) -> Result<String, CommandError> {
        self.run_stoppable(false, &mut |_| {})
    }

    /// Runs the command to completion like [`Cmd::run`], handing each piece of its stdout
    /// to `each` as it comes, split at `\r` and `\n` (where progress meters end a line).
    pub fn run_each(&self, each: &mut dyn FnMut(&str)) -> Result<String, CommandError> {
        self.run_stoppable(true, each)
    }

    fn run_stoppable(
        &self,
        stoppable: bool,
        each: &mut dyn FnMut(&str),
    ) -> Result<String, CommandError> {
        let program = find_program(&self.program).ok_or_else(|| self.missing())?;
        let mut child = Command::new(program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.failed(format!("cannot start: {e}")))?;
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let stderr = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = stderr.read_to_end(&mut text);
            text
        });
        if let (Some(text), Some(mut pipe)) = (&self.stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())
                .map_err(|e| self.failed(format!("cannot write its stdin: {e}")))?;
        }
        let stopper = stoppable.then(|| Stopper::watch(child.id()));
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let (mut all, mut piece, mut buf) = (Vec::new(), Vec::new(), [0u8; 4096]);
        loop {
            let n = match stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.failed(format!("cannot read its output: {e}"))),
            };
            for &b in &buf[..n] {
                if b == b'\r' || b == b'\n' {
                    if !piece.is_empty() {
                        each(&String::from_utf8_lossy(&piece));
                        piece.clear();
                    }
                } else {
                    piece.push(b);
                }
            }
            all.extend_from_slice(&buf[..n]);
        }
        if !piece.is_empty() {
            each(&String::from_utf8_lossy(&piece));
        }
        let status = child
            .wait()
            .map_err(|e| self.failed(format!("cannot wait for it: {e}")))?;
        let stderr = stderr.join().unwrap_or_default();
        if stopper.is_some_and(|s| s.finish()) {
            return Err(CommandError::Interrupted {
                command: self.to_string(),
            });
        }
        if status.success() {
            return Ok(String::from_utf8_lossy(&all).into_owned());
        }
        let stderr = String::from_utf8_lossy(&stderr);
        Err(self.failed(format!("{status}: {}", tail(&stderr, 40))))
    }

    fn missing(&self) -> CommandError {
        CommandError::Missing {
            program: self.program.clone(),
            package: package_of(&self.program),
        }
    }

    fn failed(&self, detail: String) -> CommandError {
        CommandError::Failed {
            command: self.to_string(),
            detail,
        }
    }
}

impl fmt::Display for Cmd {
    /// The command as a shell would show it (arguments with spaces are quoted).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.program)?;
        for a in &self.args {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'') {
                write!(f, " '{}'", a.replace('\'', r"'\''"))?;
            } else {
                write!(f, " {a}")?;
            }
        }
        Ok(())
    }
}

/// Ends a running command when a stop is asked for ([`crate::interrupt`]): SIGTERM first
/// (so mmdebstrap and friends undo their own mounts), SIGKILL 20 s later.
struct Stopper {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<bool>>,
}

impl Stopper {
    fn watch(pid: u32) -> Stopper {
        use std::sync::atomic::Ordering;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = done.clone();
        let thread = std::thread::spawn(move || {
            let mut since: Option<std::time::Instant> = None;
            while !seen.load(Ordering::SeqCst) {
                if crate::interrupt::interrupted() {
                    let t = *since.get_or_insert_with(|| {
                        // SAFETY: kill(2) on our own child, which has not been waited for.
                        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                        std::time::Instant::now()
                    });
                    if t.elapsed() > std::time::Duration::from_secs(20) {
                        // SAFETY: as above.
                        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            since.is_some()
        });
        Stopper {
            done,
            thread: Some(thread),
        }
    }

    /// Whether the command was stopped; call once it has been waited for.
    fn finish(mut self) -> bool {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread
            .take()
            .is_some_and(|t| t.join().unwrap_or(false))
    }
}

impl Drop for Stopper {
    /// An early return: the watcher ends (it never signals a pid nobody waits for).
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Why a command did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The program is not installed (not in PATH, /usr/sbin or /sbin).
    #[error("`{program}` is not installed: install it with `apt-get install {package}`")]
    Missing {
        program: String,
        package: &'static str,
    },
    /// It ran and failed, or could not be started; `detail` holds its exit status and the
    /// end of its stderr.
    #[error("`{command}` failed: {detail}")]
    Failed { command: String, detail: String },
    /// A stop was asked for (SIGINT, SIGTERM, SIGHUP) while it ran: it was ended.
    #[error("interrupted while `{command}` ran: it was stopped")]
    Interrupted { command: String },
}

/// The Debian package that ships `program` on the host.
pub fn package_of(program: &str) -> &'static str {
    match program {
        "mmdebstrap" => "mmdebstrap",
        "sfdisk" => "fdisk",
        "losetup" | "mount" | "umount" => "mount",
        "partx" => "util-linux",
        "mkfs.ext4" | "e2fsck" => "e2fsprogs",
        "qemu-img" => "qemu-utils",
        "tar" => "tar",
        "chroot" | "mknod" => "coreutils",
        _ => "the package that provides it",
    }
}

/// Looks `program` up in PATH, then in the sbin directories a non-login root shell may lack.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The last `lines` lines of `text`, trimmed: enough of a tool's stderr to act on.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let c = Cmd::new("sfdisk").arg("--quiet").arg("a b").arg("it's");
        assert_eq!(c.to_string(), r"sfdisk --quiet 'a b' 'it'\''s'");
    }

    #[test]
    fn missing_program_names_its_package() {
        let err = Cmd::new("sfdisk-that-does-not-exist").run().unwrap_err();
        assert!(matches!(err, CommandError::Missing { .. }), "{err}");
        assert_eq!(package_of("sfdisk"), "fdisk");
        assert_eq!(package_of("qemu-img"), "qemu-utils");
        assert_eq!(package_of("partx"), "util-linux");
    }

    #[test]
    fn failure_carries_stderr_and_success_stdout() {
        let err = Cmd::new("sh")
            .args(["-c", "echo oops >&2; exit 3"])
            .run()
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("oops") && text.contains('3'), "{text}");
        let out = Cmd::new("cat").stdin("fed").run().unwrap();
        assert_eq!(out, "fed");
    }

    #[test]
    fn output_comes_in_pieces_split_at_carriage_returns_and_newlines() {
        let mut pieces = Vec::new();
        let out = Cmd::new("printf")
            .arg(r"  (0.00/100%%)\r  (50.00/100%%)\r\ndone")
            .run_each(&mut |p| pieces.push(p.to_string()))
            .unwrap();
        assert_eq!(pieces, ["  (0.00/100%)", "  (50.00/100%)", "done"]);
        assert_eq!(out, "  (0.00/100%)\r  (50.00/100%)\r\ndone");
        let err = Cmd::new("sh")
            .args(["-c", "echo half; echo broken >&2; exit 2"])
            .run_each(&mut |_| {})
            .unwrap_err();
        assert!(err.to_string().contains("broken"), "{err}");
    }
}
