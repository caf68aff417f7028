//! The packet model: inbound packets are views over one received body;
//! outbound packets are described by a borrowed [`Head`].

use std::fmt;
use std::ops::Range;

use bytes::Bytes;

use crate::PacketError;
use crate::metadata::{MetaKind, Metadata, MetadataView};
use crate::parts::PacketParts;

/// What a packet is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmd {
    /// One-way: a notify from a client or a push from a server. No answer.
    Notify,
    /// A request: the peer answers with a [`Cmd::Response`] of the same seq.
    Request,
    /// The answer to a request.
    Response,
}

/// Flag bit: the payload is an error (code + description), not a message.
pub const FLAG_ERROR: u32 = 0x01;

/// The route of an outbound request or notify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route<'a> {
    /// No route: the peer's fallback handler, if any, gets it.
    None,
    /// A string route such as `"game.Room/Join"`.
    Uri(&'a str),
    /// A numeric route (non-zero).
    Id(u32),
}

impl<'a> From<&'a str> for Route<'a> {
    fn from(uri: &'a str) -> Self {
        Route::Uri(uri)
    }
}

impl From<u32> for Route<'_> {
    fn from(id: u32) -> Self {
        Route::Id(id)
    }
}

/// The header fields of an outbound packet, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Head<'a> {
    /// What the packet is.
    pub cmd: Cmd,
    /// Flag bits; [`FLAG_ERROR`] marks an error payload.
    pub flags: u32,
    /// Eight user bits (`walle` only), carried unchanged request -> response.
    pub reserved: u8,
    /// Sequence id; a response echoes its request's.
    pub seq: u64,
    /// String route; empty for none.
    pub uri: &'a str,
    /// Numeric route; 0 for none.
    pub id: u32,
    /// Metadata to send, if any.
    pub metadata: Option<&'a Metadata>,
}

impl<'a> Head<'a> {
    fn new(cmd: Cmd, route: Route<'a>, seq: u64) -> Self {
        let (uri, id) = match route {
            Route::None => ("", 0),
            Route::Uri(uri) => (uri, 0),
            Route::Id(id) => ("", id),
        };
        Head {
            cmd,
            flags: 0,
            reserved: 0,
            seq,
            uri,
            id,
            metadata: None,
        }
    }

    /// A request on `route` with sequence `seq`.
    pub fn request(route: Route<'a>, seq: u64) -> Self {
        Head::new(Cmd::Request, route, seq)
    }

    /// A one-way packet on `route`.
    pub fn notify(route: Route<'a>) -> Self {
        Head::new(Cmd::Notify, route, 0)
    }

    /// The response to `request`: same seq, route and reserved bits, no
    /// metadata. Fails with code 7 when `request` is not a request.
    pub fn response_to(request: &'a Packet) -> Result<Self, PacketError> {
        Head::response_with_uri(request, request.uri())
    }

    /// The response to `request` whose uri is already known as `uri` (the
    /// name of the route it matched), sparing a second UTF-8 check of the
    /// request's uri. `uri` must equal the request's uri.
    pub fn response_with_uri(request: &Packet, uri: &'a str) -> Result<Self, PacketError> {
        if request.cmd() != Cmd::Request {
            return Err(PacketError::Unexpected("a response answers only a request"));
        }
        debug_assert_eq!(uri.as_bytes(), request.uri_bytes());
        Ok(Head {
            cmd: Cmd::Response,
            flags: 0,
            reserved: request.reserved(),
            seq: request.seq(),
            uri,
            id: request.id(),
            metadata: None,
        })
    }

    /// Sets the error flag: the payload is an error.
    pub fn with_error(mut self) -> Self {
        self.flags |= FLAG_ERROR;
        self
    }

