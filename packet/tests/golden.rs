//! Golden frames written out by hand from WIRE.md: each decodes to the
//! expected fields and encodes back to the same bytes.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use walle_packet::{
    ByteOrder, Cmd, Code, DueFormat, Framing, Head, Metadata, Packet, ProtoFormat, Protocol,
    ProtocolWrapper, Route, WalleFormat,
};

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// Cuts the one frame in `wire` and decodes it.
fn decode_one(protocol: &Protocol, wire: &[u8]) -> Packet {
    let mut stream = BytesMut::from(wire);
    let body = protocol
        .decoder()
        .decode(&mut stream)
        .unwrap()
        .expect("a whole frame");
    assert!(stream.is_empty(), "exactly one frame");
    protocol.decode(body).unwrap()
}

fn encode(protocol: &Protocol, head: &Head<'_>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    protocol.encode(head, payload, &mut out).unwrap();
    out
}

#[test]
fn walle_request_with_uri_and_metadata() {
    let wire = hex("00000023 \
         01 00 5a 04 0102030405060708 00000002 \
         6563686f 6869 \
         0001 0002 6b 0002 7631 0002 7632");
    let protocol = Protocol::new(WalleFormat::new());
    let p = decode_one(&protocol, &wire);
    assert_eq!(p.cmd(), Cmd::Request);
    assert_eq!(
        (p.flags(), p.reserved(), p.seq()),
        (0, 0x5a, 0x0102030405060708)
    );
    assert_eq!(
        (p.uri(), p.id(), p.route()),
        ("echo", 0, Route::Uri("echo"))
    );
    assert_eq!(&p.payload()[..], b"hi");
    assert_eq!(p.metadata().get_all("k").collect::<Vec<_>>(), ["v1", "v2"]);

    let md = p.metadata().to_metadata();
    let head = Head::request(Route::Uri("echo"), 0x0102030405060708)
        .with_reserved(0x5a)
        .with_metadata(&md);
    assert_eq!(encode(&protocol, &head, b"hi"), wire);
}

#[test]
fn walle_error_response() {
    let wire =
        hex("00000020 02 01 00 04 0000000000000009 0000000c 6563686f 00000004 6e6f20726f757465");
    let protocol = Protocol::new(WalleFormat::new());
    let p = decode_one(&protocol, &wire);
    assert_eq!((p.cmd(), p.is_error(), p.seq()), (Cmd::Response, true, 9));
    let (code, desc) = protocol.wrapper().decode_error(p.payload_ref()).unwrap();
    assert_eq!((code, desc), (Code::NOT_SUPPORTED, "no route"));

    let request = decode_one(
        &protocol,
        &encode(&protocol, &Head::request(Route::Uri("echo"), 9), b""),
    );
    let mut out = Vec::new();
    let head = Head::response_to(&request).unwrap();
    protocol
        .encode_error(&head, Code::NOT_SUPPORTED, "no route", &mut out)
        .unwrap();
    assert_eq!(out, wire);
}

#[test]
fn walle_id_notify() {
    let wire = hex("00000015 00 00 00 00 0000000000000000 00000001 00000102 78");
    let protocol = Protocol::new(WalleFormat::with_ids());
    let p = decode_one(&protocol, &wire);
    assert_eq!(
        (p.cmd(), p.id(), p.uri(), p.route()),
        (Cmd::Notify, 0x102, "", Route::Id(0x102))
    );
    assert_eq!(&p.payload()[..], b"x");
    assert_eq!(
        encode(&protocol, &Head::notify(Route::Id(0x102)), b"x"),
        wire
    );
}

#[test]
fn walle_and_walle_id_never_mix() {
    let ids = Protocol::new(WalleFormat::with_ids());
    let uris = Protocol::new(WalleFormat::new());
    let err = ids
        .encode(&Head::request(Route::Uri("a"), 1), b"", &mut Vec::new())
        .unwrap_err();
    assert_eq!(err.code(), Code::MARSHAL);
    let err = uris
        .encode(&Head::request(Route::Id(1), 1), b"", &mut Vec::new())
        .unwrap_err();
    assert_eq!(err.code(), Code::MARSHAL);
    // A walle frame with a uri is malformed as walle-id.
    let wire = encode(&uris, &Head::request(Route::Uri("abcd"), 1), b"");
    let body = Bytes::copy_from_slice(&wire[4..]);
    assert!(ids.decode(body).is_err());
}

