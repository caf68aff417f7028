#![no_main]

//! Error payloads of every format: decode arbitrary bytes; what decodes
//! re-encodes to a payload that decodes to the same code and text.

use libfuzzer_sys::fuzz_target;
use walle_packet::{DueFormat, ProtoFormat, ProtocolWrapper, WalleFormat};

fuzz_target!(|data: &[u8]| {
    let formats: [&dyn ProtocolWrapper; 3] = [&WalleFormat::new(), &ProtoFormat::new(), &DueFormat::new()];
    for format in formats {
        let Ok((code, desc)) = format.decode_error(data) else { continue };
        let mut again = Vec::new();
        format.encode_error(code, desc, &mut again);
        assert_eq!(format.decode_error(&again).expect("re-encoded error decodes"), (code, desc));
    }
});