    /// Attaches metadata.
    pub fn with_metadata(mut self, metadata: &'a Metadata) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Sets the reserved user bits.
    pub fn with_reserved(mut self, reserved: u8) -> Self {
        self.reserved = reserved;
        self
    }
}

/// A received packet: header fields plus zero-copy views (uri, payload,
/// metadata) into the one [`Bytes`] body it was decoded from.
///
/// Cloning is cheap (a reference count). Packets are plain values, not
/// pooled: nothing of one survives into another.
#[derive(Clone)]
pub struct Packet {
    pub(crate) body: Bytes,
    pub(crate) cmd: Cmd,
    pub(crate) flags: u32,
    pub(crate) reserved: u8,
    pub(crate) seq: u64,
    pub(crate) id: u32,
    pub(crate) uri: (u32, u32),
    pub(crate) payload: (u32, u32),
    pub(crate) meta: MetaKind,
    pub(crate) heartbeat: Option<Option<i64>>,
}

fn range((start, end): (u32, u32)) -> Range<usize> {
    start as usize..end as usize
}

impl Packet {
    pub(crate) fn empty(body: Bytes, cmd: Cmd) -> Self {
        Packet {
            body,
            cmd,
            flags: 0,
            reserved: 0,
            seq: 0,
            id: 0,
            uri: (0, 0),
            payload: (0, 0),
            meta: MetaKind::None,
            heartbeat: None,
        }
    }

    /// Starts a packet over `body` from the positions of its parts, checked
    /// when built: what a format of one's own returns from
    /// [`ProtocolWrapper::decode`](crate::ProtocolWrapper::decode).
    pub fn parts(body: Bytes, cmd: Cmd) -> PacketParts {
        PacketParts::new(body, cmd)
    }

    /// What the packet is.
    pub fn cmd(&self) -> Cmd {
        self.cmd
    }

    /// Flag bits as received.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// True when the payload is an error (code + description).
    pub fn is_error(&self) -> bool {
        self.flags & FLAG_ERROR != 0
    }

    /// The eight user bits of `walle`; 0 elsewhere.
    pub fn reserved(&self) -> u8 {
        self.reserved
    }

    /// The sequence id.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The numeric route; 0 for none.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The string route's bytes, with no UTF-8 check: for lookups that
    /// compare bytes.
    pub fn uri_bytes(&self) -> &[u8] {
        &self.body[range(self.uri)]
    }

    /// The string route; empty for none.
    pub fn uri(&self) -> &str {
        // Checked as UTF-8 when the packet was decoded.
        std::str::from_utf8(&self.body[range(self.uri)]).unwrap_or_default()
    }

    /// The route, numeric first (BEHAVIOURS 5).
    pub fn route(&self) -> Route<'_> {
        match (self.id, self.uri()) {
            (0, "") => Route::None,
            (0, uri) => Route::Uri(uri),
            (id, _) => Route::Id(id),
        }
    }

    /// The payload: a slice of the received body, no copy.
    pub fn payload(&self) -> Bytes {
        self.body.slice(range(self.payload))
    }

    /// The payload as a borrowed slice.
    pub fn payload_ref(&self) -> &[u8] {
        &self.body[range(self.payload)]
    }

    /// The metadata, read in place.
    pub fn metadata(&self) -> MetadataView<'_> {
        MetadataView::new(self.meta, &self.body)
    }

    /// True for a heartbeat (formats that have them).
    pub fn is_heartbeat(&self) -> bool {
        self.heartbeat.is_some()
    }

    /// The server time a heartbeat carried, if any.
    pub fn heartbeat_time(&self) -> Option<i64> {
        self.heartbeat.flatten()
    }

    /// The whole body the packet was decoded from.
    pub fn body(&self) -> &Bytes {
        &self.body
    }
}

impl fmt::Debug for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Packet");
        d.field("cmd", &self.cmd).field("seq", &self.seq);
        if self.id != 0 {
            d.field("id", &self.id);
        }
        if !self.uri().is_empty() {
            d.field("uri", &self.uri());
        }
        if self.flags != 0 {
            d.field("flags", &self.flags);
        }
        if self.heartbeat.is_some() {
            d.field("heartbeat", &self.heartbeat_time());
        }
        d.field("payload_len", &(self.payload.1 - self.payload.0))
            .finish()
    }
}
