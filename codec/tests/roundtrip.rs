//! Every codec round-trips random messages and reports typed errors.

use bytes::Bytes;
use proptest::prelude::*;
use walle_codec::{Code, Codec, CodecError, JsonCodec, MsgPackCodec, ProstCodec, RawCodec};

#[derive(Clone, PartialEq, prost::Message)]
struct Chat {
    #[prost(uint64, tag = "1")]
    room: u64,
    #[prost(string, tag = "2")]
    text: String,
    #[prost(bytes = "bytes", tag = "3")]
    blob: Bytes,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Move {
    player: u32,
    name: String,
    path: Vec<(i16, i16)>,
    note: Option<String>,
}

fn round_trip<C: Codec<M>, M>(codec: &C, msg: &M) -> M {
    let mut buf = Vec::new();
    codec.encode(msg, &mut buf).expect("encode");
    codec.decode(Bytes::from(buf)).expect("decode")
}

fn any_move() -> impl Strategy<Value = Move> {
    (
        any::<u32>(),
        ".{0,40}",
        prop::collection::vec(any::<(i16, i16)>(), 0..20),
        any::<Option<String>>(),
    )
        .prop_map(|(player, name, path, note)| Move {
            player,
            name,
            path,
            note,
        })
}

proptest! {
    #[test]
    fn prost_round_trips(room: u64, text in ".{0,64}", blob in prop::collection::vec(any::<u8>(), 0..256)) {
        let msg = Chat { room, text, blob: Bytes::from(blob) };
        prop_assert_eq!(round_trip(&ProstCodec, &msg), msg);
    }

    #[test]
    fn json_round_trips(msg in any_move()) {
        prop_assert_eq!(round_trip(&JsonCodec, &msg), msg);
    }

    #[test]
    fn msgpack_round_trips(msg in any_move()) {
        prop_assert_eq!(round_trip(&MsgPackCodec, &msg), msg);
    }

    #[test]
    fn raw_round_trips(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let bytes = Bytes::from(data.clone());
        prop_assert_eq!(round_trip(&RawCodec, &bytes), bytes);
        prop_assert_eq!(round_trip(&RawCodec, &data), data);
    }

    /// Garbage never panics a decoder; it is an unmarshal error or a value.
    #[test]
    fn garbage_decodes_to_errors_not_panics(data in prop::collection::vec(any::<u8>(), 0..128)) {
        let src = Bytes::from(data);
        if let Err(e) = Codec::<Chat>::decode(&ProstCodec, src.clone()) {
            prop_assert_eq!(e.code(), Code::UNMARSHAL);
        }
        if let Err(e) = Codec::<Move>::decode(&JsonCodec, src.clone()) {
            prop_assert_eq!(e.code(), Code::UNMARSHAL);
        }
        if let Err(e) = Codec::<Move>::decode(&MsgPackCodec, src) {
            prop_assert_eq!(e.code(), Code::UNMARSHAL);
        }
    }
}

#[test]
fn prost_bytes_fields_are_slices_of_the_frame() {
    let msg = Chat {
        room: 1,
        text: "hi".into(),
        blob: Bytes::from_static(&[9; 100]),
    };
    let mut buf = Vec::new();
    ProstCodec.encode(&msg, &mut buf).expect("encode");
    let frame = Bytes::from(buf);
    let back: Chat = ProstCodec.decode(frame.clone()).expect("decode");
    let range = frame.as_ptr_range();
    assert!(
        range.contains(&back.blob.as_ptr()),
        "blob was copied out of the frame"
    );
}

#[test]
fn raw_codec_offers_its_bytes_for_zero_copy_encoding() {
    let payload = Bytes::from_static(b"abc");
    assert_eq!(RawCodec.as_encoded(&payload), Some(&b"abc"[..]));
    assert_eq!(
        Codec::<Chat>::as_encoded(&ProstCodec, &Chat::default()),
        None
    );
}

#[test]
fn errors_carry_codes_2_and_3() {
    struct Unserializable;
    impl serde::Serialize for Unserializable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("refused"))
        }
    }
    let err = serde_json::to_vec(&Unserializable)
        .map_err(CodecError::encode)
        .unwrap_err();
    assert_eq!(err.code(), Code::MARSHAL);
    assert!(err.to_string().contains("refused"));

    let err = Codec::<Move>::decode(&JsonCodec, Bytes::from_static(b"{")).unwrap_err();
    assert_eq!(err.code(), Code::UNMARSHAL);
    assert!(std::error::Error::source(&err).is_some(), "cause kept");
}
