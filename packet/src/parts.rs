//! Building a received [`Packet`] from the parts a format found in a body:
//! what a [`ProtocolWrapper`](crate::ProtocolWrapper) of a user's own
//! returns from `decode`.

use std::ops::Range;

use bytes::Bytes;

use crate::metadata::{MetaKind, validate_walle};
use crate::packet::{Cmd, Packet};
use crate::{PacketError, fits_u32, span};

/// The parts of a received packet, as positions in its body, checked by
/// [`build`](PacketParts::build).
///
/// A format's `decode` reads its header, then says where the uri, payload
/// and metadata lie in the body; the packet it builds views them in place,
/// with no copy. Every span is checked against the body and the uri must
/// be UTF-8, so a peer's lengths can never make a packet that panics later.
///
/// Metadata is either absent or in the `walle` layout
/// (`u16 key_len | u16 value_count | key | value_count x (u16 len | value)`,
/// checked on build). A format whose metadata has a layout of its own reads
/// it in `decode`, then gives the packet a new body: the original bytes
/// followed by the metadata re-encoded with
/// [`Metadata::encode_walle`](crate::Metadata::encode_walle), whose span it
/// passes to [`walle_metadata`](PacketParts::walle_metadata). One copy per
/// packet that carries metadata; the others stay zero-copy.
///
/// ```
/// use bytes::Bytes;
/// use walle_packet::{Cmd, Packet, PacketError, Route};
///
/// // A made-up body: u16 route id | payload.
/// let body = Bytes::from_static(&[0, 42, b'h', b'i']);
/// let packet = Packet::parts(body.clone(), Cmd::Notify)
///     .id(42)
///     .payload(2..4)
///     .build()?;
/// assert_eq!(packet.route(), Route::Id(42));
/// assert_eq!(packet.payload_ref(), b"hi");
///
/// // A span a peer lied about is an error, not a panic later.
/// let lie = Packet::parts(body, Cmd::Notify).payload(2..400).build();
/// assert!(matches!(lie, Err(PacketError::OutOfBody { part: "payload", .. })));
/// # Ok::<(), PacketError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a PacketParts does nothing until built"]
pub struct PacketParts {
    body: Bytes,
    cmd: Cmd,
    flags: u32,
    reserved: u8,
    seq: u64,
    id: u32,
    uri: Range<usize>,
    payload: Range<usize>,
    metadata: Option<Range<usize>>,
    heartbeat: Option<Option<i64>>,
}

impl PacketParts {
    pub(crate) fn new(body: Bytes, cmd: Cmd) -> Self {
        PacketParts {
            body,
            cmd,
            flags: 0,
            reserved: 0,
            seq: 0,
            id: 0,
            uri: 0..0,
            payload: 0..0,
            metadata: None,
            heartbeat: None,
        }
    }

