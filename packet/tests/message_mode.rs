//! Message mode: the frame body a message transport carries is the stream
//! frame without its length prefix, for every format, and the same size
//! bound applies.

use bytes::Bytes;
use walle_packet::{
    Code, DueFormat, FrameMode, Head, PacketError, ProtoFormat, Protocol, Route, WalleFormat,
};

fn protocols() -> Vec<(&'static str, Protocol)> {
    vec![
        ("walle", Protocol::new(WalleFormat::new())),
        ("walle-proto", Protocol::new(ProtoFormat::new())),
        ("due", Protocol::new(DueFormat::new())),
    ]
}

#[test]
fn a_message_is_the_stream_frame_without_its_prefix_in_every_format() {
    for (name, protocol) in protocols() {
        let width = protocol.framing().width();
        let route = match name {
            "due" => Route::Id(7),
            _ => Route::Uri("room.join"),
        };
        let head = Head::request(route, 9);
        let (mut stream, mut message) = (Vec::new(), Vec::new());
        protocol.encode(&head, b"payload", &mut stream).unwrap();
        protocol
            .encode_in(FrameMode::Message, &head, b"payload", &mut message)
            .unwrap();
        assert_eq!(&stream[width..], &message[..], "{name}");
        let packet = protocol.decode(Bytes::from(message)).unwrap();
        assert_eq!(
            (packet.seq(), packet.payload_ref()),
            (9, &b"payload"[..]),
            "{name}"
        );

        let (mut stream, mut message) = (Vec::new(), Vec::new());
        let error = head;
        protocol
            .encode_error(&error, Code::TIMEOUT, "late", &mut stream)
            .unwrap();
        protocol
            .encode_error_in(
                FrameMode::Message,
                &error,
                Code::TIMEOUT,
                "late",
                &mut message,
            )
            .unwrap();
        assert_eq!(&stream[width..], &message[..], "{name}: error response");
    }
}

#[test]
fn an_oversized_message_fails_and_leaves_the_buffer_as_it_was() {
    let protocol = Protocol::new(WalleFormat::new()).with_max_frame(64);
    let mut out = b"before".to_vec();
    let head = Head::notify(Route::Uri("big"));
    let result = protocol.encode_in(FrameMode::Message, &head, &[0; 100], &mut out);
    assert!(
        matches!(result, Err(PacketError::TooLarge { max: 64, .. })),
        "{result:?}"
    );
    assert_eq!(out, b"before");
}

#[test]
fn a_raised_maximum_lets_larger_frames_through_in_both_modes() {
    let payload = vec![7u8; 2 << 20]; // twice the default maximum
    let head = Head::notify(Route::Uri("big"));
    let default = Protocol::new(WalleFormat::new());
    let mut out = Vec::new();
    assert!(matches!(
        default.encode(&head, &payload, &mut out),
        Err(PacketError::TooLarge { .. })
    ));
    let raised = Protocol::new(WalleFormat::new()).with_max_frame(4 << 20);
    for mode in [FrameMode::Stream, FrameMode::Message] {
        let mut out = Vec::new();
        raised
            .encode_in(mode, &head, &payload, &mut out)
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert!(out.len() > payload.len(), "{mode:?}");
    }
}
