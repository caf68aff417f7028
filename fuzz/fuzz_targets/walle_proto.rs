#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use walle_packet::ProtoFormat;

fuzz_target!(|data: &[u8]| {
    common::check(&ProtoFormat::new(), data);
});
