//! The `walle-proto` format: a protobuf `Packet` behind a little-endian
//! length. Hand-decoded so that uri, body and metadata stay slices of the
//! frame; byte-identical to what protoc-generated code writes.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use walle_codec::Code;

use crate::metadata::{MetaKind, proto_entry};
use crate::packet::{Cmd, Head, Packet};
use crate::{ByteOrder, Framing, PacketError, ProtocolWrapper, fits_u32, pb, span};

/// The protobuf packet of the older Go walle.
///
/// ```text
/// u32 LITTLE-endian len | protobuf Packet {
///   int32 cmd = 1; uint32 flag = 2; uint64 sequence = 3;
///   map<string,string> metadata = 4; string uri = 5; uint32 reserved_rq = 6;
///   bytes body = 7; uint32 reserved_uint32 = 10; uint64 reserved_uint64 = 11;
///   string reserved_string = 12; bytes reserved_bytes = 13; }
/// ```
/// Error bodies are `ErrorResponse { int64 code = 1; bool logic_error = 2;
/// string desc = 3; }`. Metadata holds one value per key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProtoFormat {
    /// Length prefix: 4 bytes, little-endian, 1 MiB maximum by default.
    pub framing: Framing,
}

impl Default for ProtoFormat {
    fn default() -> Self {
        ProtoFormat {
            framing: Framing::new(4, ByteOrder::Little),
        }
    }
}

impl ProtoFormat {
    /// The format with its default framing.
    pub fn new() -> Self {
        ProtoFormat::default()
    }

    /// Replaces the framing.
    pub fn framing(mut self, framing: Framing) -> Self {
        self.framing = framing;
        self
    }
}

const CMD_REQUEST: u64 = 1;
const CMD_RESPONSE: u64 = 2;
const CMD_ONEWAY: u64 = 3;

fn utf8(src: &[u8]) -> Result<(), PacketError> {
    std::str::from_utf8(src)
        .map(drop)
        .map_err(|_| PacketError::Malformed("string is not UTF-8"))
}

impl ProtocolWrapper for ProtoFormat {
    fn name(&self) -> &'static str {
        "walle-proto"
    }

    fn framing(&self) -> Framing {
        self.framing
    }

    fn decode(&self, body: Bytes) -> Result<Packet, PacketError> {
        let len = body.len();
        fits_u32(len)?;
        let mut packet = Packet::empty(body, Cmd::Notify);
        // Fields are read through the packet's own handle: no extra count.
        let body = &packet.body;
        let mut cmd = 0u64;
        let mut pos = 0;
        while pos < len {
            let f = pb::field(body, &mut pos)?;
            let start = f.value as usize;
            match (f.number, f.wire) {
                (1, pb::VARINT) => cmd = f.value,
                (2, pb::VARINT) => packet.flags = f.value as u32,
                (3, pb::VARINT) => packet.seq = f.value,
                (4, pb::LEN) => {
                    proto_entry(&body[start..f.end])?;
                    packet.meta = MetaKind::Proto;
                }
                (5, pb::LEN) => {
                    utf8(&body[start..f.end])?;
                    packet.uri = span(start, f.end - start);
                }
                (6, pb::VARINT) => packet.id = f.value as u32,
                (7, pb::LEN) => packet.payload = span(start, f.end - start),
                (10 | 11, pb::VARINT) | (13, pb::LEN) => {}
                (12, pb::LEN) => utf8(&body[start..f.end])?,
                (1..=7 | 10..=13, _) => {
                    return Err(PacketError::Malformed("field of the wrong type"));
                }
                _ => {} // unknown fields are skipped, as protobuf requires
            }
        }
        packet.cmd = match cmd as i32 {
            1 => Cmd::Request,
            2 => Cmd::Response,
            3 => Cmd::Notify,
            _ => return Err(PacketError::Malformed("invalid cmd")),
        };
        Ok(packet)
    }

    fn encode(
        &self,
        head: &Head<'_>,
        payload: &[u8],
        dst: &mut Vec<u8>,
    ) -> Result<(), PacketError> {
        let cmd = match head.cmd {
            Cmd::Request => CMD_REQUEST,
            Cmd::Response => CMD_RESPONSE,
            Cmd::Notify => CMD_ONEWAY,
        };
        dst.reserve(24 + head.uri.len() + payload.len());
        pb::put_uint(dst, 1, cmd);
        if head.flags != 0 {
            pb::put_uint(dst, 2, u64::from(head.flags));
        }
        if head.seq != 0 {
            pb::put_uint(dst, 3, head.seq);
        }
        for (key, values) in head.metadata.iter().flat_map(|m| m.iter()) {
            let [value] = values else {
                return Err(PacketError::Unencodable(
                    "walle-proto metadata holds one value per key",
                ));
            };
            // Map entries omit empty keys and values, as protobuf encoders do.
            let entry_len = [key.len(), value.len()]
                .iter()
                .filter(|&&l| l > 0)
                .map(|&l| pb::bytes_field_len(l))
                .sum::<usize>();
            pb::put_key(dst, 4, pb::LEN);
            pb::put_varint(dst, entry_len as u64);
            if !key.is_empty() {
                pb::put_bytes(dst, 1, key.as_bytes());
            }
            if !value.is_empty() {
                pb::put_bytes(dst, 2, value.as_bytes());
            }
        }
        if !head.uri.is_empty() {
            pb::put_bytes(dst, 5, head.uri.as_bytes());
        }
        if head.id != 0 {
            pb::put_uint(dst, 6, u64::from(head.id));
        }
        if !payload.is_empty() {
            pb::put_bytes(dst, 7, payload);
        }
        Ok(())
    }

    fn encode_error(&self, code: Code, desc: &str, dst: &mut Vec<u8>) {
        if code.0 != 0 {
            pb::put_uint(dst, 1, u64::from(code.0));
        }
        if code.is_application() {
            pb::put_uint(dst, 2, 1);
        }
        if !desc.is_empty() {
            pb::put_bytes(dst, 3, desc.as_bytes());
        }
    }

    fn decode_error<'a>(&self, payload: &'a [u8]) -> Result<(Code, &'a str), PacketError> {
        let invalid = || PacketError::Malformed("invalid error payload");
        let (mut code, mut desc) = (0i64, "");
        let mut pos = 0;
        while pos < payload.len() {
            let f = pb::field(payload, &mut pos).map_err(|_| invalid())?;
            match (f.number, f.wire) {
                (1, pb::VARINT) => code = f.value as i64,
                (2, pb::VARINT) => {}
                (3, pb::LEN) => {
                    desc = std::str::from_utf8(&payload[f.value as usize..f.end])
                        .map_err(|_| invalid())?
                }
                (1..=3, _) => return Err(invalid()),
                _ => {}
            }
        }
        let code = u32::try_from(code).map_err(|_| invalid())?;
        Ok((Code(code), desc))
    }
}
