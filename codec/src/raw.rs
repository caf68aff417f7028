use bytes::Bytes;

use crate::{Codec, CodecError};

/// Payloads that already are bytes: `Bytes` (zero copy both ways) and
/// `Vec<u8>` (copied on decode).
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec<Bytes> for RawCodec {
    fn encode(&self, msg: &Bytes, dst: &mut Vec<u8>) -> Result<(), CodecError> {
        dst.extend_from_slice(msg);
        Ok(())
    }
    fn decode(&self, src: Bytes) -> Result<Bytes, CodecError> {
        Ok(src)
    }
    fn as_encoded<'m>(&self, msg: &'m Bytes) -> Option<&'m [u8]> {
        Some(msg)
    }
}

impl Codec<Vec<u8>> for RawCodec {
    fn encode(&self, msg: &Vec<u8>, dst: &mut Vec<u8>) -> Result<(), CodecError> {
        dst.extend_from_slice(msg);
        Ok(())
    }
    fn decode(&self, src: Bytes) -> Result<Vec<u8>, CodecError> {
        Ok(src.to_vec())
    }
    fn as_encoded<'m>(&self, msg: &'m Vec<u8>) -> Option<&'m [u8]> {
        Some(msg)
    }
}

impl Codec<()> for RawCodec {
    fn encode(&self, _msg: &(), _dst: &mut Vec<u8>) -> Result<(), CodecError> {
        Ok(())
    }
    fn decode(&self, _src: Bytes) -> Result<(), CodecError> {
        Ok(())
    }
    fn as_encoded<'m>(&self, _msg: &'m ()) -> Option<&'m [u8]> {
        Some(&[])
    }
}
