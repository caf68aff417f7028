#![no_main]

//! Arbitrary bytes through the frame decoder, fed in arbitrary pieces,
//! under every length width and byte order: frames come out whole, in
//! order, and within the maximum; never a panic or a large allocation.

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use walle_packet::{ByteOrder, Framing};

fuzz_target!(|data: &[u8]| {
    let Some((&config, rest)) = data.split_first() else { return };
    let width = [1u8, 2, 4][usize::from(config % 3)];
    let order = if config & 4 == 0 { ByteOrder::Big } else { ByteOrder::Little };
    let framing = Framing::new(width, order).max_frame(4096);
    let step = usize::from(config >> 3) + 1;
    let mut decoder = framing.decoder();
    let mut stream = BytesMut::new();
    let mut total = 0;
    for piece in rest.chunks(step) {
        stream.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut stream) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= 4096);
                    total += usize::from(width) + frame.len();
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(stream.capacity() <= 64 * 1024, "reserved beyond the maximum frame");
    }
    assert!(total <= rest.len());
});
