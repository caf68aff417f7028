//! Why a connection ended: one typed reason, from the io layer to the
//! close callbacks, the logs and a client's reconnect logic.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;

/// Why a session's connection closed. Close callbacks
/// ([`Session::on_close`](crate::Session::on_close)) receive it, the io
/// layer logs it once, a client decides from it whether to reconnect.
///
/// ```
/// use walle_process::{CloseReason, Session};
///
/// let session = Session::new(7);
/// session.on_close(|reason| {
///     if reason.is_fault() {
///         // the peer misbehaved or the link failed: worth a metric
///     }
/// });
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer ended the stream (or sent its own close).
    PeerClosed,
    /// This side closed it: [`Process::close`](crate::Process::close), a
    /// session handle's close, a client dropped.
    Local,
    /// The server (or the client's io) is stopping. (A write that fails
    /// while a stop flushes shows as [`Io`](CloseReason::Io) on the event
    /// loop and stays `Stopped` on tokio, whose first reason wins.)
    Stopped,
    /// A newer session took this one's user binding.
    Replaced,
    /// The socket failed.
    Io(Arc<std::io::Error>),
    /// The peer sent what the protocol refuses: an oversized or malformed
    /// frame, a packet that cannot be decoded.
    Malformed(Arc<Error>),
    /// A frame was refused on purpose: a dispatch hook stopped it, or the
    /// server refused the session.
    Refused(Arc<Error>),
    /// A dispatch hook panicked while it handled a frame: the connection's
    /// state is in doubt. (A route handler's panic fails only its request,
    /// a call callback's or close callback's is contained and logged.)
    Panicked,
    /// Nothing came from the peer for this long.
    Silent(Duration),
    /// The link stopped carrying data (too many retransmissions, a
    /// transport's own liveness check).
    DeadLink,
}

impl CloseReason {
    /// A socket error.
    pub fn io(error: std::io::Error) -> Self {
        CloseReason::Io(Arc::new(error))
    }

    /// Why handling an inbound frame ended its connection: a frame or
    /// packet the protocol refuses is [`Malformed`](CloseReason::Malformed),
    /// a socket error [`Io`](CloseReason::Io), anything else (a dispatch
    /// hook's refusal, a limit) [`Refused`](CloseReason::Refused).
    pub fn input(error: Error) -> Self {
        match error {
            Error::Packet(_) | Error::Codec(_) => CloseReason::Malformed(Arc::new(error)),
            Error::Io(error) => CloseReason::io(error),
            error => CloseReason::Refused(Arc::new(error)),
        }
    }

    /// True for an end that says something went wrong: a socket error,
    /// bad input, a panic, silence, a dead link. False for orderly ends
    /// (the peer's or ours, a stop, a replaced session).
    pub fn is_fault(&self) -> bool {
        !matches!(
            self,
            CloseReason::PeerClosed
                | CloseReason::Local
                | CloseReason::Stopped
                | CloseReason::Replaced
        )
    }

    /// A short stable name, for logs and metrics labels.
    pub fn name(&self) -> &'static str {
        match self {
            CloseReason::PeerClosed => "peer_closed",
            CloseReason::Local => "local",
            CloseReason::Stopped => "stopped",
            CloseReason::Replaced => "replaced",
            CloseReason::Io(_) => "io",
            CloseReason::Malformed(_) => "malformed",
            CloseReason::Refused(_) => "refused",
            CloseReason::Panicked => "panicked",
            CloseReason::Silent(_) => "silent",
            CloseReason::DeadLink => "dead_link",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::PeerClosed => f.write_str("closed by the peer"),
            CloseReason::Local => f.write_str("closed"),
            CloseReason::Stopped => f.write_str("stopping"),
            CloseReason::Replaced => f.write_str("replaced by a newer session"),
            CloseReason::Io(e) => write!(f, "socket error: {e}"),
            CloseReason::Malformed(e) => write!(f, "bad input: {e}"),
            CloseReason::Refused(e) => write!(f, "refused: {e}"),
            CloseReason::Panicked => f.write_str("a panic while a frame was handled"),
            CloseReason::Silent(limit) => write!(f, "peer silent for {limit:?}"),
            CloseReason::DeadLink => f.write_str("dead link"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_error_is_a_refusal_and_a_packet_error_is_bad_input() {
        let hook = CloseReason::input(Error::Hook("no".into()));
        assert!(matches!(hook, CloseReason::Refused(_)), "{hook:?}");
        let bad = CloseReason::input(Error::Packet(walle_packet::PacketError::Unexpected("x")));
        assert!(matches!(bad, CloseReason::Malformed(_)), "{bad:?}");
        assert!(bad.is_fault() && !CloseReason::PeerClosed.is_fault());
        let io = CloseReason::input(Error::Io(std::io::ErrorKind::BrokenPipe.into()));
        assert!(matches!(io, CloseReason::Io(_)), "{io:?}");
        let refused = CloseReason::input(Error::Overloaded("too many"));
        assert!(matches!(refused, CloseReason::Refused(_)), "{refused:?}");
        assert_eq!(CloseReason::Silent(Duration::from_secs(1)).name(), "silent");
    }
}
