//! A node's clock over one open channel ([`ClockLine`]): readings whose round trip is a few
//! milliseconds, and steps relative to the node's own clock, so the host's time does not have
//! to cross a command's start (a second or more on a loaded TCG guest).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use super::SshGuest;
use super::exec::{bounded, channel_error, start};
use super::log::{append_log, header};
use crate::clock::{CLOCK_LINE, ClockReading, best_reading, parse_clock};
use crate::guest::GuestError;
use crate::shell::quote;

/// How long one request on the line may take to be answered.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

/// [`CLOCK_LINE`] running on a node: `read` and `step` requests, one answer line each.
pub struct ClockLine {
    node: String,
    log: std::path::PathBuf,
    read: ChannelReadHalf,
    write: ChannelWriteHalf<Msg>,
    pending: Vec<u8>,
    /// What the node wrote on stderr so far, for the error of a bad answer.
    stderr: String,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

impl SshGuest {
    /// Starts [`CLOCK_LINE`] as root on a channel of its own (logged as one command) and
    /// returns once it answers.
    pub async fn clock_line(&self) -> Result<ClockLine, GuestError> {
        let node = &self.target.node;
        let command = self.as_root(&format!("bash -c {}", quote(CLOCK_LINE)));
        let what = ("the clock line", command.as_str());
        let open = async { start(&*self.session.lock().await, node, what).await };
        let channel = bounded(node, "the clock line", self.timeouts.connect, open).await;
        let outcome = match &channel {
            Ok(_) => "open".to_string(),
            Err(e) => e.to_string(),
        };
        self.log(&format!("{}{outcome}\n", header(node, "clock line")));
        let (read, write) = channel?.split();
        let mut line = ClockLine {
            node: node.clone(),
            log: self.target.log.clone(),
            read,
            write,
            pending: Vec::new(),
            stderr: String::new(),
        };
        // The first answer waits for the shell to start: not a reading to keep.
        line.read().await?;
        Ok(line)
    }
}

impl ClockLine {
    /// One reading of the node's clock against the host's.
    pub async fn read(&mut self) -> Result<ClockReading, GuestError> {
        let sent = now();
        let answer = self.ask("read\n").await?;
        let received = now();
        let guest = parse_clock(&answer).ok_or_else(|| self.error(&answer))?;
        Ok(ClockReading {
            sent,
            guest,
            received,
        })
    }

    /// `n` readings; the one with the shortest round trip.
    pub async fn best_of(&mut self, n: usize) -> Result<ClockReading, GuestError> {
        let mut readings = Vec::with_capacity(n);
        for _ in 0..n.max(1) {
            readings.push(self.read().await?);
        }
        Ok(best_reading(&readings).expect("at least one reading"))
    }

    /// Moves the node's clock by `by` seconds (negative: back), relative to its own clock;
    /// logged with the clock it answers.
    pub async fn step(&mut self, by: f64) -> Result<(), GuestError> {
        let answer = self.ask(&format!("step {by:.9}\n")).await;
        let what = format!("clock line: step {by:+.6} s");
        let shown = match &answer {
            Ok(a) => a.clone(),
            Err(e) => e.to_string(),
        };
        append_log(
            &self.log,
            &format!("{}{shown}\n", header(&self.node, &what)),
        );
        let answer = answer?;
        parse_clock(&answer)
            .map(drop)
            .ok_or_else(|| self.error(&answer))
    }

    fn error(&self, answer: &str) -> GuestError {
        let stderr = self.stderr.trim();
        let stderr = if stderr.is_empty() {
            String::new()
        } else {
            format!(" ({stderr})")
        };
        channel_error(&self.node, format!("clock line: {}{stderr}", answer.trim()))
    }

    /// Sends `request` and returns the answer line.
    async fn ask(&mut self, request: &str) -> Result<String, GuestError> {
        let node = self.node.clone();
        let exchange = async {
            self.write
                .data(request.as_bytes())
                .await
                .map_err(|e| channel_error(&node, format!("clock line: {e}")))?;
            self.answer().await
        };
        bounded(&node, "a clock reading", ANSWER_WITHIN, exchange).await
    }

    async fn answer(&mut self) -> Result<String, GuestError> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                return Ok(String::from_utf8_lossy(&line).trim_end().to_string());
            }
            match self.read.wait().await {
                Some(ChannelMsg::Data { data }) => self.pending.extend_from_slice(&data),
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    self.stderr.push_str(&String::from_utf8_lossy(&data));
                }
                Some(ChannelMsg::Close | ChannelMsg::Eof) | None => {
                    return Err(self.error("closed before answering: is the node still up?"));
                }
                Some(_) => {}
            }
        }
    }

    /// Ends the line (EOF: the loop on the node returns).
    pub async fn close(self) {
        let _ = self.write.eof().await;
        let _ = self.write.close().await;
    }
}