/// The walle-proto schema as prost sees it: any protobuf implementation of
/// it must read our frames, and we must read theirs.
#[derive(Clone, PartialEq, prost::Message)]
struct PbPacket {
    #[prost(int32, tag = "1")]
    cmd: i32,
    #[prost(uint32, tag = "2")]
    flag: u32,
    #[prost(uint64, tag = "3")]
    sequence: u64,
    #[prost(btree_map = "string, string", tag = "4")]
    metadata: BTreeMap<String, String>,
    #[prost(string, tag = "5")]
    uri: String,
    #[prost(uint32, tag = "6")]
    reserved_rq: u32,
    #[prost(bytes = "vec", tag = "7")]
    body: Vec<u8>,
    #[prost(uint32, tag = "10")]
    reserved_uint32: u32,
    #[prost(uint64, tag = "11")]
    reserved_uint64: u64,
    #[prost(string, tag = "12")]
    reserved_string: String,
    #[prost(bytes = "vec", tag = "13")]
    reserved_bytes: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PbError {
    #[prost(int64, tag = "1")]
    code: i64,
    #[prost(bool, tag = "2")]
    logic_error: bool,
    #[prost(string, tag = "3")]
    desc: String,
}

#[test]
fn walle_proto_request_matches_prost_byte_for_byte() {
    let wire = hex("17000000 0801 18ac02 2206 0a016b 120176 2a04 6563686f 3a02 6869");
    let protocol = Protocol::new(ProtoFormat::new());
    let p = decode_one(&protocol, &wire);
    assert_eq!(
        (p.cmd(), p.seq(), p.uri(), p.id()),
        (Cmd::Request, 300, "echo", 0)
    );
    assert_eq!(p.metadata().get("k"), Some("v"));
    assert_eq!(&p.payload()[..], b"hi");

    let md: Metadata = [("k", "v")].into_iter().collect();
    let ours = encode(
        &protocol,
        &Head::request(Route::Uri("echo"), 300).with_metadata(&md),
        b"hi",
    );
    assert_eq!(ours, wire);

    let theirs = PbPacket {
        cmd: 1,
        sequence: 300,
        metadata: [("k".to_string(), "v".to_string())].into(),
        uri: "echo".into(),
        body: b"hi".to_vec(),
        ..PbPacket::default()
    };
    assert_eq!(prost::Message::encode_to_vec(&theirs), &wire[4..]);
}

#[test]
fn walle_proto_reads_every_field_prost_writes() {
    let theirs = PbPacket {
        cmd: 3,
        flag: 0x02,
        sequence: 0,
        metadata: [("a".to_string(), String::new()), ("b".into(), "2".into())].into(),
        uri: "game.Room/Join".into(),
        reserved_rq: 42,
        body: vec![1, 2, 3],
        reserved_uint32: 7,
        reserved_uint64: 8,
        reserved_string: "x".into(),
        reserved_bytes: vec![9],
    };
    let body = Bytes::from(prost::Message::encode_to_vec(&theirs));
    let p = ProtoFormat::new().decode(body).unwrap();
    assert_eq!(
        (p.cmd(), p.flags(), p.id(), p.uri()),
        (Cmd::Notify, 2, 42, "game.Room/Join")
    );
    assert_eq!(
        p.route(),
        Route::Id(42),
        "a non-zero numeric route wins (BEHAVIOURS 5)"
    );
    assert_eq!(
        p.metadata().to_metadata(),
        [("a", ""), ("b", "2")].into_iter().collect()
    );
    assert_eq!(&p.payload()[..], &[1, 2, 3]);

    // And prost reads what we write, reserved route and all.
    let md: Metadata = [("a", ""), ("b", "2")].into_iter().collect();
    let head = Head::notify(Route::Id(42)).with_metadata(&md);
    let mut ours = Vec::new();
    ProtoFormat::new()
        .encode(&head, &[1, 2, 3], &mut ours)
        .unwrap();
    let back: PbPacket = prost::Message::decode(&ours[..]).unwrap();
    assert_eq!(
        (back.cmd, back.reserved_rq, back.metadata),
        (3, 42, theirs.metadata)
    );
}

#[test]
fn walle_proto_error_body_is_an_error_response_message() {
    let format = ProtoFormat::new();
    let mut payload = Vec::new();
    format.encode_error(Code(1001), "full", &mut payload);
    assert_eq!(payload, hex("08e907 1001 1a0466756c6c"));
    let theirs: PbError = prost::Message::decode(&payload[..]).unwrap();
    assert_eq!(
        theirs,
        PbError {
            code: 1001,
            logic_error: true,
            desc: "full".into()
        }
    );
    assert_eq!(format.decode_error(&payload).unwrap(), (Code(1001), "full"));
}

#[test]
fn due_request_big_and_little_endian() {
    let wire = hex("00000007 00 0102 0003 6f6b");
    let protocol = Protocol::new(DueFormat::new());
    let p = decode_one(&protocol, &wire);
    assert_eq!(
        (p.cmd(), p.id(), p.seq(), p.is_heartbeat()),
        (Cmd::Request, 0x102, 3, false)
    );
    assert_eq!(&p.payload()[..], b"ok");
    assert_eq!(
        encode(&protocol, &Head::request(Route::Id(0x102), 3), b"ok"),
        wire
    );

    let little = DueFormat::new().framing(Framing::new(4, ByteOrder::Little));
    let protocol = Protocol::new(little);
    let wire = hex("07000000 00 0201 0300 6f6b");
    let p = decode_one(&protocol, &wire);
    assert_eq!((p.id(), p.seq()), (0x102, 3));
    assert_eq!(
        encode(&protocol, &Head::request(Route::Id(0x102), 3), b"ok"),
        wire
    );
}

#[test]
fn due_widths_signed_routes_and_range_checks() {
    let format = DueFormat::new().route_bytes(1).seq_bytes(4);
    let protocol = Protocol::new(format);
    let wire = hex("00000006 00 fe 00000001");
    let route = -2i32 as u32;
    let p = decode_one(&protocol, &wire);
    assert_eq!((p.id(), p.seq(), p.payload().len()), (route, 1, 0));
    assert_eq!(
        encode(&protocol, &Head::request(Route::Id(route), 1), b""),
        wire
    );

    let err = protocol
        .encode(&Head::request(Route::Id(128), 1), b"", &mut Vec::new())
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::MARSHAL,
        "route 128 does not fit one signed byte"
    );
    let two = Protocol::new(DueFormat::new());
    let err = two
        .encode(&Head::request(Route::Id(1), 40_000), b"", &mut Vec::new())
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::MARSHAL,
        "seq 40000 does not fit two signed bytes"
    );

    let no_seq = Protocol::new(DueFormat::new().seq_bytes(0));
    let wire = hex("00000004 00 0007 41");
    let p = decode_one(&no_seq, &wire);
    assert_eq!((p.cmd(), p.id(), p.seq()), (Cmd::Notify, 7, 0));
    assert_eq!(encode(&no_seq, &Head::notify(Route::Id(7)), b"A"), wire);
}

