//! Payload encoding shared by calls, answers and broadcasts.

use walle_codec::Codec;
use walle_mempool::Pool;

use crate::error::Error;

/// Hands `f` the payload of `msg`: the message itself when the codec can
/// lend its bytes, else the message encoded into a buffer from `pool` (of
/// `size` bytes to start with).
pub(crate) fn with_payload<C: Codec<M>, M, R>(
    codec: &C,
    pool: &dyn Pool,
    size: usize,
    msg: &M,
    f: impl FnOnce(&[u8]) -> Result<R, Error>,
) -> Result<R, Error> {
    match codec.as_encoded(msg) {
        Some(payload) => f(payload),
        None => {
            let mut buf = pool.alloc(size);
            codec.encode(msg, buf.as_mut_vec())?;
            f(&buf)
        }
    }
}
