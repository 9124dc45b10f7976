//! The node's command log ([`super::Target::log`]): a header per command, its stdout and
//! stderr, its exit status. A log that cannot be written is checked once at connect and then
//! never fails a command.

use std::io::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::exec::channel_error;
use super::{SshGuest, Target};
use crate::guest::{GuestError, Output};

/// Creates the log's directory and checks the log can be opened for appending.
pub(super) fn open_log(t: &Target) -> Result<(), GuestError> {
    if let Some(dir) = t.log.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| log_error(t, &e))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&t.log)
        .map(drop)
        .map_err(|e| log_error(t, &e))
}

fn log_error(t: &Target, e: &std::io::Error) -> GuestError {
    channel_error(
        &t.node,
        format!(
            "cannot write the log {}: {e}: check the state directory's permissions",
            t.log.display()
        ),
    )
}

/// Appends to the node's log; a log that cannot be written is not worth failing a command.
pub(super) fn append_log(path: &Path, text: &str) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Ok(mut f) = file {
        let _ = f.write_all(text.as_bytes());
    }
}

/// One entry's first line: `==> [unix seconds] node: what`.
pub(super) fn header(node: &str, what: &str) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("==> [{secs}] {node}: {what}\n")
}

impl SshGuest {
    pub(super) fn log(&self, text: &str) {
        append_log(&self.target.log, text);
    }

    /// Logs a finished command: its header, stdout, stderr after a marker, exit or error.
    pub(super) fn log_output(&self, what: &str, result: &Result<Output, GuestError>) {
        let mut text = header(&self.target.node, what);
        match result {
            Ok(out) => {
                text.push_str(&out.stdout);
                if !out.stdout.is_empty() && !out.stdout.ends_with('\n') {
                    text.push('\n');
                }
                if !out.stderr.is_empty() {
                    text.push_str("--- stderr\n");
                    text.push_str(&out.stderr);
                    if !out.stderr.ends_with('\n') {
                        text.push('\n');
                    }
                }
                text.push_str(&format!("<== exit {}\n", out.status));
            }
            Err(e) => text.push_str(&format!("<== error: {e}\n")),
        }
        self.log(&text);
    }
}
