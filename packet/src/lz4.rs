//! LZ4 compression of frame bodies above a size (feature `lz4`).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use walle_codec::BoxError;

use crate::PacketEncoder;

/// Marker byte of a body sent as it is.
const STORED: u8 = 0;
/// Marker byte of an LZ4 block, followed by the decompressed length (u32,
/// little-endian) and the block.
const LZ4: u8 = 1;
/// LZ4 cannot expand one input byte into more than 255 output bytes: a
/// body declaring more than this many per compressed byte is refused
/// before anything is allocated.
const MAX_RATIO: usize = 255;

/// Options of [`Lz4Encoder`]; loadable from a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lz4Options {
    /// Bodies shorter than this pass uncompressed, behind the one marker
    /// byte. Default 256.
    pub min_size: usize,
    /// Most bytes a compressed body may decompress to; a body declaring
    /// more is refused before anything is allocated. Default 4 MiB.
    pub max_decompressed: usize,
}

impl Default for Lz4Options {
    fn default() -> Self {
        Lz4Options {
            min_size: 256,
            max_decompressed: 4 << 20,
        }
    }
}

/// Compresses frame bodies of at least [`Lz4Options::min_size`] bytes as
/// LZ4 blocks; smaller ones, and ones that would not shrink, pass as they
/// are. Stateless: one instance serves every connection.
///
/// Wire: one marker byte, `0` (the body follows as it is) or `1` (the
/// decompressed length as a little-endian `u32`, then one LZ4 block).
///
/// ```
/// use bytes::Bytes;
/// use walle_packet::{Lz4Encoder, Lz4Options, PacketEncoder};
///
/// let lz4 = Lz4Encoder::new(Lz4Options::default());
/// let body = b"walle ".repeat(100);
/// let mut wire = Vec::new();
/// lz4.encode(&body, &mut wire)?;
/// assert!(wire.len() < body.len() / 4);
/// assert_eq!(&lz4.decode(Bytes::from(wire))?[..], &body[..]);
/// # Ok::<(), walle_codec::BoxError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Lz4Encoder {
    options: Lz4Options,
}

impl Lz4Encoder {
    /// An encoder with `options`.
    pub fn new(options: Lz4Options) -> Self {
        Lz4Encoder { options }
    }

    /// The options in use.
    pub fn options(&self) -> &Lz4Options {
        &self.options
    }
}

/// Why a compressed body was refused.
#[derive(Debug, thiserror::Error)]
pub enum Lz4Error {
    /// The body has no marker byte.
    #[error("an empty body has no compression marker")]
    Empty,
    /// The marker byte is neither 0 nor 1.
    #[error("unknown compression marker {0}")]
    Marker(u8),
    /// The body ends inside the decompressed length.
    #[error("a compressed body shorter than its length field")]
    Truncated,
    /// The declared length is above the configured limit or above what
    /// the block could hold.
    #[error(
        "a compressed body of {compressed} bytes declares {declared} decompressed, above the limit of {limit}"
    )]
    TooLarge {
        /// Bytes of the LZ4 block.
        compressed: usize,
        /// Bytes it claims to decompress to.
        declared: usize,
        /// The most it may: the configured limit, or 255 per block byte.
        limit: usize,
    },
    /// The block is malformed or decompresses to another length.
    #[error("a malformed LZ4 block: {0}")]
    Block(String),
}

