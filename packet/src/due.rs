//! The packet of the due game-server framework.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::packet::{Cmd, FLAG_ERROR, Head, Packet};
use crate::{Framing, PacketError, ProtocolWrapper, fits_u32, span};

/// The due packet.
///
/// ```text
/// u32 size | u8 header (bit 7 heartbeat, bits 0..6 extcode) | iN route | iM seq | payload
/// ```
/// Route (N = 1, 2 or 4 bytes) and seq (M = 0, 1, 2 or 4 bytes) are signed
/// and use the framing's byte order. A heartbeat is `size = 1, header 0x80`,
/// or `size = 9` with an `i64` time after the header.
///
/// due has no request/response mark: a response reuses the request's route
/// and seq, so the receiver matches it against its pending calls
/// ([`marks_responses`](ProtocolWrapper::marks_responses) is false). Routes
/// are `u32` ids whose bits hold the signed route (`-1i32 as u32` for -1).
///
/// So on a connection where both sides make calls, a peer's *request*
/// whose seq equals one of our pending calls' seq is taken as that call's
/// answer, and the request is lost. The process layer avoids it when the
/// two sides call from disjoint seq ranges (walle-process's
/// `ProcessOptions::seq_range`: one side `Lower`, the other `Upper`).
///
/// Error responses are marked with the extcode [`error_extcode`]
/// (default 1, with a `u32 code | description` payload); due's own peers
/// ignore the extcode. `None` makes error responses unencodable.
///
/// [`error_extcode`]: DueFormat::error_extcode
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DueFormat {
    /// Width of the route: 1, 2 (default) or 4 bytes.
    pub route_bytes: u8,
    /// Width of the seq: 0 (no seq), 1, 2 (default) or 4 bytes.
    pub seq_bytes: u8,
    /// Extcode marking an error response (1..=127), if any.
    pub error_extcode: Option<u8>,
    /// Length prefix and byte order of every field: 4 bytes, big-endian.
    pub framing: Framing,
}

impl Default for DueFormat {
    fn default() -> Self {
        DueFormat {
            route_bytes: 2,
            seq_bytes: 2,
            error_extcode: Some(1),
            framing: Framing::default(),
        }
    }
}

impl DueFormat {
    /// The default layout: 2-byte route, 2-byte seq, big-endian.
    pub fn new() -> Self {
        DueFormat::default()
    }

    /// Sets the route width (1, 2 or 4; others become 2).
    pub fn route_bytes(mut self, n: u8) -> Self {
        self.route_bytes = if matches!(n, 1 | 2 | 4) { n } else { 2 };
        self
    }

    /// Sets the seq width (0, 1, 2 or 4; others become 2).
    pub fn seq_bytes(mut self, n: u8) -> Self {
        self.seq_bytes = if matches!(n, 0 | 1 | 2 | 4) { n } else { 2 };
        self
    }

    /// Sets the extcode that marks error responses.
    pub fn error_extcode(mut self, extcode: Option<u8>) -> Self {
        self.error_extcode = extcode.filter(|&e| (1..0x80).contains(&e));
        self
    }

    /// Replaces the framing (its byte order applies to every field).
    pub fn framing(mut self, framing: Framing) -> Self {
        self.framing = framing;
        self
    }

    fn widths(&self) -> (usize, usize) {
        let route = if matches!(self.route_bytes, 1 | 2 | 4) {
            self.route_bytes
        } else {
            2
        };
        let seq = if matches!(self.seq_bytes, 0 | 1 | 2 | 4) {
            self.seq_bytes
        } else {
            2
        };
        (usize::from(route), usize::from(seq))
    }
}

/// True when `v` fits a signed integer of `width` bytes.
fn fits(v: i64, width: usize) -> bool {
    let bits = 8 * width as u32;
    let min = -(1i64 << (bits - 1));
    (min..=-(min + 1)).contains(&v)
}

const HEARTBEAT: u8 = 0x80;

