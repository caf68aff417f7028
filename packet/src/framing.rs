//! Length-prefixed stream framing: `len | body`, the length counting the
//! body only. Width and byte order are part of each format.

use bytes::{Buf, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::PacketError;

/// Byte order of a multi-byte field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ByteOrder {
    /// Most significant byte first (network order).
    #[default]
    Big,
    /// Least significant byte first.
    Little,
}

impl ByteOrder {
    /// Reads an unsigned integer of `width` (1, 2, 4 or 8) bytes.
    pub fn read_uint(self, src: &[u8], width: usize) -> u64 {
        let src = &src[..width];
        // The common widths as single loads.
        if let Ok(b) = <[u8; 4]>::try_from(src) {
            return u64::from(match self {
                ByteOrder::Big => u32::from_be_bytes(b),
                ByteOrder::Little => u32::from_le_bytes(b),
            });
        }
        let mut v = 0u64;
        match self {
            ByteOrder::Big => src.iter().for_each(|&b| v = v << 8 | u64::from(b)),
            ByteOrder::Little => src.iter().rev().for_each(|&b| v = v << 8 | u64::from(b)),
        }
        v
    }

    /// Reads a signed integer of `width` bytes, sign-extended.
    pub fn read_int(self, src: &[u8], width: usize) -> i64 {
        let shift = 64 - 8 * width as u32;
        ((self.read_uint(src, width) << shift) as i64) >> shift
    }

    /// Writes the low `width` bytes of `v` into `dst[..width]`.
    pub fn write_uint(self, dst: &mut [u8], width: usize, v: u64) {
        let dst = &mut dst[..width];
        match self {
            ByteOrder::Big => dst.copy_from_slice(&v.to_be_bytes()[8 - width..]),
            ByteOrder::Little => dst.copy_from_slice(&v.to_le_bytes()[..width]),
        }
    }

    /// Appends the low `width` bytes of `v`.
    pub fn put_uint(self, dst: &mut Vec<u8>, width: usize, v: u64) {
        match self {
            ByteOrder::Big => dst.extend_from_slice(&v.to_be_bytes()[8 - width..]),
            ByteOrder::Little => dst.extend_from_slice(&v.to_le_bytes()[..width]),
        }
    }
}

/// Reads a length width from a file: 1, 2 or 4.
fn len_width<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    match u8::deserialize(d)? {
        width @ (1 | 2 | 4) => Ok(width),
        other => Err(serde::de::Error::custom(format_args!(
            "a length field is 1, 2 or 4 bytes wide, not {other}"
        ))),
    }
}

/// Default maximum frame size: 1 MiB.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// How a transport delimits frames, chosen by the transport (see
/// `Transport::mode` in walle-process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrameMode {
    /// A byte stream (tcp, kcp): each frame body behind its length prefix,
    /// cut out again by a [`FrameDecoder`].
    #[default]
    Stream,
    /// A message transport (WebSocket binary messages): one message per
    /// frame body, with no length prefix.
    Message,
}

/// How frames are delimited on a stream: a length field of `len_width`
/// bytes (1, 2 or 4) in `order`, then that many bytes of body.
///
/// ```
/// use walle_packet::{ByteOrder, Framing};
///
/// let framing = Framing::new(4, ByteOrder::Little).max_frame(64 * 1024);
/// let mut out = Vec::new();
/// framing.encode(&mut out, |body| { body.extend_from_slice(b"hi"); Ok(()) })?;
/// assert_eq!(out, [2, 0, 0, 0, b'h', b'i']);
/// # Ok::<(), walle_packet::PacketError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Framing {
    /// Width of the length field: 1, 2 or 4 bytes. A file giving another
    /// width fails to load; set in code, another width is taken as 4.
    #[serde(deserialize_with = "len_width")]
    pub len_width: u8,
    /// Byte order of the length field.
    pub order: ByteOrder,
    /// Largest body accepted or produced, in bytes.
    pub max_frame: usize,
}

