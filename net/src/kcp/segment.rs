//! The KCP segment header (skywind3000's ikcp, little-endian):
//!
//! ```text
//! u32 conv | u8 cmd | u8 frg | u16 wnd | u32 ts | u32 sn | u32 una | u32 len | [len] data
//! ```
//!
//! A datagram carries one or more segments back to back. It is checked
//! whole here before the KCP state sees any of it: the `kcp` crate asserts
//! on short input and stops halfway through a datagram it dislikes,
//! having taken the segments before.

/// Bytes of a segment header.
pub(crate) const HEADER: usize = 24;

/// Data pushed (`IKCP_CMD_PUSH`).
const PUSH: u8 = 81;
/// Window probe, ask (`IKCP_CMD_WASK`); ack and window tell lie between.
const FIRST_CMD: u8 = 81;
const LAST_CMD: u8 = 84;
/// A fragment count the reference sender never writes (`frg < 128`).
const MAX_FRG: u8 = 127;

/// Why a datagram was dropped before reaching a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bad {
    /// Shorter than one header, or a tail shorter than one.
    Short,
    /// A command that is not push, ack, window ask or window tell.
    Command,
    /// A length past the datagram's end, segments of different convs, or
    /// a fragment count no reference sender writes.
    Length,
}

/// What a well-formed datagram says about its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    /// The conversation of every segment.
    pub(crate) conv: u32,
    /// It pushes the first segment of a stream (sn 0): a datagram that may
    /// open a session.
    pub(crate) opens: bool,
}

fn u32_at(d: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&d[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Checks that `datagram` is whole segments of one conv, each with a known
/// command and a length within the datagram.
pub(crate) fn check(datagram: &[u8]) -> Result<Head, Bad> {
    if datagram.len() < HEADER {
        return Err(Bad::Short);
    }
    let conv = u32_at(datagram, 0);
    let mut opens = false;
    let mut at = 0;
    while at < datagram.len() {
        let rest = &datagram[at..];
        if rest.len() < HEADER {
            return Err(Bad::Short);
        }
        let cmd = rest[4];
        if !(FIRST_CMD..=LAST_CMD).contains(&cmd) {
            return Err(Bad::Command);
        }
        if u32_at(rest, 0) != conv || (cmd == PUSH && rest[5] > MAX_FRG) {
            return Err(Bad::Length);
        }
        let len = usize::try_from(u32_at(rest, 20)).unwrap_or(usize::MAX);
        if len > rest.len() - HEADER {
            return Err(Bad::Length);
        }
        opens |= cmd == PUSH && u32_at(rest, 12) == 0;
        at += HEADER + len;
    }
    Ok(Head { conv, opens })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(conv: u32, cmd: u8, sn: u32, data: &[u8]) -> Vec<u8> {
        let mut s = Vec::new();
        s.extend(conv.to_le_bytes());
        s.extend([cmd, 0]);
        s.extend(128u16.to_le_bytes());
        s.extend(0u32.to_le_bytes()); // ts
        s.extend(sn.to_le_bytes());
        s.extend(0u32.to_le_bytes()); // una
        s.extend((data.len() as u32).to_le_bytes());
        s.extend(data);
        s
    }

    #[test]
    fn whole_segments_of_one_conv_pass() {
        let mut d = segment(7, PUSH, 0, b"hello");
        d.extend(segment(7, 82, 3, b""));
        assert_eq!(
            check(&d),
            Ok(Head {
                conv: 7,
                opens: true
            })
        );
        let later = segment(7, PUSH, 5, b"x");
        assert_eq!(
            check(&later),
            Ok(Head {
                conv: 7,
                opens: false
            })
        );
    }

    #[test]
    fn short_unknown_and_inconsistent_datagrams_are_refused() {
        assert_eq!(check(&[0; 23]), Err(Bad::Short));
        assert_eq!(check(&segment(1, 80, 0, b"")), Err(Bad::Command));
        assert_eq!(check(&segment(1, 85, 0, b"")), Err(Bad::Command));
        let mut long = segment(1, PUSH, 0, b"abc");
        long.truncate(long.len() - 1);
        assert_eq!(check(&long), Err(Bad::Length));
        let mut tail = segment(1, PUSH, 0, b"abc");
        tail.extend([0; 10]);
        assert_eq!(check(&tail), Err(Bad::Short));
        let mut mixed = segment(1, PUSH, 0, b"");
        mixed.extend(segment(2, PUSH, 0, b""));
        assert_eq!(check(&mixed), Err(Bad::Length));
        let mut frg = segment(1, PUSH, 0, b"");
        frg[5] = 200;
        assert_eq!(check(&frg), Err(Bad::Length));
        let mut huge = segment(1, PUSH, 0, b"");
        huge[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(check(&huge), Err(Bad::Length));
    }
}
