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
//!   encryption), undone in reverse order on receive.
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

mod due;
mod encoder;
mod error;
mod framing;
mod metadata;
mod packet;
mod pb;
mod proto;
mod protocol;
mod walle;

use bytes::Bytes;
pub use walle_codec::Code;

pub use due::DueFormat;
pub use encoder::PacketEncoder;
pub use error::PacketError;
pub use framing::{ByteOrder, DEFAULT_MAX_FRAME, FrameDecoder, Framing};
pub use metadata::{Metadata, MetadataView};
pub use packet::{Cmd, FLAG_ERROR, Head, Packet, Route};
pub use proto::ProtoFormat;
pub use protocol::Protocol;
pub use walle::WalleFormat;

/// A wire format: how a packet's header and payload become a frame body
/// and back. The length prefix around the body is the format's
/// [`Framing`].
///
/// Implement it to add a fourth format without touching the framework;
/// the provided methods cover error payloads, heartbeats and sequence
/// limits with the `walle` conventions.
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
