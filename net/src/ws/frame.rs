//! WebSocket frames (RFC 6455, section 5) as bytes: the header a frame
//! starts with, written and parsed, and the mask a client applies.
//!
//! ```text
//!  byte 0: FIN | RSV1-3 | opcode (4 bits)
//!  byte 1: MASK | length (7 bits: 0-125, or 126: u16 follows, 127: u64 follows)
//!  then the extended length (big-endian), then the 4-byte mask key if MASK
//! ```

/// A continuation of a fragmented message.
pub(super) const CONTINUATION: u8 = 0x0;
/// A text message (refused: walle speaks binary).
pub(super) const TEXT: u8 = 0x1;
/// A binary message: one frame body.
pub(super) const BINARY: u8 = 0x2;
/// The close frame.
pub(super) const CLOSE: u8 = 0x8;
/// A ping, answered with a pong of the same payload.
pub(super) const PING: u8 = 0x9;
/// A pong.
pub(super) const PONG: u8 = 0xA;

/// The longest header: 2 bytes, an 8-byte length, a 4-byte mask key.
pub(super) const MAX_HEADER: usize = 14;
/// The longest payload of a control frame.
pub(super) const MAX_CONTROL: usize = 125;

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
    pub(super) fin: bool,
    /// The three reserved bits; no extension is negotiated, so they must
    /// be 0.
    pub(super) rsv: u8,
    pub(super) opcode: u8,
    pub(super) mask: Option<[u8; 4]>,
    /// The payload's length as the peer wrote it.
    pub(super) len: u64,
    /// The length is in its shortest form, as RFC 6455 requires.
    pub(super) minimal: bool,
    /// Bytes of the header itself.
    pub(super) size: usize,
}

impl Header {
    /// True for close, ping and pong (and the reserved 0xB-0xF).
    pub(super) fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }
}

/// The header at the start of `buf`; `None` while it is incomplete.
pub(super) fn parse(buf: &[u8]) -> Option<Header> {
    let [b0, b1, ..] = *buf else {
        return None;
    };
    let masked = b1 & 0x80 != 0;
    let (len, at) = match b1 & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    let minimal = match at {
        4 => len >= 126,
        10 => len > 0xffff,
        _ => true,
    };
    let (mask, size) = match masked {
        true => (Some(buf.get(at..at + 4)?.try_into().ok()?), at + 4),
        false => (None, at),
    };
    Some(Header {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 0x7,
        opcode: b0 & 0x0f,
        mask,
        len,
        minimal,
        size,
    })
}

/// Writes the header of a final frame of `opcode` carrying `len` bytes
/// into `out`, with `mask` (a client's) if given; returns its size.
pub(super) fn header(
    out: &mut [u8; MAX_HEADER],
    opcode: u8,
    len: usize,
    mask: Option<[u8; 4]>,
) -> usize {
    out[0] = 0x80 | opcode;
    let bit = if mask.is_some() { 0x80 } else { 0 };
    let mut at = match len {
        0..=125 => {
            out[1] = bit | len as u8;
            2
        }
        126..=0xffff => {
            out[1] = bit | 126;
            out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            out[1] = bit | 127;
            out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    };
    if let Some(key) = mask {
        out[at..at + 4].copy_from_slice(&key);
        at += 4;
    }
    at
}

/// XORs `buf` with `key`, as if `buf` began `offset` bytes into a
/// payload (masking and unmasking are the same operation).
pub(super) fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let mut key = key;
    key.rotate_left(offset % 4);
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes(chunk.try_into().expect("8 bytes")) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_at_each_length_width() {
        for len in [0usize, 1, 125, 126, 0xffff, 0x10000, 8 << 20] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut out = [0u8; MAX_HEADER];
                let size = header(&mut out, BINARY, len, mask);
                let parsed = parse(&out[..size]).expect("a whole header");
                assert_eq!(
                    parsed,
                    Header {
                        fin: true,
                        rsv: 0,
                        opcode: BINARY,
                        mask,
                        len: len as u64,
                        minimal: true,
                        size
                    }
                );
                assert!(parse(&out[..size - 1]).is_none(), "incomplete at {len}");
            }
        }
    }

    #[test]
    fn a_length_in_a_longer_form_than_needed_is_not_minimal() {
        let two = [0x82, 126, 0, 5];
        let eight = [0x82, 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
        assert!(!parse(&two).unwrap().minimal);
        assert!(!parse(&eight).unwrap().minimal);
        assert!(parse(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]).unwrap().minimal);
    }

    #[test]
    fn a_header_from_rfc_6455_parses() {
        // Section 5.7: a masked "Hello" from a client.
        let frame = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let h = parse(&frame).unwrap();
        assert_eq!((h.fin, h.opcode, h.len, h.size), (true, TEXT, 5, 6));
        let mut payload = frame[6..].to_vec();
        apply_mask(&mut payload, h.mask.unwrap(), 0);
        assert_eq!(payload, b"Hello");
    }

    #[test]
    fn masking_matches_the_bytewise_definition_at_any_offset() {
        let key = [0xa1, 0x02, 0xf3, 0x44];
        let data: Vec<u8> = (0..100u8).collect();
        for offset in 0..8 {
            let mut fast = data.clone();
            apply_mask(&mut fast, key, offset);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[(i + offset) % 4])
                .collect();
            assert_eq!(fast, slow, "offset {offset}");
        }
    }
}
