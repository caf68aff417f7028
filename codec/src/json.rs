use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Codec, CodecError};

/// JSON through serde_json.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec;

impl<M: Serialize + DeserializeOwned + 'static> Codec<M> for JsonCodec {
    fn encode(&self, msg: &M, dst: &mut Vec<u8>) -> Result<(), CodecError> {
        serde_json::to_writer(dst, msg).map_err(CodecError::encode)
    }
    fn decode(&self, src: Bytes) -> Result<M, CodecError> {
        serde_json::from_slice(&src).map_err(CodecError::decode)
    }
}
