#![no_main]

//! Arbitrary bytes through the LZ4 encoder's decoder: an error or a body
//! within the decompressed-size limit, never a panic or an allocation
//! above the limit; and arbitrary bytes encoded decode back unchanged.

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use walle_packet::{Lz4Encoder, Lz4Options, PacketEncoder};

const LIMIT: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let lz4 = Lz4Encoder::new(Lz4Options { min_size: 1, max_decompressed: LIMIT });
    if let Ok(body) = lz4.decode(Bytes::copy_from_slice(data)) {
        assert!(body.len() <= LIMIT.max(data.len()));
    }
    let mut wire = Vec::new();
    lz4.encode(data, &mut wire).expect("encoding never fails");
    let back = Lz4Encoder::new(Lz4Options { min_size: 1, max_decompressed: usize::MAX })
        .decode(Bytes::from(wire))
        .expect("what was encoded decodes");
    assert_eq!(&back[..], data);
});
