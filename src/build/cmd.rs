//! External commands as data: a program, its arguments, optional stdin and environment.
//! Built by pure functions (so tests can compare them), run in one place, which captures
//! stderr into the error and names the Debian package of a missing program.

use std::fmt;
use std::io::Write as _;
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
        self.run_stoppable(true)
    }

    /// Runs the command to completion even when a stop is asked for: for the cleanup that
    /// a stop needs (unmount, detach).
    pub fn run_always(&self) -> Result<String, CommandError> {
        self.run_stoppable(false)
    }

    fn run_stoppable(&self, stoppable: bool) -> Result<String, CommandError> {
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
        if let (Some(text), Some(mut pipe)) = (&self.stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())
                .map_err(|e| self.failed(format!("cannot write its stdin: {e}")))?;
        }
        let out = wait_or_stop(child, stoppable).map_err(|e| match e {
            Waited::Stopped => CommandError::Interrupted {
                command: self.to_string(),
            },
            Waited::Io(e) => self.failed(format!("cannot wait for it: {e}")),
        })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(self.failed(format!("{}: {}", out.status, tail(&stderr, 40))))
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

enum Waited {
    Stopped,
    Io(std::io::Error),
}

/// Waits for `child`, collecting its output; when a stop is asked for
/// ([`crate::interrupt`]) it is sent SIGTERM (so mmdebstrap and friends undo their own
/// mounts), then SIGKILL after 20 s.
fn wait_or_stop(
    mut child: std::process::Child,
    stoppable: bool,
) -> Result<std::process::Output, Waited> {
    use std::io::Read;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let mut stopping: Option<std::time::Instant> = None;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(Waited::Io)? {
            break status;
        }
        if stoppable && crate::interrupt::interrupted() {
            let since = *stopping.get_or_insert_with(|| {
                // SAFETY: kill(2) on our own child's pid.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
                std::time::Instant::now()
            });
            if since.elapsed() > std::time::Duration::from_secs(20) {
                let _ = child.kill();
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let out = std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    if stopping.is_some() {
        return Err(Waited::Stopped);
    }
    Ok(out)
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
}
