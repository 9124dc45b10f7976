//! Interruption: SIGINT, SIGTERM and SIGHUP ask a changing command to stop.
//!
//! [`install`] replaces the default action (death) of those signals with a flag. Long work
//! checks the flag ([`check`], [`interrupted`]) between calls, stops starting new work, undoes
//! or finishes what is in flight (a half-uploaded volume is deleted, paused nodes are resumed,
//! a build's mounts and loop devices are released) and returns [`Interrupted`]; the CLI then
//! says in one line what exists and how to go on, and exits 130. A second signal ends the
//! process at once (exit 130): what it leaves is never trusted by the next run (volumes count
//! only with their completion record, see `names::complete_marker`; builds clean the leftovers
//! of a dead build before they start).
//!
//! Read-only commands do not install it: Ctrl-C ends them as usual.

use std::ffi::c_int;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static SIGNALS: AtomicUsize = AtomicUsize::new(0);
static LAST: AtomicUsize = AtomicUsize::new(0);

/// A command stopped because it was asked to (a signal); carries what was being done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by {signal} {during}")]
pub struct Interrupted {
    pub signal: &'static str,
    pub during: String,
}

impl crate::failure::Classify for Interrupted {
    fn class(&self) -> crate::failure::ExitClass {
        crate::failure::ExitClass::Interrupted
    }
}

/// The handler: atomics, write(2) and _exit(2) only, all async-signal-safe.
extern "C" fn on_signal(sig: c_int) {
    LAST.store(sig as usize, Ordering::SeqCst);
    if SIGNALS.fetch_add(1, Ordering::SeqCst) >= 1 {
        say(b"\nlab: interrupted again: stopping now (the next `lab` run repairs what is left)\n");
        // SAFETY: _exit(2) is async-signal-safe (nix has no wrapper for it).
        unsafe { libc::_exit(130) };
    }
    say(
        b"\nlab: stopping: finishing the call in flight and undoing what it left half-done (again to stop now)\n",
    );
}

/// Writes `msg` to stderr with one write(2): no lock, no allocation.
fn say(msg: &[u8]) {
    // SAFETY: descriptor 2 outlives the call; a closed one only makes write fail.
    let _ = nix::unistd::write(unsafe { BorrowedFd::borrow_raw(2) }, msg);
}

/// Turns SIGINT, SIGTERM and SIGHUP into the flag. Call once, from a changing command.
pub fn install() {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: a plain handler that only touches atomics and async-signal-safe calls.
        let _ = unsafe { sigaction(sig, &action) };
    }
}

/// Whether a stop was asked for.
pub fn interrupted() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}

/// The name of the signal that asked to stop.
fn signal_name() -> &'static str {
    match Signal::try_from(LAST.load(Ordering::SeqCst) as c_int) {
        Ok(Signal::SIGTERM) => "SIGTERM",
        Ok(Signal::SIGHUP) => "SIGHUP",
        _ => "SIGINT",
    }
}

/// `Err(Interrupted)` once a stop was asked for; `during` says what was being done.
pub fn check(during: &str) -> Result<(), Interrupted> {
    if interrupted() {
        Err(Interrupted {
            signal: signal_name(),
            during: during.to_string(),
        })
    } else {
        Ok(())
    }
}

/// Resolves when a stop is asked for (polls the flag), for `select!` against async work.
pub async fn wait() {
    while !interrupted() {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Asks to stop, as a signal would (tests and callers that stop on their own).
pub fn request() {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// Reads through to `inner` until a stop is asked for, then fails with `Interrupted`
/// (an upload or copy is then abandoned, and its caller undoes it).
pub struct StopReader<R> {
    pub inner: R,
}

impl<R: std::io::Read> std::io::Read for StopReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if interrupted() {
            // Not ErrorKind::Interrupted: io::copy retries that.
            return Err(std::io::Error::other("interrupted"));
        }
        self.inner.read(buf)
    }
}
