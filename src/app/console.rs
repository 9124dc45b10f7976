//! `lab console`: a node's serial console through libvirt's stream API, with an escape key.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use nix::unistd::isatty;

use crate::libvirt::Console;

/// Ctrl-] ends the session, as in virsh console.
pub const ESCAPE: u8 = 0x1d;

/// Copies the console to `output` and `input` to the console until the escape byte, the end
/// of `input` (then the console's output of the next `linger` is still shown) or the end of
/// the console. Returns how many bytes the console sent.
pub fn attach(
    console: Arc<dyn Console>,
    mut input: impl Read,
    output: impl Write + Send + 'static,
    linger: Duration,
) -> crate::libvirt::Result<u64> {
    let done = Arc::new(AtomicBool::new(false));
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = {
        let (console, done, received) = (console.clone(), done.clone(), received.clone());
        std::thread::spawn(move || pump(&*console, output, &done, &received))
    };
    let mut buf = [0u8; 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) | Err(_) => {
                std::thread::sleep(linger);
                break;
            }
            Ok(n) => n,
        };
        if let Some(i) = buf[..n].iter().position(|b| *b == ESCAPE) {
            console.send(&buf[..i])?;
            break;
        }
        console.send(&buf[..n])?;
        if reader.is_finished() {
            break;
        }
    }
    done.store(true, Ordering::SeqCst);
    Ok(received.load(Ordering::SeqCst))
}

/// Console to output, until the console ends or `done`.
fn pump(
    console: &dyn Console,
    mut output: impl Write,
    done: &AtomicBool,
    received: &std::sync::atomic::AtomicU64,
) {
    let mut buf = [0u8; 4096];
    while !done.load(Ordering::SeqCst) {
        match console.recv(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                received.fetch_add(n as u64, Ordering::SeqCst);
                if output
                    .write_all(&buf[..n])
                    .and_then(|_| output.flush())
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Puts a terminal in raw mode while alive (keys go to the guest as typed); restores it on drop.
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    /// `None` when `fd` is not a terminal (piped input stays as it is).
    pub fn enable(fd: impl AsFd) -> Option<RawMode> {
        if !isatty(&fd).unwrap_or(false) {
            return None;
        }
        // Our own descriptor of the terminal, to restore it on drop.
        let fd = fd.as_fd().try_clone_to_owned().ok()?;
        let saved = tcgetattr(&fd).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(&self.fd, SetArg::TCSANOW, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A console that echoes what it is sent, after a banner.
    struct Echo {
        queue: Mutex<Vec<u8>>,
        sent: Mutex<Vec<u8>>,
    }

    impl Console for Echo {
        fn recv(&self, buf: &mut [u8]) -> crate::libvirt::Result<usize> {
            loop {
                let mut q = self.queue.lock().unwrap();
                if !q.is_empty() {
                    let n = q.len().min(buf.len());
                    buf[..n].copy_from_slice(&q[..n]);
                    q.drain(..n);
                    return Ok(n);
                }
                drop(q);
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        fn send(&self, data: &[u8]) -> crate::libvirt::Result<()> {
            self.sent.lock().unwrap().extend_from_slice(data);
            self.queue.lock().unwrap().extend_from_slice(data);
            Ok(())
        }
    }

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_escape_key_ends_the_session_and_is_not_sent() {
        let echo = Arc::new(Echo {
            queue: Mutex::new(b"login: ".to_vec()),
            sent: Mutex::default(),
        });
        let input: &[u8] = b"root\n\x1dnever sent";
        attach(
            echo.clone(),
            input,
            Sink::default(),
            Duration::from_millis(50),
        )
        .unwrap();
        assert_eq!(echo.sent.lock().unwrap().as_slice(), b"root\n");
    }

    #[test]
    fn at_the_end_of_input_the_console_output_still_arrives() {
        let echo = Arc::new(Echo {
            queue: Mutex::new(Vec::new()),
            sent: Mutex::default(),
        });
        let out = Sink::default();
        let got = attach(echo, &b"hello\n"[..], out.clone(), Duration::from_secs(1)).unwrap();
        assert_eq!(out.0.lock().unwrap().as_slice(), b"hello\n");
        assert_eq!(got, 6);
    }
}
