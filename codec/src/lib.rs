//! Message codecs: how a typed message becomes payload bytes and back.
//!
//! A [`Codec<M>`] encodes a message into a buffer the caller supplies
//! (usually one taken from a [`walle_mempool`](https://docs.rs/walle-mempool)
//! pool) and decodes from a [`Bytes`] slice of the received frame, without
//! copying where the message type allows (prost `bytes` fields, or
//! [`RawCodec`] returning the slice itself).
//!
//! Shipped codecs, each behind a default cargo feature:
//! [`ProstCodec`] (`prost`), [`JsonCodec`] (`json`), [`MsgPackCodec`]
//! (`msgpack`), and the always-present [`RawCodec`].
//!
//! This crate knows nothing of packets, routes or sockets. Failures are
//! [`CodecError`]s that carry the wire codes 2 (marshal failed) and 3
//! (unmarshal failed) of the error table, [`Code`].
//!
//! ```
//! use bytes::Bytes;
//! use walle_codec::{Codec, JsonCodec, RawCodec};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Move { x: i32, y: i32 }
//!
//! let mut buf = Vec::new();
//! JsonCodec.encode(&Move { x: 1, y: 2 }, &mut buf)?;
//! assert_eq!(buf, br#"{"x":1,"y":2}"#);
//! let back: Move = JsonCodec.decode(Bytes::from(buf))?;
//! assert_eq!(back, Move { x: 1, y: 2 });
//!
//! // The raw codec hands the payload slice over as it is.
//! let payload = Bytes::from_static(b"\x01\x02");
//! let same: Bytes = RawCodec.decode(payload.clone())?;
//! assert_eq!(same.as_ptr(), payload.as_ptr());
//! # Ok::<(), walle_codec::CodecError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![warn(clippy::unwrap_used)]

mod code;
mod error;
#[cfg(feature = "json")]
mod json;
#[cfg(feature = "msgpack")]
mod msgpack;
#[cfg(feature = "prost")]
mod protobuf;
mod raw;

use bytes::Bytes;

pub use code::Code;
pub use error::{BoxError, CodecError};
#[cfg(feature = "json")]
pub use json::JsonCodec;
#[cfg(feature = "msgpack")]
pub use msgpack::MsgPackCodec;
#[cfg(feature = "prost")]
pub use protobuf::ProstCodec;
pub use raw::RawCodec;

/// Turns messages of type `M` into payload bytes and back.
///
/// One codec value serves every message type it supports: `ProstCodec`
/// implements `Codec<M>` for every prost message, `JsonCodec` for every
/// serde type. Implement it for your own wire format:
///
/// ```
/// use bytes::Bytes;
/// use walle_codec::{Codec, CodecError};
///
/// /// Little-endian u64 counters.
/// #[derive(Debug, Clone, Copy)]
/// struct U64Codec;
///
/// impl Codec<u64> for U64Codec {
///     fn encode(&self, msg: &u64, dst: &mut Vec<u8>) -> Result<(), CodecError> {
///         dst.extend_from_slice(&msg.to_le_bytes());
///         Ok(())
///     }
///     fn decode(&self, src: Bytes) -> Result<u64, CodecError> {
///         let raw: [u8; 8] = src[..].try_into().map_err(CodecError::decode)?;
///         Ok(u64::from_le_bytes(raw))
///     }
/// }
///
/// let mut buf = Vec::new();
/// U64Codec.encode(&7, &mut buf)?;
/// assert_eq!(U64Codec.decode(Bytes::from(buf))?, 7);
/// assert_eq!(U64Codec.decode(Bytes::from_static(b"short")).unwrap_err().code().0, 3);
/// # Ok::<(), CodecError>(())
/// ```
pub trait Codec<M>: Send + Sync + 'static {
    /// Appends the encoding of `msg` to `dst`.
    fn encode(&self, msg: &M, dst: &mut Vec<u8>) -> Result<(), CodecError>;

    /// Decodes a message from `src`, a slice of the received frame.
    fn decode(&self, src: Bytes) -> Result<M, CodecError>;

    /// The message's encoding when it already is a byte slice, so that a
    /// caller can skip [`encode`](Codec::encode) and its copy. `None` by
    /// default.
    fn as_encoded<'m>(&self, msg: &'m M) -> Option<&'m [u8]> {
        let _ = msg;
        None
    }
}
