#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use walle_packet::WalleFormat;

fuzz_target!(|data: &[u8]| {
    common::check(&WalleFormat::with_ids(), data);
});
