//! The packet encoders against implementations we did not write: the
//! reference LZ4 library (python-lz4) and libsodium's XChaCha20-Poly1305
//! (PyNaCl), through `tests/python/encoders_peer.py`.
#![cfg(all(feature = "lz4", feature = "aead"))]

use std::io::Write;
use std::process::{Command, Stdio};

use bytes::Bytes;
use walle_packet::{AeadEncoder, AeadKey, Lz4Encoder, Lz4Options, PacketEncoder};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Runs the Python peer on `request`; fails with how to install it when
/// python3 or its packages are missing.
fn peer(request: &serde_json::Value) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/encoders_peer.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed: apt-get install python3 (scripts/test.sh installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write the request");
    let out = child.wait_with_output().expect("the peer ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "the peer needs python-lz4 and PyNaCl: python3 -m pip install lz4 pynacl \
         (scripts/test.sh installs them): {stderr}"
    );
    assert!(out.status.success(), "the peer failed: {stderr}");
    serde_json::from_slice(&out.stdout).expect("the peer's JSON")
}

#[test]
fn lz4_and_aead_bodies_interoperate_with_the_reference_libraries() {
    let key = AeadKey::random();
    let text = b"walle interop: the quick brown fox jumps over the lazy dog. ".repeat(40);
    let lz4 = Lz4Encoder::new(Lz4Options::default());
    let (ours, theirs_receiver) = (AeadEncoder::new(key.clone()), AeadEncoder::new(key.clone()));
    let mut compressed = Vec::new();
    lz4.encode(&text, &mut compressed).expect("compresses");
    assert_eq!(
        compressed[0], 1,
        "the text is long and repetitive enough to compress"
    );
    let mut sealed = Vec::new();
    ours.encode(&text, &mut sealed).expect("seals");

    let answer = peer(&serde_json::json!({
        "key": key.to_hex(),
        "text": hex(&text),
        "sealed": hex(&sealed),
        "compressed": hex(&compressed),
    }));
    let field = |name: &str| answer[name].as_str().expect(name).to_owned();
    assert_eq!(
        unhex(&field("opened")),
        text,
        "libsodium opened our sealed body"
    );
    assert_eq!(
        unhex(&field("decompressed")),
        text,
        "liblz4 decompressed our block"
    );

    let back = lz4
        .decode(Bytes::from(unhex(&field("compressed"))))
        .expect("we decompress liblz4's block");
    assert_eq!(&back[..], &text[..]);

    let packets: Vec<Bytes> = answer["sealed"]
        .as_array()
        .expect("two sealed packets")
        .iter()
        .map(|p| Bytes::from(unhex(p.as_str().expect("hex"))))
        .collect();
    for packet in &packets {
        let opened = theirs_receiver
            .decode(packet.clone())
            .expect("we open libsodium's body");
        assert_eq!(&opened[..], &text[..]);
    }
    let replay = theirs_receiver.decode(packets[0].clone());
    assert!(
        replay.is_err(),
        "a replay of libsodium's first packet was accepted"
    );
}
