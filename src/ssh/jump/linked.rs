//! A node's TCP connection through the jump ([`Linked`]): the direct-tcpip channel's stream,
//! failing once the jump's session is closed instead of waiting on it for ever.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use russh::ChannelStream;
use russh::client::Msg;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Interval, MissedTickBehavior};

use super::Chain;

/// How often a stream waiting on its channel asks whether the jump's session still runs.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// The stream of a channel through the jump, bound to the jump's session. When that session
/// ends (its keepalive gave up on a cut link), the channel's stream gets neither data nor an
/// end of file, and a write may wait for window space that never comes: the node's session
/// over it would then wait until its command's timeout (half an hour). A read or write that
/// waits fails instead within [`LOOK_EVERY`] of the session's end, and the node's session
/// ends with it: its commands fail as a lost connection.
pub struct Linked {
    stream: ChannelStream<Msg>,
    chain: Arc<Chain>,
    look: Interval,
}

impl Linked {
    /// `stream`, a channel of `chain`'s session. Needs the tokio runtime (its timer).
    pub(super) fn new(stream: ChannelStream<Msg>, chain: Arc<Chain>) -> Linked {
        let mut look = tokio::time::interval(LOOK_EVERY);
        look.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Linked {
            stream,
            chain,
            look,
        }
    }

    /// For work that waits: ready with an error once the jump's session is closed; else
    /// pending, woken at the next look.
    fn gone(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        while self.look.poll_tick(cx).is_ready() {
            if self.chain.session.is_closed() {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the ssh session to the libvirt host closed",
                ));
            }
        }
        Poll::Pending
    }

    /// `poll`'s result, or the session's end while it waits.
    fn or_gone<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending => self.gone(cx).map(Err),
            ready => ready,
        }
    }
}

impl AsyncRead for Linked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_read(cx, buf);
        self.or_gone(cx, poll)
    }
}

impl AsyncWrite for Linked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.or_gone(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_flush(cx);
        self.or_gone(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_shutdown(cx);
        self.or_gone(cx, poll)
    }
}
