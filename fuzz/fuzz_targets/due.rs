#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use walle_packet::DueFormat;

fuzz_target!(|data: &[u8]| {
    common::check(&DueFormat::new(), data);
});
