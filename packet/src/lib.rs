//! Packets, framing and the wire formats of walle.
//!
//! - [`Framing`] and [`FrameDecoder`]: length-prefixed frames on a stream,
//!   with a configurable length width and byte order and a maximum size
//!   enforced before anything is allocated.
//! - [`Packet`]: a received packet as zero-copy views (uri, payload,
//!   metadata) over one [`Bytes`] body; [`Head`] describes an outbound one.
//! - [`ProtocolWrapper`] (alias [`ProtocolWraper`], the Go spelling): a wire
//!   format. Three ship here, byte-exact to the wire spec: [`WalleFormat`]
//!   (`walle`, and `walle-id` with numeric routes), [`ProtoFormat`]
//!   (`walle-proto`, a protobuf packet) and [`DueFormat`] (`due`).
//! - [`PacketEncoder`]: optional per-frame byte transforms (compression,
//!   encryption), undone in reverse order on receive. Two ship here:
//!   `Lz4Encoder` (feature `lz4`) and `AeadEncoder` (feature `aead`,
//!   XChaCha20-Poly1305 with replay rejection).
//! - [`Protocol`]: the pipeline of all of the above that a connection runs.
//!
//! Nothing here touches a socket or a clock.
//!
//! ```
//! use bytes::BytesMut;
//! use walle_packet::{Cmd, Head, Protocol, Route, WalleFormat};
//!
//! let protocol = Protocol::new(WalleFormat::new());
//! let mut wire = Vec::new();
//! protocol.encode(&Head::request(Route::Uri("echo"), 7), b"ping", &mut wire)?;
//!
//! let mut stream = BytesMut::from(&wire[..]);
//! let mut decoder = protocol.decoder();
//! let body = decoder.decode(&mut stream)?.expect("one whole frame");
//! let packet = protocol.decode(body)?;
//! assert_eq!((packet.cmd(), packet.seq(), packet.uri()), (Cmd::Request, 7, "echo"));
//! assert_eq!(&packet.payload()[..], b"ping");
//! # Ok::<(), walle_packet::PacketError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![warn(clippy::unwrap_used)]

#[cfg(feature = "aead")]
mod aead;
mod due;
mod encoder;
mod error;
mod framing;
#[cfg(feature = "lz4")]
mod lz4;
mod metadata;
mod packet;
mod parts;
mod pb;
mod proto;
mod protocol;
mod walle;

use bytes::Bytes;
pub use walle_codec::Code;

#[cfg(feature = "aead")]
pub use aead::{AeadEncoder, AeadError, AeadKey, AeadOptions};
pub use due::DueFormat;
pub use encoder::{PacketEncoder, Role};
pub use error::PacketError;
pub use framing::{ByteOrder, DEFAULT_MAX_FRAME, FrameDecoder, FrameMode, Framing};
#[cfg(feature = "lz4")]
pub use lz4::{Lz4Encoder, Lz4Error, Lz4Options};
pub use metadata::{Metadata, MetadataView};
pub use packet::{Cmd, FLAG_ERROR, Head, Packet, Route};
pub use parts::PacketParts;
pub use proto::ProtoFormat;
pub use protocol::Protocol;
pub use walle::WalleFormat;

