//! Per-frame byte transforms: compression, authenticated encryption.

use bytes::Bytes;
use walle_codec::BoxError;

/// A byte transform applied to every frame body after the packet format
/// encodes it, and undone before the format decodes it. Several stack: the
/// receive side undoes them in the reverse order of the send side.
///
/// A decoder that expands data (decompression) must bound its output: the
/// maximum frame size applies to the bytes on the wire only.
///
/// ```
/// use bytes::Bytes;
/// use walle_packet::PacketEncoder;
///
/// /// XORs every byte with a key: a stand-in for a real cipher.
/// #[derive(Debug)]
/// struct Xor(u8);
///
/// impl PacketEncoder for Xor {
///     fn name(&self) -> &'static str { "xor" }
///     fn encode(&self, body: &[u8], dst: &mut Vec<u8>) -> Result<(), walle_codec::BoxError> {
///         dst.extend(body.iter().map(|b| b ^ self.0));
///         Ok(())
///     }
///     fn decode(&self, body: Bytes) -> Result<Bytes, walle_codec::BoxError> {
///         Ok(body.iter().map(|b| b ^ self.0).collect::<Vec<u8>>().into())
///     }
/// }
/// ```
pub trait PacketEncoder: Send + Sync + 'static {
    /// A short name for logs and errors.
    fn name(&self) -> &'static str;

    /// Appends the transformed `body` to `dst`.
    fn encode(&self, body: &[u8], dst: &mut Vec<u8>) -> Result<(), BoxError>;

    /// Undoes [`encode`](PacketEncoder::encode).
    fn decode(&self, body: Bytes) -> Result<Bytes, BoxError>;

    /// A fresh instance for one connection, for an encoder whose state
    /// belongs to one stream of frames (a sequence number, a replay
    /// window): every connection's process then encodes and decodes
    /// through its own. `role` is the end of the connection the instance
    /// serves, when the pipeline knows it ([`Protocol::with_role`]; the io
    /// layer sets it), so that an encoder can refuse frames its own side
    /// sent. `None`, the default, means this instance serves every
    /// connection, as a stateless transform can.
    ///
    /// A [`Protocol`](crate::Protocol) with such an encoder cannot encode
    /// a frame once for many connections: a broadcast encodes per session.
    ///
    /// [`Protocol::with_role`]: crate::Protocol::with_role
    fn for_connection(&self, role: Option<Role>) -> Option<Box<dyn PacketEncoder>> {
        let _ = role;
        None
    }
}

/// Which end of a connection a pipeline serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that dialled.
    Client,
    /// The end that accepted.
    Server,
}
