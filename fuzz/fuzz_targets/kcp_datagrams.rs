#![no_main]

//! Datagrams through the kcp backend's endpoint, a server's and a
//! client's, against a fake clock: raw bytes, and KCP segments built from
//! the input so that most pass the header check and reach the KCP states
//! (acks, pushes, window probes, odd fragment counts and lengths, wrapping
//! timestamps). Never a panic; the session table stays bounded.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    walle_net::kcp_fuzzing::datagrams(data);
});