/// A wire format: how a packet's header and payload become a frame body
/// and back. The length prefix around the body is the format's
/// [`Framing`].
///
/// Implement it to add a format of your own without touching the
/// framework: `decode` reads the header and says where the parts lie with
/// [`Packet::parts`]; `encode` writes a [`Head`] and payload. The provided
/// methods cover error payloads, heartbeats and sequence limits with the
/// `walle` conventions.
///
/// A common game layout, `u16 len | u16 msg_id | u32 seq | u8 flags |
/// payload`, little-endian, with numeric routes only:
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use walle_packet::{
///     ByteOrder, Cmd, FLAG_ERROR, Framing, Head, Packet, PacketError, Protocol,
///     ProtocolWrapper, Route,
/// };
///
/// #[derive(Debug)]
/// struct GameFormat;
///
/// const REQUEST: u8 = 0x02;
/// const RESPONSE: u8 = 0x04;
///
/// impl ProtocolWrapper for GameFormat {
///     fn name(&self) -> &'static str {
///         "game"
///     }
///
///     fn framing(&self) -> Framing {
///         Framing::new(2, ByteOrder::Little)
///     }
///
///     fn decode(&self, body: Bytes) -> Result<Packet, PacketError> {
///         let Some(head) = body.first_chunk::<7>() else {
///             return Err(PacketError::Malformed("game header is 7 bytes"));
///         };
///         let id = u16::from_le_bytes([head[0], head[1]]);
///         let seq = u32::from_le_bytes([head[2], head[3], head[4], head[5]]);
///         let flags = head[6];
///         let cmd = match flags & (REQUEST | RESPONSE) {
///             0 => Cmd::Notify,
///             REQUEST => Cmd::Request,
///             RESPONSE => Cmd::Response,
///             _ => return Err(PacketError::Malformed("request and response at once")),
///         };
///         let len = body.len();
///         Packet::parts(body, cmd)
///             .id(u32::from(id))
///             .seq(u64::from(seq))
///             .flags(u32::from(flags) & FLAG_ERROR)
///             .payload(7..len)
///             .build()
///     }
///
///     fn encode(&self, head: &Head<'_>, payload: &[u8], dst: &mut Vec<u8>)
///         -> Result<(), PacketError>
///     {
///         let id = u16::try_from(head.id)
///             .ok()
///             .filter(|_| head.uri.is_empty())
///             .ok_or(PacketError::Unencodable("game routes are u16 ids"))?;
///         let seq = u32::try_from(head.seq)
///             .map_err(|_| PacketError::Unencodable("seq over u32"))?;
///         let mut flags = (head.flags & FLAG_ERROR) as u8;
///         flags |= match head.cmd {
///             Cmd::Notify => 0,
///             Cmd::Request => REQUEST,
///             Cmd::Response => RESPONSE,
///         };
///         dst.extend_from_slice(&id.to_le_bytes());
///         dst.extend_from_slice(&seq.to_le_bytes());
///         dst.push(flags);
///         dst.extend_from_slice(payload);
///         Ok(())
///     }
///
///     fn max_seq(&self) -> u64 {
///         u64::from(u32::MAX)
///     }
/// }
///
/// let protocol = Protocol::new(GameFormat);
/// let mut wire = Vec::new();
/// protocol.encode(&Head::request(Route::Id(7), 3), b"hi", &mut wire)?;
/// assert_eq!(wire, [9, 0, 7, 0, 3, 0, 0, 0, REQUEST, b'h', b'i']);
///
/// let body = protocol.decoder().decode(&mut BytesMut::from(&wire[..]))?.expect("a frame");
/// let packet = protocol.decode(body)?;
/// assert_eq!((packet.cmd(), packet.route(), packet.seq()), (Cmd::Request, Route::Id(7), 3));
/// assert_eq!(packet.payload_ref(), b"hi");
/// # Ok::<(), PacketError>(())
/// ```
pub trait ProtocolWrapper: Send + Sync + 'static {
    /// The format's name, e.g. `"walle"`.
    fn name(&self) -> &'static str;

    /// The stream framing of this format.
    fn framing(&self) -> Framing;

    /// Decodes one frame body. Views in the packet share `body`.
    fn decode(&self, body: Bytes) -> Result<Packet, PacketError>;

    /// Appends the body of the packet `head` + `payload` to `dst`.
    fn encode(&self, head: &Head<'_>, payload: &[u8], dst: &mut Vec<u8>)
    -> Result<(), PacketError>;

    /// Appends an error payload: `u32 code | UTF-8 description`.
    fn encode_error(&self, code: Code, desc: &str, dst: &mut Vec<u8>) {
        dst.extend_from_slice(&code.0.to_be_bytes());
        dst.extend_from_slice(desc.as_bytes());
    }

    /// Reads an error payload; a broken one is code 9.
    fn decode_error<'a>(&self, payload: &'a [u8]) -> Result<(Code, &'a str), PacketError> {
        let invalid = PacketError::Malformed("invalid error payload");
        let (code, desc) = payload.split_first_chunk::<4>().ok_or(invalid)?;
        let desc = std::str::from_utf8(desc)
            .map_err(|_| PacketError::Malformed("invalid error payload"))?;
        Ok((Code(u32::from_be_bytes(*code)), desc))
    }

    /// Appends a heartbeat body, with the sender's time when given. Formats
    /// without heartbeat packets answer `NotSupported`.
    fn encode_heartbeat(&self, time: Option<i64>, dst: &mut Vec<u8>) -> Result<(), PacketError> {
        let _ = (time, dst);
        Err(PacketError::NotSupported {
            format: self.name(),
            what: "heartbeat packets",
        })
    }

    /// The largest sequence id the format carries (`u64::MAX` by default).
    fn max_seq(&self) -> u64 {
        u64::MAX
    }

    /// True when responses are marked as such on the wire. Formats without
    /// the mark (`due`) decode every packet as a request or notify, and the
    /// receiver matches them against its pending calls by seq.
    fn marks_responses(&self) -> bool {
        true
    }
}

/// The Go walle spelling of [`ProtocolWrapper`], for users coming from it.
pub use ProtocolWrapper as ProtocolWraper;

/// Packet views index their body with `u32`s: a body must fit. The framing
/// limit keeps stream frames well below; this guards direct callers.
pub(crate) fn fits_u32(len: usize) -> Result<(), PacketError> {
    match u32::try_from(len) {
        Ok(_) => Ok(()),
        Err(_) => Err(PacketError::TooLarge {
            len,
            max: u32::MAX as usize,
        }),
    }
}

/// Offset of `part` within `whole` as `(start, end)`; both must be slices
/// of the same body, which every decoder guarantees.
pub(crate) fn span(start: usize, len: usize) -> (u32, u32) {
    (start as u32, (start + len) as u32)
}