    /// Flag bits; [`FLAG_ERROR`](crate::FLAG_ERROR) marks an error payload.
    pub fn flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }

    /// Eight user bits carried from a request to its response.
    pub fn reserved(mut self, reserved: u8) -> Self {
        self.reserved = reserved;
        self
    }

    /// The sequence id; a response carries its request's.
    pub fn seq(mut self, seq: u64) -> Self {
        self.seq = seq;
        self
    }

    /// The numeric route (0 for none). It wins over a uri when both are set.
    pub fn id(mut self, id: u32) -> Self {
        self.id = id;
        self
    }

    /// Where the string route lies in the body (empty by default).
    pub fn uri(mut self, span: Range<usize>) -> Self {
        self.uri = span;
        self
    }

    /// Where the payload lies in the body (empty by default).
    pub fn payload(mut self, span: Range<usize>) -> Self {
        self.payload = span;
        self
    }

    /// Where `walle`-layout metadata lies in the body (none by default).
    pub fn walle_metadata(mut self, span: Range<usize>) -> Self {
        self.metadata = Some(span);
        self
    }

    /// Marks the packet as a heartbeat, with the sender's time if it sent
    /// one. The io layer answers and counts heartbeats; the router never
    /// sees them.
    pub fn heartbeat(mut self, time: Option<i64>) -> Self {
        self.heartbeat = Some(time);
        self
    }

    /// Checks every span against the body, the uri as UTF-8 and the
    /// metadata's layout, and builds the packet.
    ///
    /// Errors: [`PacketError::OutOfBody`] for a span outside the body (or
    /// reversed), [`PacketError::Malformed`] for a uri that is not UTF-8
    /// or broken metadata, [`PacketError::TooLarge`] for a body over 4 GiB.
    pub fn build(self) -> Result<Packet, PacketError> {
        let len = self.body.len();
        fits_u32(len)?;
        let check = |part, span: &Range<usize>| {
            if span.start <= span.end && span.end <= len {
                Ok(())
            } else {
                Err(PacketError::OutOfBody {
                    part,
                    start: span.start,
                    end: span.end,
                    len,
                })
            }
        };
        check("uri", &self.uri)?;
        check("payload", &self.payload)?;
        let uri = &self.body[self.uri.clone()];
        if !uri.is_ascii() && std::str::from_utf8(uri).is_err() {
            return Err(PacketError::Malformed("uri is not UTF-8"));
        }
        let meta = match &self.metadata {
            None => MetaKind::None,
            Some(span) => {
                check("metadata", span)?;
                validate_walle(&self.body[span.clone()])?;
                MetaKind::Walle(span.start as u32, span.end as u32)
            }
        };
        let at = |r: &Range<usize>| span(r.start, r.end - r.start);
        let (uri, payload) = (at(&self.uri), at(&self.payload));
        let mut packet = Packet::empty(self.body, self.cmd);
        packet.flags = self.flags;
        packet.reserved = self.reserved;
        packet.seq = self.seq;
        packet.id = self.id;
        packet.uri = uri;
        packet.payload = payload;
        packet.meta = meta;
        packet.heartbeat = self.heartbeat;
        Ok(packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Metadata, Route};

    fn body() -> Bytes {
        let mut md = Metadata::new();
        md.insert("lang", "en");
        let mut body = b"room.Joinhello".to_vec();
        md.encode_walle(&mut body).unwrap();
        Bytes::from(body)
    }

    #[test]
    fn parts_become_views_of_the_body() {
        let body = body();
        let end = body.len();
        let packet = Packet::parts(body, Cmd::Request)
            .seq(9)
            .flags(crate::FLAG_ERROR)
            .reserved(3)
            .uri(0..9)
            .payload(9..14)
            .walle_metadata(14..end)
            .build()
            .unwrap();
        assert_eq!(packet.route(), Route::Uri("room.Join"));
        assert_eq!(packet.payload_ref(), b"hello");
        assert_eq!(packet.metadata().get("lang"), Some("en"));
        assert_eq!((packet.seq(), packet.reserved()), (9, 3));
        assert!(packet.is_error() && !packet.is_heartbeat());
    }

    #[test]
    fn a_heartbeat_keeps_its_time() {
        let packet = Packet::parts(Bytes::new(), Cmd::Notify)
            .heartbeat(Some(-5))
            .build()
            .unwrap();
        assert!(packet.is_heartbeat());
        assert_eq!(packet.heartbeat_time(), Some(-5));
    }

    #[test]
    fn spans_outside_the_body_are_errors() {
        let len = body().len();
        #[allow(clippy::reversed_empty_ranges)]
        let cases = [
            (Packet::parts(body(), Cmd::Notify).uri(0..len + 1), "uri"),
            (Packet::parts(body(), Cmd::Notify).payload(5..2), "payload"),
            (
                Packet::parts(body(), Cmd::Notify).walle_metadata(len..len + 2),
                "metadata",
            ),
            (
                Packet::parts(body(), Cmd::Notify).payload(usize::MAX..usize::MAX),
                "payload",
            ),
        ];
        for (parts, expected) in cases {
            match parts.build() {
                Err(PacketError::OutOfBody { part, .. }) => assert_eq!(part, expected),
                other => panic!("{expected}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_bad_uri_or_metadata_is_malformed() {
        let body = Bytes::from_static(&[0xff, 0xfe, 0, 1, 0, 1, b'k']);
        let uri = Packet::parts(body.clone(), Cmd::Request).uri(0..2).build();
        assert!(matches!(uri, Err(PacketError::Malformed(_))), "{uri:?}");
        let md = Packet::parts(body, Cmd::Request)
            .walle_metadata(2..7)
            .build();
        assert!(matches!(md, Err(PacketError::Malformed(_))), "{md:?}");
    }
}
