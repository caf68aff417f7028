use bytes::Bytes;

use crate::{Codec, CodecError};

/// Protobuf messages through prost. Fields declared as `bytes::Bytes`
/// (prost-build's `.bytes(["."])`) decode as slices of the frame, no copy.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProstCodec;

impl<M: prost::Message + Default + 'static> Codec<M> for ProstCodec {
    fn encode(&self, msg: &M, dst: &mut Vec<u8>) -> Result<(), CodecError> {
        dst.reserve(msg.encoded_len());
        msg.encode(dst).map_err(CodecError::encode)
    }
    fn decode(&self, src: Bytes) -> Result<M, CodecError> {
        M::decode(src).map_err(CodecError::decode)
    }
}
