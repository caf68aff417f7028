//! Shared by the format targets: decode arbitrary bytes; whatever decodes
//! must re-encode and decode to the same fields.

use bytes::Bytes;
use walle_packet::{Head, Packet, ProtocolWrapper};

pub fn check(format: &dyn ProtocolWrapper, data: &[u8]) {
    let Ok(packet) = format.decode(Bytes::copy_from_slice(data)) else { return };
    if packet.is_heartbeat() {
        let mut body = Vec::new();
        format.encode_heartbeat(packet.heartbeat_time(), &mut body).expect("heartbeat re-encodes");
        let again = format.decode(Bytes::from(body)).expect("heartbeat decodes");
        assert_eq!(again.heartbeat_time(), packet.heartbeat_time());
        return;
    }
    let metadata = packet.metadata().to_metadata();
    let head = head_of(&packet, &metadata);
    let mut body = Vec::new();
    if format.encode(&head, packet.payload_ref(), &mut body).is_err() {
        return; // e.g. walle-proto metadata with repeated keys
    }
    let again = format.decode(Bytes::from(body)).expect("our own encoding decodes");
    assert_eq!(again.cmd(), packet.cmd());
    assert_eq!(again.seq(), packet.seq());
    assert_eq!(again.uri(), packet.uri());
    assert_eq!(again.id(), packet.id());
    assert_eq!(again.is_error(), packet.is_error());
    assert_eq!(again.payload_ref(), packet.payload_ref());
    assert_eq!(again.metadata().to_metadata(), metadata);
}

fn head_of<'a>(p: &'a Packet, metadata: &'a walle_packet::Metadata) -> Head<'a> {
    let mut head = Head::request(walle_packet::Route::None, p.seq());
    head.cmd = p.cmd();
    head.flags = p.flags();
    head.reserved = p.reserved();
    head.uri = p.uri();
    head.id = p.id();
    if !metadata.is_empty() {
        head.metadata = Some(metadata);
    }
    head
}
