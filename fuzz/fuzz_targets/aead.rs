#![no_main]

//! Arbitrary bytes through the sealing encoder's decoder, under a key the
//! input cannot know: always an error (a forgery would be a success),
//! never a panic. Then arbitrary bytes sealed open unchanged, and the
//! same packet with one byte flipped (where the input says) is refused.

use std::sync::OnceLock;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use walle_packet::{AeadEncoder, AeadKey, PacketEncoder};

fn key() -> &'static AeadKey {
    static KEY: OnceLock<AeadKey> = OnceLock::new();
    KEY.get_or_init(AeadKey::random)
}

fuzz_target!(|data: &[u8]| {
    let receiver = AeadEncoder::new(key().clone());
    assert!(receiver.decode(Bytes::copy_from_slice(data)).is_err(), "a forgery opened");

    let sender = AeadEncoder::new(key().clone());
    let mut wire = Vec::new();
    sender.encode(data, &mut wire).expect("sealing never fails");
    let mut flipped = wire.clone();
    let at = data.first().map_or(0, |&b| usize::from(b)) % flipped.len();
    flipped[at] ^= 0x80;
    assert!(receiver.decode(Bytes::from(flipped)).is_err(), "an altered packet opened");
    let opened = receiver.decode(Bytes::from(wire)).expect("a genuine packet opens");
    assert_eq!(&opened[..], data);
});
