//! Property tests: random packets round-trip through every format; frames
//! split or coalesced arbitrarily come out whole and in order; truncated,
//! inconsistent or random input gives errors, never panics.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use walle_packet::{
    Cmd, DueFormat, Head, Metadata, PacketEncoder, ProtoFormat, Protocol, ProtocolWrapper, Route,
    WalleFormat,
};

#[derive(Debug, Clone)]
struct Sample {
    cmd: Cmd,
    seq: u64,
    uri: String,
    id: u32,
    reserved: u8,
    error: bool,
    payload: Vec<u8>,
    metadata: Vec<(String, String)>,
}

fn any_cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![Just(Cmd::Notify), Just(Cmd::Request), Just(Cmd::Response)]
}

fn any_sample() -> impl Strategy<Value = Sample> {
    (
        any_cmd(),
        any::<u64>(),
        "[a-zA-Z./]{0,40}",
        any::<u32>(),
        any::<u8>(),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..600),
        prop::collection::vec(("[a-z]{1,8}", ".{0,12}"), 0..4),
    )
        .prop_map(
            |(cmd, seq, uri, id, reserved, error, payload, metadata)| Sample {
                cmd,
                seq,
                uri,
                id,
                reserved,
                error,
                payload,
                metadata,
            },
        )
}

/// Adapts a sample to what `format` can carry.
fn fit(format: &str, mut s: Sample) -> Sample {
    match format {
        "walle" => s.id = 0,
        "walle-id" => s.uri.clear(),
        "walle-proto" => {
            s.reserved = 0;
            s.metadata.sort();
            s.metadata.dedup_by(|a, b| a.0 == b.0);
        }
        "due" => {
            s.uri.clear();
            s.metadata.clear();
            s.id = (s.id as i16) as i32 as u32;
            s.seq = u64::from(s.seq as u16 & 0x7fff);
            s.reserved &= 0x7f;
            // due knows requests (seq) from notifies (no seq) only; errors
            // are responses; user bits 1 would read as the error mark.
            s.cmd = match (s.error, s.seq) {
                (true, _) => Cmd::Response,
                (false, 0) => Cmd::Notify,
                (false, _) => Cmd::Request,
            };
            if s.error || s.reserved == 1 {
                s.reserved = 0;
            }
        }
        _ => unreachable!(),
    }
    s
}

fn protocols() -> Vec<(&'static str, Protocol)> {
    vec![
        ("walle", Protocol::new(WalleFormat::new())),
        ("walle-id", Protocol::new(WalleFormat::with_ids())),
        ("walle-proto", Protocol::new(ProtoFormat::new())),
        ("due", Protocol::new(DueFormat::new())),
    ]
}

