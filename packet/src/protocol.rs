//! The per-connection pipeline: framing, packet encoders, packet format.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use walle_codec::Code;

use crate::packet::{Head, Packet};
use crate::{FrameDecoder, FrameMode, Framing, PacketEncoder, PacketError, ProtocolWrapper, Role};

/// Everything a connection needs to turn packets into bytes and back:
/// a [`ProtocolWrapper`], its [`Framing`] (replaceable) and any
/// [`PacketEncoder`]s. Cheap to clone and share.
///
/// Receive: `framing -> encoders (last added first) -> format`.
/// Send: `format -> encoders (first added first) -> framing`.
#[derive(Clone)]
pub struct Protocol {
    wrapper: Arc<dyn ProtocolWrapper>,
    framing: Framing,
    encoders: Arc<[Arc<dyn PacketEncoder>]>,
    /// Whether an encoder keeps per-connection state
    /// ([`PacketEncoder::for_connection`]).
    per_connection: bool,
    /// The end of connections this pipeline serves, if known.
    role: Option<Role>,
}

impl Protocol {
    /// The pipeline of `wrapper` with its own framing and no encoders.
    pub fn new(wrapper: impl ProtocolWrapper) -> Self {
        Protocol::from_arc(Arc::new(wrapper))
    }

    /// Like [`new`](Protocol::new), for a shared or dynamically chosen format.
    pub fn from_arc(wrapper: Arc<dyn ProtocolWrapper>) -> Self {
        let framing = wrapper.framing();
        Protocol {
            wrapper,
            framing,
            encoders: Arc::new([]),
            per_connection: false,
            role: None,
        }
    }

    /// Replaces the framing.
    pub fn with_framing(mut self, framing: Framing) -> Self {
        self.framing = framing;
        self
    }

    /// Sets only the maximum frame size.
    pub fn with_max_frame(mut self, max_frame: usize) -> Self {
        self.framing.max_frame = max_frame;
        self
    }

    /// Adds an encoder after those already added.
    pub fn with_encoder(mut self, encoder: impl PacketEncoder) -> Self {
        self.per_connection |= encoder.for_connection(None).is_some();
        let mut encoders = self.encoders.to_vec();
        encoders.push(Arc::new(encoder));
        self.encoders = encoders.into();
        self
    }

    /// True when an encoder keeps per-connection state, so that a frame
    /// encoded for one connection cannot be sent on another.
    pub fn per_connection(&self) -> bool {
        self.per_connection
    }

