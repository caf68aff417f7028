//! The `walle` format and its numeric-route variant `walle-id`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::metadata::{MetaKind, validate_walle};
use crate::packet::{Cmd, Head, Packet};
use crate::{Framing, PacketError, ProtocolWrapper, fits_u32, span};

const HEAD: usize = 16;
const HEAD_ID: usize = 20;

/// The compact binary format of walle (the default).
///
/// ```text
/// u32 len | u8 cmd | u8 flag | u8 reserved | u8 uri_len | u64 seq | u32 payload_len | uri | payload | metadata
/// ```
/// With [`with_ids`](WalleFormat::with_ids) (`walle-id`), the uri gives way
/// to a numeric route: `uri_len` is 0 and a `u32 msg_id` follows
/// `payload_len`. The two never mix on one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WalleFormat {
    /// Numeric routes (`walle-id`) instead of string routes.
    pub ids: bool,
    /// Length prefix: 4 bytes, big-endian, 1 MiB maximum by default.
    pub framing: Framing,
}

impl WalleFormat {
    /// `walle`, with string routes.
    pub fn new() -> Self {
        WalleFormat::default()
    }

    /// `walle-id`, with numeric routes.
    pub fn with_ids() -> Self {
        WalleFormat {
            ids: true,
            ..WalleFormat::default()
        }
    }

    /// Replaces the framing (maximum size, length byte order).
    pub fn framing(mut self, framing: Framing) -> Self {
        self.framing = framing;
        self
    }

    fn head_len(&self) -> usize {
        if self.ids { HEAD_ID } else { HEAD }
    }
}

fn be_u32(src: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([src[at], src[at + 1], src[at + 2], src[at + 3]])
}

impl ProtocolWrapper for WalleFormat {
    fn name(&self) -> &'static str {
        if self.ids { "walle-id" } else { "walle" }
    }

    fn framing(&self) -> Framing {
        self.framing
    }

    fn decode(&self, body: Bytes) -> Result<Packet, PacketError> {
        let len = body.len();
        let head = self.head_len();
        if len < head {
            return Err(PacketError::truncated("walle header", head, len));
        }
        fits_u32(len)?;
        let cmd = match body[0] {
            0 => Cmd::Notify,
            1 => Cmd::Request,
            2 => Cmd::Response,
            _ => return Err(PacketError::Malformed("unknown cmd")),
        };
        let uri_len = usize::from(body[3]);
        let seq = u64::from_be_bytes(body[4..12].try_into().unwrap_or_default());
        let payload_len = be_u32(&body, 12) as usize;
        let (id, uri) = if self.ids {
            if uri_len != 0 {
                return Err(PacketError::Malformed("walle-id frame carries a uri"));
            }
            (be_u32(&body, 16), (HEAD_ID, 0))
        } else {
            (0, (HEAD, uri_len))
        };
        let payload_start = head + uri_len;
        let payload_end = payload_start + payload_len;
        if payload_end > len {
            return Err(PacketError::truncated(
                "walle uri and payload",
                payload_end,
                len,
            ));
        }
        let uri_bytes = &body[uri.0..uri.0 + uri.1];
        // Routes are nearly always ASCII, which is UTF-8: the cheap test first.
        if !uri_bytes.is_ascii() && std::str::from_utf8(uri_bytes).is_err() {
            return Err(PacketError::Malformed("uri is not UTF-8"));
        }
        let meta = if payload_end < len {
            validate_walle(&body[payload_end..])?;
            MetaKind::Walle(payload_end as u32, len as u32)
        } else {
            MetaKind::None
        };
        let (flags, reserved) = (u32::from(body[1]), body[2]);
        let mut packet = Packet::empty(body, cmd);
        packet.flags = flags;
        packet.reserved = reserved;
        packet.seq = seq;
        packet.id = id;
        packet.uri = span(uri.0, uri.1);
        packet.payload = span(payload_start, payload_len);
        packet.meta = meta;
        Ok(packet)
    }

    fn encode(
        &self,
        head: &Head<'_>,
        payload: &[u8],
        dst: &mut Vec<u8>,
    ) -> Result<(), PacketError> {
        if self.ids && !head.uri.is_empty() {
            return Err(PacketError::Unencodable(
                "walle-id carries numeric routes only",
            ));
        }
        if !self.ids && head.id != 0 {
            return Err(PacketError::Unencodable(
                "walle carries string routes; use walle-id",
            ));
        }
        let uri_len = u8::try_from(head.uri.len())
            .map_err(|_| PacketError::Unencodable("uri over 255 bytes"))?;
        let flag =
            u8::try_from(head.flags).map_err(|_| PacketError::Unencodable("flags over 8 bits"))?;
        let payload_len = u32::try_from(payload.len()).map_err(|_| PacketError::TooLarge {
            len: payload.len(),
            max: u32::MAX as usize,
        })?;
        let meta_len = head.metadata.map_or(0, |m| m.walle_len());
        let total = self.head_len() + head.uri.len() + payload.len() + meta_len;
        // The frame's size limit is the protocol's (`Protocol::with_max_frame`
        // may raise the format's default): its framing checks the body.
        dst.reserve(total);
        let cmd = match head.cmd {
            Cmd::Notify => 0,
            Cmd::Request => 1,
            Cmd::Response => 2,
        };
        // The fixed header in one piece.
        let mut fixed = [0u8; HEAD_ID];
        fixed[..4].copy_from_slice(&[cmd, flag, head.reserved, uri_len]);
        fixed[4..12].copy_from_slice(&head.seq.to_be_bytes());
        fixed[12..16].copy_from_slice(&payload_len.to_be_bytes());
        if self.ids {
            fixed[16..20].copy_from_slice(&head.id.to_be_bytes());
        }
        dst.extend_from_slice(&fixed[..self.head_len()]);
        dst.extend_from_slice(head.uri.as_bytes());
        dst.extend_from_slice(payload);
        if let Some(metadata) = head.metadata {
            metadata.encode_walle(dst)?;
        }
        Ok(())
    }
}