#[test]
fn due_heartbeats_with_and_without_server_time() {
    let protocol = Protocol::new(DueFormat::new());
    let beat = hex("00000001 80");
    let p = decode_one(&protocol, &beat);
    assert!(p.is_heartbeat());
    assert_eq!(p.heartbeat_time(), None);
    let mut out = Vec::new();
    protocol.encode_heartbeat(None, &mut out).unwrap();
    assert_eq!(out, beat);

    let nanos = 1_700_000_000_123_456_789i64;
    let timed = [hex("00000009 80"), nanos.to_be_bytes().to_vec()].concat();
    let p = decode_one(&protocol, &timed);
    assert_eq!(p.heartbeat_time(), Some(nanos));
    let mut out = Vec::new();
    protocol.encode_heartbeat(Some(nanos), &mut out).unwrap();
    assert_eq!(out, timed);

    assert!(
        Protocol::new(WalleFormat::new())
            .encode_heartbeat(None, &mut Vec::new())
            .is_err()
    );
    let bad = Bytes::from(hex("80 00"));
    assert!(
        DueFormat::new().decode(bad).is_err(),
        "a heartbeat is 1 or 9 bytes"
    );
}

#[test]
fn due_error_responses_use_the_error_extcode() {
    let protocol = Protocol::new(DueFormat::new());
    let request = decode_one(&protocol, &hex("00000005 00 0001 0005"));
    let mut out = Vec::new();
    protocol
        .encode_error(
            &Head::response_to(&request).unwrap(),
            Code::TIMEOUT,
            "late",
            &mut out,
        )
        .unwrap();
    assert_eq!(out, hex("0000000d 01 0001 0005 00000005 6c617465"));
    let p = decode_one(&protocol, &out);
    assert_eq!((p.cmd(), p.is_error(), p.seq()), (Cmd::Response, true, 5));
    assert_eq!(
        protocol.wrapper().decode_error(p.payload_ref()).unwrap(),
        (Code::TIMEOUT, "late")
    );
}

/// BEHAVIOURS 20: a response answers only a request.
#[test]
fn b20_response_to_a_non_request_is_code_7() {
    let protocol = Protocol::new(WalleFormat::new());
    let notify = decode_one(
        &protocol,
        &encode(&protocol, &Head::notify(Route::Uri("a")), b""),
    );
    assert_eq!(
        Head::response_to(&notify).unwrap_err().code(),
        Code::UNEXPECTED
    );
}

/// BEHAVIOURS 11: a response echoes seq, route and reserved bits, not metadata.
#[test]
fn b11_response_echoes_seq_route_reserved_not_metadata() {
    let protocol = Protocol::new(WalleFormat::new());
    let md: Metadata = [("trace", "1")].into_iter().collect();
    let head = Head::request(Route::Uri("room"), 44)
        .with_reserved(0x81)
        .with_metadata(&md);
    let request = decode_one(&protocol, &encode(&protocol, &head, b"q"));
    let response = Head::response_to(&request).unwrap();
    let p = decode_one(&protocol, &encode(&protocol, &response, b"a"));
    assert_eq!(
        (p.cmd(), p.seq(), p.uri(), p.reserved()),
        (Cmd::Response, 44, "room", 0x81)
    );
    assert!(p.metadata().is_empty());
}
