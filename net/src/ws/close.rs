//! How a WebSocket connection's end maps to the close frame it sends, and
//! how what the peer sent maps to a typed [`CloseReason`].
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

use walle_packet::PacketError;
use walle_process::{CloseReason, Error};

/// 1000: a normal close.
const NORMAL: u16 = 1000;
/// 1001: going away.
const AWAY: u16 = 1001;
/// 1002: a protocol error.
const PROTOCOL: u16 = 1002;
/// 1003: a kind of message not taken.
const UNSUPPORTED: u16 = 1003;
/// 1007: data that is not what its message says (invalid UTF-8).
const INVALID: u16 = 1007;
/// 1008: a policy refusal.
const POLICY: u16 = 1008;
/// 1009: a message too big.
const SIZE: u16 = 1009;
/// 1011: an internal error.
const INTERNAL: u16 = 1011;

/// The code and text of the close frame a connection ending for `why`
/// sends; `None` when the link is broken and no frame can go.
pub(super) fn frame_for(why: &CloseReason) -> Option<(u16, &'static str)> {
    Some(match why {
        CloseReason::Io(_) | CloseReason::DeadLink => return None,
        // The peer's code is echoed instead.
        CloseReason::PeerClosed => (NORMAL, ""),
        CloseReason::Local => (NORMAL, "closed"),
        CloseReason::Replaced => (NORMAL, "replaced by a newer session"),
        CloseReason::Stopped => (AWAY, "stopping"),
        CloseReason::Silent(_) => (AWAY, "silent for too long"),
        CloseReason::Malformed(e) => match &**e {
            Error::Packet(PacketError::TooLarge { .. }) => (SIZE, "message too big"),
            _ => (PROTOCOL, "malformed frame"),
        },
        CloseReason::Refused(_) => (POLICY, "refused"),
        CloseReason::Panicked => (INTERNAL, "internal error"),
        _ => (NORMAL, ""),
    })
}

/// True for a code a close frame may carry (RFC 6455, 7.4, and IANA's
/// registry): 1000-1003, 1007-1014, and the registered and private ranges
/// 3000-4999.
pub(super) fn may_be_sent(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// What ends the input of a connection, and the code its close frame
/// then carries when that is not [`frame_for`]'s.
pub(super) struct Ended {
    pub(super) why: CloseReason,
    pub(super) code: Option<(u16, &'static str)>,
    /// The input stream is out of step (a frame header was read, its
    /// payload was not): nothing more can be read as WebSocket frames.
    pub(super) broken: bool,
}

fn malformed(error: Error, code: u16, text: &'static str) -> Ended {
    Ended {
        why: CloseReason::Malformed(Arc::new(error)),
        code: Some((code, text)),
        broken: true,
    }
}

/// A text message: walle speaks binary messages only.
pub(super) fn text() -> Ended {
    let error = PacketError::Malformed("a text message: frames travel in binary messages");
    malformed(Error::Packet(error), UNSUPPORTED, "binary messages only")
}

/// A message announced longer than the limit.
pub(super) fn too_big(len: usize, max: usize) -> Ended {
    let error = PacketError::TooLarge { len, max };
    malformed(Error::Packet(error), SIZE, "message too big")
}

/// Something RFC 6455 forbids.
pub(super) fn protocol(what: &'static str) -> Ended {
    let error = io::Error::new(
        io::ErrorKind::InvalidData,
        format!("WebSocket protocol error: {what}"),
    );
    malformed(Error::Io(error), PROTOCOL, "protocol error")
}

/// A close reason that is not UTF-8.
pub(super) fn invalid_utf8() -> Ended {
    let error = io::Error::new(
        io::ErrorKind::InvalidData,
        "a close reason that is not UTF-8",
    );
    malformed(Error::Io(error), INVALID, "invalid UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_end_has_its_code() {
        let too_big_reason =
            CloseReason::Malformed(Arc::new(Error::Packet(PacketError::TooLarge {
                len: 2,
                max: 1,
            })));
        let cases = [
            (CloseReason::Local, Some(1000)),
            (CloseReason::Stopped, Some(1001)),
            (too_big_reason, Some(1009)),
            (CloseReason::Panicked, Some(1011)),
            (CloseReason::DeadLink, None),
            (CloseReason::io(io::ErrorKind::BrokenPipe.into()), None),
        ];
        for (why, code) in cases {
            assert_eq!(frame_for(&why).map(|(c, _)| c), code, "{why:?}");
        }
        assert_eq!(text().code.map(|(c, _)| c), Some(1003));
        assert_eq!(protocol("x").code.map(|(c, _)| c), Some(1002));
        let long = too_big(9, 4);
        assert!(long.broken);
        assert!(matches!(&long.why, CloseReason::Malformed(e)
                if matches!(**e, Error::Packet(PacketError::TooLarge { len: 9, max: 4 }))));
    }

    #[test]
    fn only_codes_a_frame_may_carry_are_echoed() {
        for code in [1000, 1001, 1003, 1011, 1013, 3000, 4999] {
            assert!(may_be_sent(code), "{code}");
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert!(!may_be_sent(code), "{code}");
        }
    }
}