    /// Says which end of its connections this pipeline serves, for the
    /// encoders that keep per-connection state (an `AeadEncoder` then
    /// refuses frames sent by its own side). Servers and clients of the io
    /// layer set it on the pipelines of their connections.
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = Some(role);
        self
    }

    /// The end of its connections this pipeline serves, if set.
    pub fn role(&self) -> Option<Role> {
        self.role
    }

    /// The pipeline of one connection: the same format and framing, with
    /// a fresh instance of every encoder that keeps per-connection state.
    /// `None` when none does, and this pipeline serves every connection.
    pub fn for_connection(&self) -> Option<Protocol> {
        if !self.per_connection {
            return None;
        }
        let encoders: Vec<Arc<dyn PacketEncoder>> = self
            .encoders
            .iter()
            .map(|e| {
                e.for_connection(self.role)
                    .map_or_else(|| e.clone(), Arc::from)
            })
            .collect();
        Some(Protocol {
            wrapper: self.wrapper.clone(),
            framing: self.framing,
            encoders: encoders.into(),
            per_connection: true,
            role: self.role,
        })
    }

    /// The packet format.
    pub fn wrapper(&self) -> &dyn ProtocolWrapper {
        &*self.wrapper
    }

    /// The framing in use.
    pub fn framing(&self) -> &Framing {
        &self.framing
    }

    /// A fresh frame decoder for one stream.
    pub fn decoder(&self) -> FrameDecoder {
        self.framing.decoder()
    }

    /// Decodes one frame body (as cut by the [`FrameDecoder`]).
    pub fn decode(&self, body: Bytes) -> Result<Packet, PacketError> {
        let mut body = body;
        for encoder in self.encoders.iter().rev() {
            body = encoder
                .decode(body)
                .map_err(|source| PacketError::Encoder {
                    name: encoder.name(),
                    decoding: true,
                    source,
                })?;
        }
        self.wrapper.decode(body)
    }

    /// Appends one whole frame (length prefix included) to `dst`. On error
    /// `dst` is unchanged.
    pub fn encode(
        &self,
        head: &Head<'_>,
        payload: &[u8],
        dst: &mut Vec<u8>,
    ) -> Result<(), PacketError> {
        self.encode_in(FrameMode::Stream, head, payload, dst)
    }

    /// [`encode`](Protocol::encode) for a transport delimiting frames as
    /// `mode` says: without the length prefix on a message transport.
    pub fn encode_in(
        &self,
        mode: FrameMode,
        head: &Head<'_>,
        payload: &[u8],
        dst: &mut Vec<u8>,
    ) -> Result<(), PacketError> {
        self.encode_with(mode, dst, |body| self.wrapper.encode(head, payload, body))
    }

    /// Appends an error response frame answering with `code` and `desc`.
    pub fn encode_error(
        &self,
        head: &Head<'_>,
        code: Code,
        desc: &str,
        dst: &mut Vec<u8>,
    ) -> Result<(), PacketError> {
        self.encode_error_in(FrameMode::Stream, head, code, desc, dst)
    }

    /// [`encode_error`](Protocol::encode_error) in `mode`.
    pub fn encode_error_in(
        &self,
        mode: FrameMode,
        head: &Head<'_>,
        code: Code,
        desc: &str,
        dst: &mut Vec<u8>,
    ) -> Result<(), PacketError> {
        let mut payload = Vec::with_capacity(8 + desc.len());
        self.wrapper.encode_error(code, desc, &mut payload);
        self.encode_in(mode, &head.with_error(), &payload, dst)
    }

    /// Appends a heartbeat frame, if the format has one.
    pub fn encode_heartbeat(
        &self,
        time: Option<i64>,
        dst: &mut Vec<u8>,
    ) -> Result<(), PacketError> {
        self.encode_heartbeat_in(FrameMode::Stream, time, dst)
    }

    /// [`encode_heartbeat`](Protocol::encode_heartbeat) in `mode`.
    pub fn encode_heartbeat_in(
        &self,
        mode: FrameMode,
        time: Option<i64>,
        dst: &mut Vec<u8>,
    ) -> Result<(), PacketError> {
        self.encode_with(mode, dst, |body| self.wrapper.encode_heartbeat(time, body))
    }

    fn encode_with(
        &self,
        mode: FrameMode,
        dst: &mut Vec<u8>,
        body: impl FnOnce(&mut Vec<u8>) -> Result<(), PacketError>,
    ) -> Result<(), PacketError> {
        if self.encoders.is_empty() {
            return self.framing.encode_in(mode, dst, body);
        }
        let mut plain = Vec::new();
        body(&mut plain)?;
        for encoder in self.encoders.iter() {
            let mut out = Vec::with_capacity(plain.len() + 16);
            encoder
                .encode(&plain, &mut out)
                .map_err(|source| PacketError::Encoder {
                    name: encoder.name(),
                    decoding: false,
                    source,
                })?;
            plain = out;
        }
        self.framing.encode_in(mode, dst, |d| {
            d.extend_from_slice(&plain);
            Ok(())
        })
    }
}

impl fmt::Debug for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Protocol")
            .field("format", &self.wrapper.name())
            .field("framing", &self.framing)
            .field(
                "encoders",
                &self.encoders.iter().map(|e| e.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}
