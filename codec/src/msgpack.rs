use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Codec, CodecError};

/// MessagePack through rmp-serde. Structs encode as maps keyed by field
/// name, so peers in other languages read them without a schema.
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgPackCodec;

impl<M: Serialize + DeserializeOwned + 'static> Codec<M> for MsgPackCodec {
    fn encode(&self, msg: &M, dst: &mut Vec<u8>) -> Result<(), CodecError> {
        msg.serialize(&mut rmp_serde::Serializer::new(dst).with_struct_map())
            .map_err(CodecError::encode)
    }
    fn decode(&self, src: Bytes) -> Result<M, CodecError> {
        rmp_serde::from_slice(&src).map_err(CodecError::decode)
    }
}
