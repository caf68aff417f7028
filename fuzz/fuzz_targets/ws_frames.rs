#![no_main]

//! Bytes through the ws backend's frame reader, on a server's link and a
//! client's, in pieces: every message handed on is within the limit, the
//! input buffer stays bounded, and what the link then writes (through a
//! socket cutting writes short) parses back as whole frames in order.
//! Never a panic otherwise.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    walle_net::ws_fuzzing::frames(data);
});