impl ProtocolWrapper for DueFormat {
    fn name(&self) -> &'static str {
        "due"
    }

    fn framing(&self) -> Framing {
        self.framing
    }

    fn decode(&self, body: Bytes) -> Result<Packet, PacketError> {
        let len = body.len();
        let Some(&header) = body.first() else {
            return Err(PacketError::truncated("due header", 1, 0));
        };
        fits_u32(len)?;
        let order = self.framing.order;
        let mut packet = Packet::empty(body, Cmd::Notify);
        let body = &packet.body;
        if header & HEARTBEAT != 0 {
            packet.heartbeat = Some(match len {
                1 => None,
                9 => Some(order.read_int(&body[1..], 8)),
                _ => {
                    return Err(PacketError::Malformed(
                        "heartbeat of a size other than 1 or 9",
                    ));
                }
            });
            return Ok(packet);
        }
        let (route_len, seq_len) = self.widths();
        let head = 1 + route_len + seq_len;
        if len < head {
            return Err(PacketError::truncated("due header", head, len));
        }
        let extcode = header & 0x7f;
        packet.id = order.read_int(&body[1..], route_len) as i32 as u32;
        if seq_len > 0 {
            packet.seq = order.read_int(&body[1 + route_len..], seq_len) as u64;
        }
        let is_error = extcode != 0 && self.error_extcode == Some(extcode);
        packet.cmd = match (is_error, packet.seq) {
            (true, _) => Cmd::Response,
            (false, 0) => Cmd::Notify,
            (false, _) => Cmd::Request,
        };
        if is_error {
            packet.flags = FLAG_ERROR;
        } else {
            packet.reserved = extcode;
        }
        packet.payload = span(head, len - head);
        Ok(packet)
    }

    fn encode(
        &self,
        head: &Head<'_>,
        payload: &[u8],
        dst: &mut Vec<u8>,
    ) -> Result<(), PacketError> {
        if !head.uri.is_empty() {
            return Err(PacketError::Unencodable("due carries numeric routes only"));
        }
        if head.metadata.is_some_and(|m| !m.is_empty()) {
            return Err(PacketError::Unencodable("due carries no metadata"));
        }
        let header = if head.flags & FLAG_ERROR != 0 {
            self.error_extcode.ok_or(PacketError::NotSupported {
                format: "due",
                what: "error responses without an error extcode",
            })?
        } else {
            head.reserved & 0x7f
        };
        let (route_len, seq_len) = self.widths();
        let route = i64::from(head.id as i32);
        if !fits(route, route_len) {
            return Err(PacketError::Unencodable(
                "route outside the signed range of its width",
            ));
        }
        let seq = head.seq as i64;
        if seq_len == 0 && seq != 0 || seq_len > 0 && !fits(seq, seq_len) {
            return Err(PacketError::Unencodable(
                "seq outside the signed range of its width",
            ));
        }
        let order = self.framing.order;
        dst.reserve(1 + route_len + seq_len + payload.len());
        dst.push(header);
        order.put_uint(dst, route_len, route as u64);
        if seq_len > 0 {
            order.put_uint(dst, seq_len, seq as u64);
        }
        dst.extend_from_slice(payload);
        Ok(())
    }

    fn encode_heartbeat(&self, time: Option<i64>, dst: &mut Vec<u8>) -> Result<(), PacketError> {
        dst.push(HEARTBEAT);
        if let Some(time) = time {
            self.framing.order.put_uint(dst, 8, time as u64);
        }
        Ok(())
    }

    fn max_seq(&self) -> u64 {
        match self.widths().1 {
            0 => 0,
            n => (1u64 << (8 * n - 1)) - 1,
        }
    }

    fn marks_responses(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_ranges() {
        assert!(fits(127, 1) && fits(-128, 1) && !fits(128, 1) && !fits(-129, 1));
        assert!(fits(i64::from(i32::MIN), 4) && !fits(1 << 31, 4));
        assert_eq!(DueFormat::new().max_seq(), 32767);
        assert_eq!(DueFormat::new().seq_bytes(0).max_seq(), 0);
    }
}