impl PacketEncoder for Lz4Encoder {
    fn name(&self) -> &'static str {
        "lz4"
    }

    fn encode(&self, body: &[u8], dst: &mut Vec<u8>) -> Result<(), BoxError> {
        let start = dst.len();
        if body.len() >= self.options.min_size.max(1) && u32::try_from(body.len()).is_ok() {
            let bound = lz4_flex::block::get_maximum_output_size(body.len());
            dst.reserve(5 + bound);
            dst.push(LZ4);
            dst.extend_from_slice(&(body.len() as u32).to_le_bytes());
            let at = dst.len();
            dst.resize(at + bound, 0);
            match lz4_flex::block::compress_into(body, &mut dst[at..]) {
                Ok(n) if 5 + n < 1 + body.len() => {
                    dst.truncate(at + n);
                    return Ok(());
                }
                // Incompressible, or (never with a buffer of the bound)
                // no room: sent as it is.
                _ => dst.truncate(start),
            }
        }
        dst.push(STORED);
        dst.extend_from_slice(body);
        Ok(())
    }

    fn decode(&self, body: Bytes) -> Result<Bytes, BoxError> {
        let (&marker, rest) = body.split_first().ok_or(Lz4Error::Empty)?;
        match marker {
            STORED => Ok(body.slice(1..)),
            LZ4 => {
                let (len, block) = rest.split_first_chunk::<4>().ok_or(Lz4Error::Truncated)?;
                let declared = u32::from_le_bytes(*len) as usize;
                let limit = self
                    .options
                    .max_decompressed
                    .min(block.len().saturating_mul(MAX_RATIO));
                if declared > limit {
                    return Err(Lz4Error::TooLarge {
                        compressed: block.len(),
                        declared,
                        limit,
                    }
                    .into());
                }
                let mut out = vec![0u8; declared];
                match lz4_flex::block::decompress_into(block, &mut out) {
                    Ok(n) if n == declared => Ok(Bytes::from(out)),
                    Ok(n) => Err(Lz4Error::Block(format!(
                        "{n} bytes decompressed, {declared} declared"
                    ))
                    .into()),
                    Err(e) => Err(Lz4Error::Block(e.to_string()).into()),
                }
            }
            other => Err(Lz4Error::Marker(other).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(lz4: &Lz4Encoder, body: &[u8]) -> Vec<u8> {
        let mut wire = Vec::new();
        lz4.encode(body, &mut wire).expect("encodes");
        let back = lz4.decode(Bytes::from(wire.clone())).expect("decodes");
        assert_eq!(&back[..], body);
        wire
    }

    #[test]
    fn small_bodies_pass_untouched_behind_the_marker() {
        let lz4 = Lz4Encoder::default();
        let body = b"a".repeat(255);
        let wire = round_trip(&lz4, &body);
        assert_eq!((wire[0], &wire[1..]), (STORED, &body[..]));
        assert_eq!(round_trip(&lz4, b""), [STORED]);
    }

    #[test]
    fn large_compressible_bodies_shrink() {
        let lz4 = Lz4Encoder::default();
        let body = b"position x=10 y=20; ".repeat(200);
        let wire = round_trip(&lz4, &body);
        assert_eq!(wire[0], LZ4);
        assert_eq!(
            u32::from_le_bytes(wire[1..5].try_into().unwrap()) as usize,
            body.len()
        );
        assert!(wire.len() < body.len() / 5, "{} bytes", wire.len());
    }

    #[test]
    fn incompressible_bodies_are_stored() {
        let lz4 = Lz4Encoder::default();
        // A xorshift stream: no repeats for LZ4 to find.
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let body: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let wire = round_trip(&lz4, &body);
        assert_eq!((wire[0], wire.len()), (STORED, body.len() + 1));
    }

    #[test]
    fn a_declared_length_above_the_limit_is_refused_before_allocating() {
        let lz4 = Lz4Encoder::new(Lz4Options {
            min_size: 1,
            max_decompressed: 1000,
        });
        let mut wire = Vec::new();
        Lz4Encoder::new(Lz4Options {
            min_size: 1,
            max_decompressed: 1 << 20,
        })
        .encode(&[7u8; 2000], &mut wire)
        .expect("encodes");
        let err = lz4.decode(Bytes::from(wire)).expect_err("above the limit");
        assert!(err.to_string().contains("above the limit of 1000"), "{err}");

        // A few bytes declaring 4 GiB: refused by the ratio bound.
        let mut bomb = vec![LZ4];
        bomb.extend_from_slice(&u32::MAX.to_le_bytes());
        bomb.extend_from_slice(&[0x1f, 0, 0]);
        let err = Lz4Encoder::new(Lz4Options {
            min_size: 1,
            max_decompressed: usize::MAX,
        })
        .decode(Bytes::from(bomb))
        .expect_err("a bomb");
        assert!(err.to_string().contains("limit of 765"), "{err}");
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let lz4 = Lz4Encoder::default();
        for (body, says) in [
            (&b""[..], "empty"),
            (&[9, 1, 2][..], "marker 9"),
            (&[LZ4, 1, 0][..], "shorter than its length"),
            (&[LZ4, 10, 0, 0, 0, 0xf0][..], "malformed"),
            (
                &[LZ4, 3, 0, 0, 0, 0x10, b'a'][..],
                "1 bytes decompressed, 3 declared",
            ),
        ] {
            let err = lz4.decode(Bytes::copy_from_slice(body)).expect_err(says);
            assert!(err.to_string().contains(says), "{body:?}: {err}");
        }
    }
}
