//! Readiness and reboots: [`wait_ready`] (port, login, cloud-init's marker under one
//! deadline), the boot id, and a reboot that waits for a login into a new boot.

use std::time::Instant;

use super::exec::{bounded, channel_error, exec};
use super::log::header;
use super::transport::{Session, open_session, parse_keys};
use super::{SshGuest, Target, Timeouts};
use crate::guest::{GuestError, Output};
use crate::shell::quote;

/// The file cloud-init writes when its last stage has finished: the default readiness marker.
pub const BOOT_FINISHED: &str = "/var/lib/cloud/instance/boot-finished";

const BOOT_ID: &str = "cat /proc/sys/kernel/random/boot_id";

/// The node's current boot id, read within `limit`.
async fn boot_id(
    handle: &Session,
    node: &str,
    limit: std::time::Duration,
) -> Result<String, GuestError> {
    let out = exec(handle, node, BOOT_ID, b"", ("reading the boot id", limit)).await?;
    parse_boot_id(node, &out)
}

fn parse_boot_id(node: &str, out: &Output) -> Result<String, GuestError> {
    if !out.success() || out.stdout.trim().is_empty() {
        return Err(channel_error(
            node,
            format!("cannot read the boot id: {}", out.tail(3)),
        ));
    }
    Ok(out.stdout.trim().to_string())
}

impl SshGuest {
    /// The current boot id of the node.
    pub async fn boot_id(&self) -> Result<String, GuestError> {
        let out = self.exec("reading the boot id", BOOT_ID, b"").await?;
        parse_boot_id(&self.target.node, &out)
    }

    /// Whether the readiness marker exists (no sudo: the marker is world-readable).
    async fn marker_present(&self) -> Result<bool, GuestError> {
        let command = format!("test -f {}", quote(&self.target.ready_marker));
        let out = self.exec("readiness check", &command, b"").await?;
        Ok(out.success())
    }

    /// Reboots the node and swaps in a session to its new boot ([`crate::guest::Guest::reboot`]).
    pub(super) async fn reboot_and_reconnect(&self) -> Result<(), GuestError> {
        let before = self.boot_id().await?;
        let deadline = Instant::now() + self.timeouts.reboot;
        let command = self.as_root("systemctl reboot");
        self.log(&header(
            &self.target.node,
            &format!("reboot (boot id {before})"),
        ));
        let bound = ("the reboot command", self.timeouts.connect);
        let issued = {
            let session = self.session.lock().await;
            exec(&session, &self.target.node, &command, b"", bound).await
        };
        // The connection usually drops under the command (an error or a timeout here is
        // expected); a command that answers with a failure did not reboot anything.
        if let Some(out) = issued.ok().filter(|o| !o.success()) {
            let message = format!(
                "`{command}` failed with exit {}: {}",
                out.status,
                out.tail(3)
            );
            return Err(channel_error(&self.target.node, message));
        }
        let fresh = self.reconnect_after(&before, deadline).await?;
        let old = std::mem::replace(&mut *self.session.lock().await, fresh);
        drop(old);
        self.log(&header(&self.target.node, "back after reboot"));
        Ok(())
    }

    /// Logs in again until the node answers with a boot id other than `before`.
    async fn reconnect_after(
        &self,
        before: &str,
        deadline: Instant,
    ) -> Result<Session, GuestError> {
        let t = &self.target;
        let keys = parse_keys(t)?;
        let mut last = "the old boot still answered".to_string();
        loop {
            let Some(left) = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
            else {
                return Err(GuestError::Timeout {
                    node: t.node.clone(),
                    what: format!("reboot (last: {last}; see the serial console)"),
                    secs: self.timeouts.reboot.as_secs(),
                });
            };
            let timeouts = Timeouts {
                connect: self.timeouts.connect.min(left),
                ..self.timeouts
            };
            match open_session(t, &keys, &timeouts).await {
                Ok(handle) => match boot_id(&handle, &t.node, left).await {
                    Ok(id) if id != before => return Ok(handle),
                    Ok(_) => last = "the old boot still answered".to_string(),
                    Err(e) => last = e.to_string(),
                },
                Err(e @ (GuestError::HostKey { .. } | GuestError::Jump { .. })) => return Err(e),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(self.timeouts.poll.min(left)).await;
        }
    }
}

/// How far [`wait_ready`] got, for its timeout message.
struct Reached {
    stage: &'static str,
    last: String,
}

impl Reached {
    fn note(&mut self, e: &GuestError) {
        self.stage = match e {
            GuestError::Connect { .. } => "no answer on the ssh port yet",
            GuestError::Auth { .. } => "the ssh port answers, login refused",
            GuestError::Timeout { .. }
            | GuestError::Channel { .. }
            | GuestError::Lost { .. }
            | GuestError::Tcp { .. } => "the ssh port answers, no working session",
            GuestError::HostKey { .. } => "wrong host key",
            GuestError::Jump { .. } => "the libvirt host not reached",
        };
        self.last = e.to_string();
    }
}

/// Waits, under one deadline (`timeouts.ready`), for the node's ssh port to answer, the login
/// to work and cloud-init to have finished ([`Target::ready_marker`] exists); returns the
/// logged-in session. A wrong host key fails at once. The timeout error names the stage
/// reached and the last error seen.
pub async fn wait_ready(target: &Target, timeouts: &Timeouts) -> Result<SshGuest, GuestError> {
    let deadline = Instant::now() + timeouts.ready;
    let mut reached = Reached {
        stage: "no answer on the ssh port yet",
        last: "none".to_string(),
    };
    let mut guest: Option<SshGuest> = None;
    while let Some(left) = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
    {
        let bounded_timeouts = Timeouts {
            connect: timeouts.connect.min(left),
            command: timeouts.command.min(left),
            ..*timeouts
        };
        match guest.take() {
            None => match SshGuest::connect(target, &bounded_timeouts).await {
                Ok(g) => {
                    guest = Some(g);
                    continue;
                }
                Err(e @ (GuestError::HostKey { .. } | GuestError::Jump { .. })) => return Err(e),
                Err(e) => reached.note(&e),
            },
            Some(g) => {
                match bounded(&target.node, "readiness check", left, g.marker_present()).await {
                    Ok(true) => {
                        return Ok(SshGuest {
                            timeouts: *timeouts,
                            ..g
                        });
                    }
                    Ok(false) => {
                        reached.stage = "logged in, cloud-init has not finished";
                        reached.last = format!("{} is missing", target.ready_marker);
                        guest = Some(g);
                    }
                    // Cut short by the deadline: the stage reached is still the one to report.
                    Err(GuestError::Timeout { .. }) => {}
                    Err(e) => reached.note(&e),
                }
            }
        }
        tokio::time::sleep(timeouts.poll.min(left)).await;
    }
    Err(GuestError::Timeout {
        node: target.node.clone(),
        what: format!(
            "waiting for the node to be ready (reached: {}; last: {})",
            reached.stage, reached.last
        ),
        secs: timeouts.ready.as_secs(),
    })
}