impl Default for Framing {
    fn default() -> Self {
        Framing {
            len_width: 4,
            order: ByteOrder::Big,
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

impl Framing {
    /// A length field of `len_width` bytes (1, 2 or 4; others become 4).
    pub fn new(len_width: u8, order: ByteOrder) -> Self {
        let len_width = if matches!(len_width, 1 | 2 | 4) {
            len_width
        } else {
            4
        };
        Framing {
            len_width,
            order,
            ..Framing::default()
        }
    }

    /// The width of the length field in bytes: 1, 2 or 4.
    pub fn width(&self) -> usize {
        match self.len_width {
            1 => 1,
            2 => 2,
            _ => 4,
        }
    }

    /// Sets the maximum body size.
    pub fn max_frame(mut self, max_frame: usize) -> Self {
        self.max_frame = max_frame;
        self
    }

    /// The largest body this framing can carry: the configured maximum,
    /// capped by what the length field can express.
    pub fn limit(&self) -> usize {
        let field_max: u32 = match self.width() {
            1 => 0xff,
            2 => 0xffff,
            _ => u32::MAX,
        };
        self.max_frame
            .min(usize::try_from(field_max).unwrap_or(usize::MAX))
    }

    /// Fails with [`PacketError::TooLarge`] when `len` is over the limit.
    pub fn check(&self, len: usize) -> Result<(), PacketError> {
        match len <= self.limit() {
            true => Ok(()),
            false => Err(PacketError::TooLarge {
                len,
                max: self.limit(),
            }),
        }
    }

    /// Appends one frame to `dst`: `body` writes the body, then the length
    /// is filled in. On any error, `dst` is left as it was: nothing of the
    /// frame remains to be sent.
    pub fn encode(
        &self,
        dst: &mut Vec<u8>,
        body: impl FnOnce(&mut Vec<u8>) -> Result<(), PacketError>,
    ) -> Result<(), PacketError> {
        let start = dst.len();
        let width = self.width();
        dst.extend_from_slice(&[0; 4][..width]); // the length, filled in below
        let written = body(dst).and_then(|()| {
            let len = dst.len() - start - width;
            self.check(len).map(|()| len)
        });
        match written {
            Ok(len) => {
                self.order.write_uint(&mut dst[start..], width, len as u64);
                Ok(())
            }
            Err(e) => {
                dst.truncate(start);
                Err(e)
            }
        }
    }

    /// Appends one frame to `dst` as `mode` delimits it: behind its length
    /// prefix ([`encode`](Framing::encode)) on a stream, the bare body on a
    /// message transport, where the body may be up to
    /// [`max_frame`](Framing::max_frame) (no length field caps it). On any
    /// error `dst` is left as it was.
    pub fn encode_in(
        &self,
        mode: FrameMode,
        dst: &mut Vec<u8>,
        body: impl FnOnce(&mut Vec<u8>) -> Result<(), PacketError>,
    ) -> Result<(), PacketError> {
        if mode == FrameMode::Stream {
            return self.encode(dst, body);
        }
        let start = dst.len();
        let written = body(dst).and_then(|()| match dst.len() - start {
            len if len <= self.max_frame => Ok(()),
            len => Err(PacketError::TooLarge {
                len,
                max: self.max_frame,
            }),
        });
        if written.is_err() {
            dst.truncate(start);
        }
        written
    }

    /// A decoder that cuts frames off a stream buffer.
    pub fn decoder(&self) -> FrameDecoder {
        FrameDecoder {
            framing: *self,
            state: State::Head,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Head,
    Data(usize),
}

/// Cuts complete frame bodies off the front of a stream buffer.
///
/// A state machine in the manner of tokio-util's length-delimited codec:
/// the length is checked against the maximum the moment its field is
/// complete, before any room is reserved for the body, so a peer
/// announcing 4 GiB costs nothing but an error.
///
/// ```
/// use bytes::BytesMut;
/// use walle_packet::Framing;
///
/// let mut decoder = Framing::default().decoder();
/// let mut stream = BytesMut::from(&[0, 0, 0, 2, b'h'][..]);
/// assert!(decoder.decode(&mut stream)?.is_none()); // body incomplete
/// stream.extend_from_slice(b"i");
/// assert_eq!(&decoder.decode(&mut stream)?.unwrap()[..], b"hi");
/// # Ok::<(), walle_packet::PacketError>(())
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    framing: Framing,
    state: State,
}

impl FrameDecoder {
    /// The next complete body, split off `src` without copying; `None`
    /// until one is complete. After an error the stream is unusable: close
    /// the connection.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, PacketError> {
        let len = match self.state {
            State::Data(len) => len,
            State::Head => {
                let width = self.framing.width();
                if src.len() < width {
                    return Ok(None);
                }
                let len = self.framing.order.read_uint(src, width);
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                self.framing.check(len)?;
                src.advance(width);
                self.state = State::Data(len);
                len
            }
        };
        if src.len() < len {
            return Ok(None);
        }
        self.state = State::Head;
        Ok(Some(src.split_to(len).freeze()))
    }

    /// Bytes still missing from the frame in progress (0 between frames,
    /// when only the length field is known to be next).
    pub fn missing(&self, buffered: usize) -> usize {
        match self.state {
            State::Head => 0,
            State::Data(len) => len.saturating_sub(buffered),
        }
    }

    /// True between frames: no partial frame has been consumed.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head)
    }

    /// The framing this decoder applies.
    pub fn framing(&self) -> &Framing {
        &self.framing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_reads_and_writes_every_width() {
        for order in [ByteOrder::Big, ByteOrder::Little] {
            for width in [1usize, 2, 4, 8] {
                let v = 0x8877_6655_4433_2211u64 & (u64::MAX >> (64 - 8 * width));
                let mut buf = [0u8; 8];
                order.write_uint(&mut buf, width, v);
                assert_eq!(order.read_uint(&buf, width), v);
            }
        }
        assert_eq!(ByteOrder::Big.read_int(&[0xff, 0xfe], 2), -2);
        assert_eq!(ByteOrder::Little.read_int(&[0xfe, 0xff], 2), -2);
    }

    /// BEHAVIOURS 25: a frame over the maximum fails at encode with code 6
    /// and leaves nothing behind.
    #[test]
    fn b25_oversized_encode_fails_with_code_6_and_writes_nothing() {
        let framing = Framing::default().max_frame(8);
        let mut out = b"previous".to_vec();
        let err = framing
            .encode(&mut out, |b| {
                b.extend_from_slice(&[0; 9]);
                Ok(())
            })
            .unwrap_err();
        assert_eq!(err.code().0, 6);
        assert_eq!(out, b"previous");
        // A 2-byte length cannot carry 70000 bytes whatever the maximum.
        let narrow = Framing::new(2, ByteOrder::Big);
        assert_eq!(narrow.limit(), 65535);
        // A file must give a width the formats have.
        let loaded: Framing = serde_json::from_str(r#"{"len_width":2}"#).unwrap();
        assert_eq!(loaded.width(), 2);
        let refused = serde_json::from_str::<Framing>(r#"{"len_width":3}"#).unwrap_err();
        assert!(refused.to_string().contains("1, 2 or 4"), "{refused}");
        // Set in code, a width no format has counts as 4.
        let odd = Framing {
            len_width: 9,
            ..Framing::default()
        };
        let mut out = Vec::new();
        odd.encode(&mut out, |b| {
            b.push(7);
            Ok(())
        })
        .unwrap();
        assert_eq!(out, [0, 0, 0, 1, 7]);
    }

    /// BEHAVIOURS 26: an inbound length over the maximum is refused before
    /// any room is reserved for it.
    #[test]
    fn b26_oversized_length_is_refused_before_allocating() {
        let mut decoder = Framing::default().decoder();
        let mut src = BytesMut::with_capacity(16);
        src.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 1, 2]);
        let err = decoder.decode(&mut src).unwrap_err();
        assert_eq!(err.code().0, 6);
        assert!(
            src.capacity() < 1024,
            "no room reserved for the announced body"
        );
    }
}
