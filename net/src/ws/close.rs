//! How a WebSocket connection's end maps to the close frame it sends, and
//! how what tungstenite reports maps to a typed [`CloseReason`].
//!
//! | why the connection ends            | close code           |
//! |------------------------------------|----------------------|
//! | a local close, a kick (`Replaced`) | 1000 normal          |
//! | the server stops, silence          | 1001 going away      |
//! | a protocol error, a bad packet     | 1002 protocol error  |
//! | a text message                     | 1003 unsupported     |
//! | invalid UTF-8 where text belongs   | 1007 invalid data    |
//! | a refusal (the session hook)       | 1008 policy          |
//! | a message over the maximum         | 1009 too big         |
//! | a dispatch hook's panic            | 1011 internal error  |
//! | the peer's close                   | the peer's code, echoed |
//! | a socket error, a dead link        | none (no frame can go) |

use std::io;
use std::sync::Arc;

use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use walle_packet::PacketError;
use walle_process::{CloseReason, Error};

/// The code and text of the close frame a connection ending for `why`
/// sends; `None` when the link is broken and no frame can go.
pub(super) fn frame_for(why: &CloseReason) -> Option<(CloseCode, &'static str)> {
    Some(match why {
        CloseReason::Io(_) | CloseReason::DeadLink => return None,
        // The peer's code is echoed by tungstenite; this is not sent.
        CloseReason::PeerClosed => (CloseCode::Normal, ""),
        CloseReason::Local => (CloseCode::Normal, "closed"),
        CloseReason::Replaced => (CloseCode::Normal, "replaced by a newer session"),
        CloseReason::Stopped => (CloseCode::Away, "stopping"),
        CloseReason::Silent(_) => (CloseCode::Away, "silent for too long"),
        CloseReason::Malformed(e) => match &**e {
            Error::Packet(PacketError::TooLarge { .. }) => (CloseCode::Size, "message too big"),
            _ => (CloseCode::Protocol, "malformed frame"),
        },
        CloseReason::Refused(_) => (CloseCode::Policy, "refused"),
        CloseReason::Panicked => (CloseCode::Error, "internal error"),
        _ => (CloseCode::Normal, ""),
    })
}

/// What ends the input of a connection, and the code its close frame
/// then carries when that is not [`frame_for`]'s.
pub(super) struct Ended {
    pub(super) why: CloseReason,
    pub(super) code: Option<(CloseCode, &'static str)>,
    /// The input stream is out of step (a frame header was read, its
    /// payload was not): nothing more can be read as WebSocket frames.
    pub(super) broken: bool,
}

impl Ended {
    fn new(why: CloseReason) -> Ended {
        Ended {
            why,
            code: None,
            broken: false,
        }
    }
}

/// The peer's close, or the end of its stream.
pub(super) fn peer_closed() -> Ended {
    Ended::new(CloseReason::PeerClosed)
}

/// A text message: walle speaks binary messages only.
pub(super) fn text() -> Ended {
    let error = PacketError::Malformed("a text message: frames travel in binary messages");
    Ended {
        code: Some((CloseCode::Unsupported, "binary messages only")),
        ..Ended::new(CloseReason::Malformed(Arc::new(Error::Packet(error))))
    }
}

/// A read error of tungstenite, as the reason the connection ends.
pub(super) fn read_error(error: WsError) -> Ended {
    let invalid = |e: WsError| Error::Io(io::Error::new(io::ErrorKind::InvalidData, e));
    match error {
        WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            Ended::new(CloseReason::PeerClosed)
        }
        WsError::Io(e) => Ended::new(CloseReason::io(e)),
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            let error = PacketError::TooLarge {
                len: size,
                max: max_size,
            };
            Ended {
                code: Some((CloseCode::Size, "message too big")),
                broken: true,
                ..Ended::new(CloseReason::Malformed(Arc::new(Error::Packet(error))))
            }
        }
        e @ WsError::Utf8(_) => Ended {
            code: Some((CloseCode::Invalid, "invalid UTF-8")),
            broken: true,
            ..Ended::new(CloseReason::Malformed(Arc::new(invalid(e))))
        },
        e @ (WsError::Protocol(_) | WsError::Capacity(_)) => Ended {
            code: Some((CloseCode::Protocol, "protocol error")),
            broken: true,
            ..Ended::new(CloseReason::Malformed(Arc::new(invalid(e))))
        },
        e => Ended::new(CloseReason::io(io::Error::other(e))),
    }
}

/// A write error of tungstenite, as an io error.
pub(super) fn write_error(error: WsError) -> io::Error {
    match error {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => io::ErrorKind::NotConnected.into(),
        e => io::Error::other(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_end_has_its_code() {
        let too_big = CloseReason::Malformed(Arc::new(Error::Packet(PacketError::TooLarge {
            len: 2,
            max: 1,
        })));
        let cases = [
            (CloseReason::Local, Some(1000)),
            (CloseReason::Stopped, Some(1001)),
            (too_big, Some(1009)),
            (CloseReason::Panicked, Some(1011)),
            (CloseReason::DeadLink, None),
            (CloseReason::io(io::ErrorKind::BrokenPipe.into()), None),
        ];
        for (why, code) in cases {
            assert_eq!(frame_for(&why).map(|(c, _)| u16::from(c)), code, "{why:?}");
        }
        assert_eq!(text().code.map(|(c, _)| u16::from(c)), Some(1003));
        let long = read_error(WsError::Capacity(CapacityError::MessageTooLong {
            size: 9,
            max_size: 4,
        }));
        assert!(long.broken);
        assert!(matches!(&long.why, CloseReason::Malformed(e)
                if matches!(**e, Error::Packet(PacketError::TooLarge { len: 9, max: 4 }))));
        let reset = read_error(WsError::Protocol(
            ProtocolError::ResetWithoutClosingHandshake,
        ));
        assert!(matches!(reset.why, CloseReason::PeerClosed));
    }
}
