//! Command framing: how a script and its files travel ([`run_script`]), starting a command
//! on a channel, feeding its stdin and collecting its [`Output`], each bounded in time.

use std::future::Future;
use std::time::{Duration, Instant};

use russh::client;
use russh::{Channel, ChannelMsg, ChannelReadHalf, Sig};

use super::transport::Session;
use crate::guest::{FileWrite, GuestError, Output};
use crate::shell::quote;

/// The receiver every script travels through ([`run_script`]): the files it needs, then the
/// script, on stdin.
const RUN_SCRIPT: &str = include_str!("run-script.sh");

/// The status and the stderr line the receiver ends with when a file cannot be written.
const WRITE_FAILED: (u32, &str) = (125, "@@lab-write-failed@@ ");

/// The command that runs a script sent with [`script_stdin`]: `bash -c` with the receiver.
pub(super) fn run_script() -> String {
    format!("bash -c {}", quote(RUN_SCRIPT))
}

/// The stdin of [`run_script`]: each file as a line `MODE LENGTH PATH` and its bytes, a line
/// `-`, then the script. A path holding a newline would break the framing: refused.
pub(super) fn script_stdin(
    node: &str,
    files: &[FileWrite<'_>],
    script: &str,
) -> Result<Vec<u8>, GuestError> {
    let mut stdin = Vec::new();
    for f in files {
        if f.path.contains('\n') {
            return Err(channel_error(
                node,
                format!("cannot write {:?}: a path with a newline", f.path),
            ));
        }
        let line = format!("{:04o} {} {}\n", f.mode, f.content.len(), f.path);
        stdin.extend_from_slice(line.as_bytes());
        stdin.extend_from_slice(f.content);
    }
    stdin.extend_from_slice(b"-\n");
    stdin.extend_from_slice(script.as_bytes());
    Ok(stdin)
}

/// The file the receiver could not write, when that is how `out` ended.
pub(super) fn write_failed(out: &Output) -> Option<&str> {
    if out.status != WRITE_FAILED.0 {
        return None;
    }
    out.stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(WRITE_FAILED.1))
}

pub(super) fn channel_error(node: &str, message: String) -> GuestError {
    GuestError::Channel {
        node: node.to_string(),
        message,
    }
}

/// `fut`, bounded by `limit`; on expiry a [`GuestError::Timeout`] naming `what`.
pub(super) async fn bounded<T>(
    node: &str,
    what: &str,
    limit: Duration,
    fut: impl Future<Output = Result<T, GuestError>>,
) -> Result<T, GuestError> {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| Err(timeout_error(node, what, limit)))
}

fn timeout_error(node: &str, what: &str, limit: Duration) -> GuestError {
    GuestError::Timeout {
        node: node.to_string(),
        what: what.to_string(),
        secs: limit.as_secs_f64().ceil() as u64,
    }
}

/// The first non-blank line of a script, to name it in messages and the log.
pub(super) fn first_line(script: &str) -> &str {
    script
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// The connection dropped under `what`.
fn lost(node: &str, what: &str) -> GuestError {
    GuestError::Lost {
        node: node.to_string(),
        what: what.to_string(),
    }
}

/// Opens a session channel on `handle` and starts `command` (named `what`) on it.
pub(super) async fn start(
    handle: &Session,
    node: &str,
    (what, command): (&str, &str),
) -> Result<Channel<client::Msg>, GuestError> {
    let fail = |doing: &str, e: russh::Error| {
        if handle.is_closed() {
            return lost(node, what);
        }
        channel_error(node, format!("{doing}: {e}: is the node still up?"))
    };
    let channel = handle
        .channel_open_session()
        .await
        .map_err(|e| fail("cannot open a session channel", e))?;
    channel
        .exec(true, command)
        .await
        .map_err(|e| fail("cannot start the command", e))?;
    Ok(channel)
}

/// Feeds `stdin` then EOF to a started command and collects its output and status, within
/// `limit`; past it, the command is sent SIGTERM and its channel closed.
pub(super) async fn drive(
    channel: Channel<client::Msg>,
    node: &str,
    stdin: &[u8],
    (what, limit): (&str, Duration),
) -> Result<Output, GuestError> {
    let (mut read, write) = channel.split();
    let send = async {
        write.data(stdin).await?;
        write.eof().await
    };
    let Ok((sent, out)) =
        tokio::time::timeout(limit, async { tokio::join!(send, collect(&mut read)) }).await
    else {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = write.signal(Sig::TERM).await;
            write.close().await
        })
        .await;
        return Err(timeout_error(node, what, limit));
    };
    let out = out.ok_or_else(|| lost(node, what))?;
    match sent {
        // A failed command may close its stdin early: its status tells the story.
        Err(e) if out.success() => Err(channel_error(node, format!("sending stdin failed: {e}"))),
        _ => Ok(out),
    }
}

/// Runs `command` with `stdin` on a new channel of `handle`, within `limit`.
pub(super) async fn exec(
    handle: &Session,
    node: &str,
    command: &str,
    stdin: &[u8],
    bound: (&str, Duration),
) -> Result<Output, GuestError> {
    let started = Instant::now();
    let open = start(handle, node, (bound.0, command));
    let channel = bounded(node, bound.0, bound.1, open).await?;
    let left = bound.1.saturating_sub(started.elapsed());
    drive(
        channel,
        node,
        stdin,
        (bound.0, left.max(Duration::from_millis(1))),
    )
    .await
}

/// Reads a channel to its end: stdout, stderr (extended data 1), exit status; `None` when
/// the connection closed before an exit status came.
async fn collect(read: &mut ChannelReadHalf) -> Option<Output> {
    let (mut stdout, mut stderr, mut status) = (Vec::new(), Vec::new(), None);
    while let Some(msg) = read.wait().await {
        match msg {
            ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
            ChannelMsg::ExtendedData { data, ext: 1 } => stderr.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                stderr
                    .extend_from_slice(format!("\nkilled by signal {signal_name:?}\n").as_bytes());
                status = Some(255);
            }
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    Some(Output {
        status: status?,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}