fn encode(protocol: &Protocol, s: &Sample, metadata: &Metadata, out: &mut Vec<u8>) {
    let mut head = match s.cmd {
        Cmd::Request => Head::request(Route::None, s.seq),
        Cmd::Notify => Head::notify(Route::None),
        Cmd::Response => Head::request(Route::None, s.seq),
    };
    head.cmd = s.cmd;
    head.seq = s.seq;
    head.uri = &s.uri;
    head.id = s.id;
    head.reserved = s.reserved;
    if s.error {
        head = head.with_error();
    }
    if !metadata.is_empty() {
        head = head.with_metadata(metadata);
    }
    protocol
        .encode(&head, &s.payload, out)
        .expect("encodable sample");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_format_round_trips(sample in any_sample()) {
        for (name, protocol) in protocols() {
            let s = fit(name, sample.clone());
            let metadata: Metadata = s.metadata.iter().cloned().collect();
            let mut wire = Vec::new();
            encode(&protocol, &s, &metadata, &mut wire);
            let mut stream = BytesMut::from(&wire[..]);
            let body = protocol.decoder().decode(&mut stream).unwrap().expect("whole frame");
            prop_assert!(stream.is_empty());
            let p = protocol.decode(body).unwrap();
            prop_assert_eq!(p.cmd(), s.cmd, "{}", name);
            prop_assert_eq!(p.seq(), s.seq, "{}", name);
            prop_assert_eq!(p.uri(), s.uri.as_str(), "{}", name);
            prop_assert_eq!(p.id(), s.id, "{}", name);
            prop_assert_eq!(p.reserved(), s.reserved, "{}", name);
            prop_assert_eq!(p.is_error(), s.error, "{}", name);
            prop_assert_eq!(&p.payload()[..], &s.payload[..], "{}", name);
            prop_assert_eq!(p.metadata().to_metadata(), metadata, "{}", name);
        }
    }

    /// BEHAVIOURS 24: frames split across reads or coalesced in one read
    /// are each delivered exactly once, in order.
    #[test]
    fn b24_frames_survive_any_split(
        samples in prop::collection::vec(any_sample(), 1..8),
        cuts in prop::collection::vec(1usize..200, 1..40),
    ) {
        for (name, protocol) in protocols() {
            let samples: Vec<Sample> = samples.iter().cloned().map(|s| fit(name, s)).collect();
            let mut wire = Vec::new();
            for s in &samples {
                encode(&protocol, s, &s.metadata.iter().cloned().collect(), &mut wire);
            }
            let mut decoder = protocol.decoder();
            let mut stream = BytesMut::new();
            let mut got = Vec::new();
            let mut rest = &wire[..];
            let mut cut = cuts.iter().cycle();
            while !rest.is_empty() {
                let n = (*cut.next().unwrap()).min(rest.len());
                stream.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                while let Some(body) = decoder.decode(&mut stream).unwrap() {
                    got.push(protocol.decode(body).unwrap());
                }
            }
            prop_assert!(decoder.is_idle() && stream.is_empty());
            prop_assert_eq!(got.len(), samples.len());
            for (p, s) in got.iter().zip(&samples) {
                prop_assert_eq!(p.seq(), s.seq);
                prop_assert_eq!(&p.payload()[..], &s.payload[..]);
            }
        }
    }

    /// Every strict prefix of a frame body is an error for the formats
    /// whose header fixes the lengths, and never a panic for any format.
    #[test]
    fn truncated_bodies_are_errors(sample in any_sample()) {
        for (name, protocol) in protocols() {
            let s = fit(name, sample.clone());
            let mut wire = Vec::new();
            encode(&protocol, &s, &s.metadata.iter().cloned().collect(), &mut wire);
            let body = &wire[4..];
            let metadata: Metadata = s.metadata.iter().cloned().collect();
            // Cuts between metadata entries leave a valid, shorter packet.
            let fixed = body.len() - metadata.walle_len();
            for end in 0..body.len() {
                let result = protocol.decode(Bytes::copy_from_slice(&body[..end]));
                if name.starts_with("walle") && name != "walle-proto" && end < fixed {
                    prop_assert!(result.is_err(), "{} accepted a {}-byte prefix", name, end);
                }
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
        for (_, protocol) in protocols() {
            let _ = protocol.decode(Bytes::from(data.clone()));
            let mut stream = BytesMut::from(&data[..]);
            let mut decoder = protocol.decoder();
            while let Ok(Some(body)) = decoder.decode(&mut stream) {
                let _ = protocol.decode(body);
            }
        }
    }

    /// Inconsistent walle lengths: payload_len past the end is an error.
    #[test]
    fn walle_inconsistent_lengths_are_errors(extra in 1u32..1000, payload in prop::collection::vec(any::<u8>(), 0..50)) {
        let format = WalleFormat::new();
        let mut body = Vec::new();
        format.encode(&Head::request(Route::Uri("r"), 1), &payload, &mut body).unwrap();
        let len = u32::from_be_bytes(body[12..16].try_into().unwrap()) + extra;
        body[12..16].copy_from_slice(&len.to_be_bytes());
        prop_assert!(format.decode(Bytes::from(body)).is_err());
    }
}

/// Adds one to every byte.
#[derive(Debug)]
struct AddOne;
impl PacketEncoder for AddOne {
    fn name(&self) -> &'static str {
        "add-one"
    }
    fn encode(&self, body: &[u8], dst: &mut Vec<u8>) -> Result<(), walle_codec::BoxError> {
        dst.extend(body.iter().map(|b| b.wrapping_add(1)));
        Ok(())
    }
    fn decode(&self, body: Bytes) -> Result<Bytes, walle_codec::BoxError> {
        Ok(body
            .iter()
            .map(|b| b.wrapping_sub(1))
            .collect::<Vec<_>>()
            .into())
    }
}

/// Prefixes a marker byte; refuses bodies without it.
#[derive(Debug)]
struct Marker;
impl PacketEncoder for Marker {
    fn name(&self) -> &'static str {
        "marker"
    }
    fn encode(&self, body: &[u8], dst: &mut Vec<u8>) -> Result<(), walle_codec::BoxError> {
        dst.push(0xee);
        dst.extend_from_slice(body);
        Ok(())
    }
    fn decode(&self, body: Bytes) -> Result<Bytes, walle_codec::BoxError> {
        match body.first() {
            Some(0xee) => Ok(body.slice(1..)),
            _ => Err("missing marker".into()),
        }
    }
}

/// BEHAVIOURS 3: encoders decode in the reverse order of encoding.
#[test]
fn b3_packet_encoders_decode_in_reverse_order() {
    let protocol = Protocol::new(WalleFormat::new())
        .with_encoder(AddOne)
        .with_encoder(Marker);
    let mut wire = Vec::new();
    protocol
        .encode(&Head::request(Route::Uri("x"), 5), b"abc", &mut wire)
        .unwrap();
    // Marker was applied last, so it is outermost on the wire.
    assert_eq!(wire[4], 0xee);
    let mut stream = BytesMut::from(&wire[..]);
    let body = protocol.decoder().decode(&mut stream).unwrap().unwrap();
    let p = protocol.decode(body).unwrap();
    assert_eq!((p.uri(), p.seq(), &p.payload()[..]), ("x", 5, &b"abc"[..]));

    // The same encoders stacked the other way cannot read it.
    let swapped = Protocol::new(WalleFormat::new())
        .with_encoder(Marker)
        .with_encoder(AddOne);
    let mut stream = BytesMut::from(&wire[..]);
    let body = swapped.decoder().decode(&mut stream).unwrap().unwrap();
    let err = swapped.decode(body).unwrap_err();
    assert_eq!(err.code(), walle_codec::Code::UNMARSHAL);
}
