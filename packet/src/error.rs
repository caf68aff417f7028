use walle_codec::{BoxError, Code};

/// A frame or packet that cannot be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// A length over the maximum frame size (wire code 6). On read, raised
    /// from the length field before any buffer of that size exists.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The length announced or produced.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A frame shorter than its own header says (wire code 6).
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        /// The part that is cut short.
        what: &'static str,
        /// Bytes the part needs.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// A field with an impossible value (wire code 3).
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// A part of a packet (uri, payload, metadata) whose span does not lie
    /// within the body it is said to be in (wire code 3).
    #[error("{part} at {start}..{end} is outside the {len}-byte body")]
    OutOfBody {
        /// The part: `"uri"`, `"payload"` or `"metadata"`.
        part: &'static str,
        /// The span's start.
        start: usize,
        /// The span's end.
        end: usize,
        /// The body's length.
        len: usize,
    },
    /// A packet the format cannot express, such as a 300-byte uri in
    /// `walle` or a route outside `due`'s signed range (wire code 2).
    #[error("cannot encode: {0}")]
    Unencodable(&'static str),
    /// The format has no such packet, such as a heartbeat in `walle` (code 4).
    #[error("not supported by the {format} format: {what}")]
    NotSupported {
        /// The format's name.
        format: &'static str,
        /// What was asked of it.
        what: &'static str,
    },
    /// A programming error, such as answering a packet that is not a
    /// request (wire code 7).
    #[error("unexpected: {0}")]
    Unexpected(&'static str),
    /// A packet encoder (compression, encryption) failed (code 3 on decode,
    /// 2 on encode).
    #[error("packet encoder {name} failed on {}", if *.decoding { "decode" } else { "encode" })]
    Encoder {
        /// The encoder's name.
        name: &'static str,
        /// True when decoding.
        decoding: bool,
        /// The cause.
        #[source]
        source: BoxError,
    },
}

impl PacketError {
    /// The wire code of this error.
    pub fn code(&self) -> Code {
        match self {
            PacketError::TooLarge { .. } | PacketError::Truncated { .. } => Code::PACKET_SIZE,
            PacketError::Malformed(_) | PacketError::OutOfBody { .. } => Code::UNMARSHAL,
            PacketError::Unencodable(_) => Code::MARSHAL,
            PacketError::NotSupported { .. } => Code::NOT_SUPPORTED,
            PacketError::Unexpected(_) => Code::UNEXPECTED,
            PacketError::Encoder { decoding: true, .. } => Code::UNMARSHAL,
            PacketError::Encoder {
                decoding: false, ..
            } => Code::MARSHAL,
        }
    }

    pub(crate) fn truncated(what: &'static str, need: usize, have: usize) -> Self {
        PacketError::Truncated { what, need, have }
    }
}
