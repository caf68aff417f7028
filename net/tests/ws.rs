//! The ws backend's own behaviours (BEHAVIOURS 42) over loopback sockets:
//! one binary message per frame in every format, a text message and an
//! oversized message closing only their own connection (1003, 1009),
//! ping/pong heartbeats, the close handshake of a stop and a close,
//! refusals (the upgrade's checks are in `ws_upgrade.rs`), what RFC 6455
//! forbids (1002), fragments with a ping between them, the echo of a
//! peer's close code, and a message right behind the upgrade's answer.
//! The raw peers speak WebSocket by hand (`util::ws_raw`).

mod util;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use util::*;
use walle_codec::RawCodec;
use walle_net::{
    Backend, Client, ClientOptions, ConnOptions, HeartbeatMode, Server, ServerOptions, WsOptions,
};
use walle_packet::{DueFormat, Framing, PacketError, ProtoFormat, Protocol, Route, WalleFormat};
use walle_process::{CloseReason, Context, Error, Router};

fn reason(reasons: &Reasons, raw: &Raw) -> CloseReason {
    let peer = raw.local_addr().unwrap();
    let mut found = None;
    eventually("the close reason", || {
        found = reasons.lock().unwrap().get(&peer).cloned();
        found.is_some()
    });
    found.unwrap()
}

fn echo(client: &Client<RawCodec>, what: &'static [u8]) -> Bytes {
    runtime()
        .block_on(client.call("echo", &Bytes::from_static(what)))
        .expect("echo")
}

/// Every format travels over ws, a frame body per binary message with no
/// length prefix: a raw peer's message is the body the format encodes.
#[test]
fn every_format_travels_one_frame_body_per_message() {
    let formats: [(&str, Protocol, Route<'static>); 4] = [
        (
            "walle",
            Protocol::new(WalleFormat::new()),
            Route::Uri("echo"),
        ),
        (
            "walle-id",
            Protocol::new(WalleFormat::with_ids()),
            Route::Id(1),
        ),
        (
            "walle-proto",
            Protocol::new(ProtoFormat::new()),
            Route::Uri("echo"),
        ),
        ("due", Protocol::new(DueFormat::new()), Route::Id(1)),
    ];
    for (name, protocol, route) in formats {
        let mut router = echo_router();
        router
            .route_id(1, |_: &mut Context, req: Bytes| Ok(req))
            .unwrap();
        let server = Server::builder(router)
            .backend(Backend::ws())
            .protocol(protocol.clone())
            .bind("127.0.0.1:0")
            .unwrap();
        let client = Client::builder(
            format!("ws://{}/", server.local_addr()),
            Router::new(RawCodec),
        )
        .backend(Backend::ws())
        .protocol(protocol.clone())
        .build()
        .unwrap();
        let payload = Bytes::from(vec![7u8; 3000]);
        let answer: Bytes = runtime()
            .block_on(client.call(route, &payload))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(answer, payload, "{name}");

        // A pushed frame, read raw: the message is the body alone.
        let mut raw = connect(&Backend::ws(), server.local_addr());
        eventually("two sessions", || server.session_count() == 2);
        let newest = server
            .sessions()
            .into_iter()
            .max_by_key(|s| s.id())
            .unwrap();
        newest
            .notify(route, &Bytes::from_static(b"pushed"))
            .unwrap();
        let mut len = [0u8; 4];
        raw.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        raw.read_exact(&mut body).unwrap();
        let packet = protocol
            .decode(Bytes::from(body))
            .unwrap_or_else(|e| panic!("{name}: the message is not a bare body: {e}"));
        assert_eq!(&packet.payload()[..], b"pushed", "{name}");
    }
}

/// A text message is a protocol error: its connection closes with 1003
/// and a `Malformed` reason; the others go on.
#[test]
fn a_text_message_closes_only_its_connection_with_1003() {
    let (server, reasons) =
        recording_server(&Backend::Ws(WsOptions::default()), ServerOptions::default());
    let ws = Backend::ws();
    let mut good = connect(&ws, server.local_addr());
    let mut bad = connect(&ws, server.local_addr());
    assert_eq!(
        raw_round_trip(&mut bad, 1, b"binary first").len(),
        16 + 4 + 12
    );
    bad.ws().send(1, b"{\"text\": true}").unwrap();
    assert!(closed_by_server(&mut bad));
    assert_eq!(bad.ws().close_code, Some(1003));
    match reason(&reasons, &bad) {
        CloseReason::Malformed(e) => assert!(
            matches!(*e, Error::Packet(PacketError::Malformed(_))),
            "{e:?}"
        ),
        other => panic!("closed as {other:?}"),
    }
    assert_eq!(
        raw_round_trip(&mut good, 2, b"still here").len(),
        16 + 4 + 10
    );
    assert_eq!(server.session_count(), 1);
}

/// An 8 MiB message closes only its connection, with 1009, as soon as its
/// header (or, fragmented, the fragment past the limit) says how long it
/// is: before it is buffered, and before the peer sent all of it.
#[test]
fn an_8_mib_message_closes_only_its_connection_with_1009() {
    let (server, reasons) =
        recording_server(&Backend::Ws(WsOptions::default()), ServerOptions::default());
    let ws = Backend::ws();
    let mut good = connect(&ws, server.local_addr());
    const BIG: usize = 8 << 20;
    let chunk = vec![5u8; 64 * 1024];

    // One frame announcing 8 MiB; 64 KiB of it sent, then the peer waits.
    let mut whole = connect(&ws, server.local_addr());
    let header = ws_frame(true, 2, &[], BIG as u64, true);
    whole.ws().stream.write_all(&header).unwrap();
    whole.ws().stream.write_all(&chunk).unwrap();
    assert!(closed_by_server(&mut whole), "closed before the rest came");
    assert_eq!(whole.ws().close_code, Some(1009));

    // Fragments of 256 KiB: closed once they pass the limit (1 MiB).
    let mut pieces = connect(&ws, server.local_addr());
    let fragment = vec![6u8; 256 * 1024];
    let mut sent = 0;
    for i in 0..BIG / fragment.len() {
        let frame = ws_frame(
            false,
            if i == 0 { 2 } else { 0 },
            &fragment,
            fragment.len() as u64,
            true,
        );
        if pieces.ws().stream.write_all(&frame).is_err() {
            break; // the server closed already
        }
        sent += fragment.len();
        if sent > (1 << 20) + fragment.len() {
            break; // past the limit: the close is on its way
        }
    }
    assert!(closed_by_server(&mut pieces));
    assert_eq!(pieces.ws().close_code, Some(1009));

    for raw in [&whole, &pieces] {
        match reason(&reasons, raw) {
            CloseReason::Malformed(e) => assert!(
                matches!(*e, Error::Packet(PacketError::TooLarge { max, .. }) if max == 1 << 20),
                "{e:?}"
            ),
            other => panic!("closed as {other:?}"),
        }
    }
    assert_eq!(
        raw_round_trip(&mut good, 1, b"still here").len(),
        16 + 4 + 10
    );

    // A real client sending 8 MiB (its own limit is higher) loses its
    // connection; another client goes on.
    let big_limit =
        Protocol::new(WalleFormat::new().framing(Framing::default().max_frame(16 << 20)));
    let sender = Client::builder(server.local_addr(), Router::new(RawCodec))
        .backend(ws.clone())
        .protocol(big_limit)
        .build()
        .unwrap();
    let other = client(&ws, server.local_addr(), ClientOptions::default());
    let call =
        runtime().block_on(sender.call::<Bytes, Bytes>("echo", &Bytes::from(vec![1u8; BIG])));
    assert!(matches!(call, Err(Error::SessionClosed)), "{call:?}");
    eventually("the sender's disconnect", || !sender.is_connected());
    assert_eq!(echo(&other, b"fine"), Bytes::from_static(b"fine"));
}

/// Heartbeats on ws are pings (the `walle` format has no heartbeat packet
/// of its own): a peer answering them stays past the silence limit, a
/// client does so by itself, and a peer that does not is dropped with
/// 1001 and `Silent`.
#[test]
fn pings_keep_an_idle_connection_and_a_silent_peer_is_dropped() {
    let every = Duration::from_millis(100);
    let conn = ConnOptions::default().heartbeat(every, HeartbeatMode::ServerTick);
    let (server, reasons) = recording_server(
        &Backend::Ws(WsOptions::default()),
        ServerOptions::default().conn(conn),
    );
    let ws = Backend::ws();
    let addr = server.local_addr();
    let mut answering = connect(&ws, addr);
    answering.ws().answer_pings = true;
    let mut silent = connect(&ws, addr);
    let idle_client = client(&ws, addr, ClientOptions::default());
    eventually("three sessions", || server.session_count() == 3);

    // Over twice the silence limit (3 intervals), reading only pings.
    answering.set_read_timeout(Some(every / 2)).unwrap();
    let until = Instant::now() + every * 7;
    let mut buf = [0u8; 64];
    while Instant::now() < until {
        match answering.read(&mut buf) {
            Ok(0) => panic!("the answering peer was dropped"),
            Ok(n) => panic!("{n} bytes of frames nobody asked for"),
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "{e}"
            ),
        }
    }
    assert!(answering.ws().pings >= 4, "{} pings", answering.ws().pings);
    assert!(
        idle_client.is_connected(),
        "a client answers pings by itself"
    );

    assert!(closed_by_server(&mut silent), "the silent peer is dropped");
    assert_eq!(silent.ws().close_code, Some(1001));
    let why = reason(&reasons, &silent);
    assert!(
        matches!(why, CloseReason::Silent(d) if d == every * 3),
        "{why:?}"
    );
    answering.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(
        raw_round_trip(&mut answering, 1, b"alive").len(),
        16 + 4 + 5
    );
}

/// A graceful stop sends each peer a close frame (1001) after what was
/// queued, and waits for its answer; a peer that never answers holds the
/// stop no longer than the close timeout. A client's close sends 1000.
#[test]
fn a_stop_and_a_close_send_close_frames() {
    let opts = WsOptions::default().close_timeout(Duration::from_millis(300));
    let (server, reasons) = recording_server(&Backend::Ws(opts.clone()), ServerOptions::default());
    let ws = Backend::Ws(opts);
    let mut polite = connect(&ws, server.local_addr());
    let deaf = connect(&ws, server.local_addr());
    eventually("two sessions", || server.session_count() == 2);
    server.sessions()[0]
        .notify("bye", &Bytes::from_static(b"queued"))
        .unwrap();
    server.sessions()[1]
        .notify("bye", &Bytes::from_static(b"queued"))
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = polite.read_to_end(&mut all);
        (all.len(), polite)
    });
    server.stop();
    let (read, mut polite) = reader.join().unwrap();
    assert_eq!(read, 4 + 16 + 3 + 6, "the push, then the close");
    assert_eq!(polite.ws().close_code, Some(1001));
    assert!(matches!(reason(&reasons, &polite), CloseReason::Stopped));
    assert!(matches!(reason(&reasons, &deaf), CloseReason::Stopped));
    drop(deaf);

    // A client's close: 1000 to its server.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepting = std::thread::spawn(move || accept(&Backend::ws(), &listener));
    let client = client(&Backend::ws(), addr, ClientOptions::default());
    let mut peer = accepting.join().unwrap();
    client.close();
    assert!(closed_by_server(&mut peer));
    assert_eq!(peer.ws().close_code, Some(1000));
}

/// A connection over the accept limit is upgraded, then told why it is
/// closed: 1008.
#[test]
fn a_refused_connection_hears_1008() {
    let server = server(
        &Backend::ws(),
        echo_router(),
        ServerOptions::default().max_sessions(1),
    );
    let ws = Backend::ws();
    let _kept = connect(&ws, server.local_addr());
    eventually("the session", || server.session_count() == 1);
    let mut refused = connect(&ws, server.local_addr());
    assert!(closed_by_server(&mut refused));
    assert_eq!(refused.ws().close_code, Some(1008));
}

/// What RFC 6455 forbids of a client closes only its own connection,
/// with 1002: an unmasked frame, reserved bits, a continuation of no
/// message, a new message inside a fragmented one, a fragmented ping, a
/// ping longer than a control frame may be, unknown opcodes (data and
/// control), a length not in its shortest form.
#[test]
fn protocol_violations_close_only_their_connection_with_1002() {
    let (server, reasons) =
        recording_server(&Backend::Ws(WsOptions::default()), ServerOptions::default());
    let ws = Backend::ws();
    let mut good = connect(&ws, server.local_addr());
    let reserved = {
        let mut frame = ws_frame(true, 2, b"x", 1, true);
        frame[0] |= 0x40;
        frame
    };
    let cases = [
        ("an unmasked frame", ws_frame(true, 2, b"x", 1, false)),
        ("reserved bits", reserved),
        (
            "a continuation of nothing",
            ws_frame(true, 0, b"x", 1, true),
        ),
        (
            "a message inside a message",
            [
                ws_frame(false, 2, b"a", 1, true),
                ws_frame(true, 2, b"b", 1, true),
            ]
            .concat(),
        ),
        ("a fragmented ping", ws_frame(false, 9, b"", 0, true)),
        ("a long ping", ws_frame(true, 9, &[0; 126], 126, true)),
        ("an unknown opcode", ws_frame(true, 3, b"x", 1, true)),
        (
            "an unknown control opcode",
            ws_frame(true, 0xb, b"", 0, true),
        ),
        (
            "a length in a longer form than needed",
            [&[0x82, 0xfe, 0, 1][..], &[1, 2, 3, 4], &[0x55]].concat(),
        ),
    ];
    for (seq, (name, bytes)) in (1..).zip(cases) {
        let mut bad = connect(&ws, server.local_addr());
        bad.ws().stream.write_all(&bytes).unwrap();
        assert!(closed_by_server(&mut bad), "{name}: not closed");
        assert_eq!(bad.ws().close_code, Some(1002), "{name}");
        assert!(
            matches!(reason(&reasons, &bad), CloseReason::Malformed(_)),
            "{name}"
        );
        let body = raw_round_trip(&mut good, seq, b"still here");
        assert!(body.ends_with(b"still here"), "{name}: the good peer");
    }
    assert_eq!(server.session_count(), 1);
}

/// A message in three fragments with a ping between two of them: the
/// ping is answered (before the answer, which waits for the last
/// fragment) and the message is handed on whole.
#[test]
fn a_ping_between_fragments_is_answered_and_the_message_comes_whole() {
    let (server, _) =
        recording_server(&Backend::Ws(WsOptions::default()), ServerOptions::default());
    let mut raw = connect(&Backend::ws(), server.local_addr());
    let frame = request_frame("echo", 7, b"in three pieces");
    let body = &frame[4..];
    let (a, rest) = body.split_at(5);
    let (b, c) = rest.split_at(5);
    let wire = [
        ws_frame(false, 2, a, a.len() as u64, true),
        ws_frame(false, 0, b, b.len() as u64, true),
        ws_frame(true, 9, b"hi", 2, true),
        ws_frame(true, 0, c, c.len() as u64, true),
    ]
    .concat();
    raw.ws().stream.write_all(&wire).unwrap();
    let mut len = [0u8; 4];
    raw.read_exact(&mut len).unwrap();
    let mut answer = vec![0u8; u32::from_be_bytes(len) as usize];
    raw.read_exact(&mut answer).unwrap();
    assert!(answer.ends_with(b"in three pieces"), "{answer:?}");
    assert_eq!(raw.ws().pongs, 1, "the ping answered before the answer");
}

/// A peer's close is answered with the peer's own code.
#[test]
fn a_peer_close_code_is_echoed() {
    let (server, reasons) =
        recording_server(&Backend::Ws(WsOptions::default()), ServerOptions::default());
    let mut raw = connect(&Backend::ws(), server.local_addr());
    assert!(raw_round_trip(&mut raw, 1, b"first").ends_with(b"first"));
    raw.ws().send(8, &[0x0f, 0xa0, b'b', b'y', b'e']).unwrap(); // 4000
    assert!(closed_by_server(&mut raw));
    assert_eq!(raw.ws().close_code, Some(4000));
    assert!(matches!(reason(&reasons, &raw), CloseReason::PeerClosed));
}

/// A server that sends a message in the same write as its upgrade answer
/// (a push on a new session can arrive so): the client reads it as the
/// first message, not as part of the answer.
#[test]
fn a_message_right_behind_the_upgrade_answer_reaches_the_client() {
    use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let head = read_head(&mut stream).unwrap();
        let key = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| value.trim().to_owned())
            })
            .expect("a key");
        let mut push = Vec::new();
        Protocol::new(WalleFormat::new())
            .encode(
                &walle_packet::Head::notify(Route::Uri("news")),
                b"pushed",
                &mut push,
            )
            .unwrap();
        let mut wire = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        )
        .into_bytes();
        wire.extend(ws_frame(true, 2, &push[4..], push.len() as u64 - 4, false));
        stream.write_all(&wire).unwrap(); // one write: one segment
        stream
    });
    let got = Arc::new(Mutex::new(Vec::new()));
    let router = news_router(got.clone());
    let client = client_with(&Backend::ws(), addr, router, ClientOptions::default());
    let _stream = server.join().unwrap();
    eventually("the push handled", || got.lock().unwrap().len() == 1);
    assert_eq!(&got.lock().unwrap()[0][..], b"pushed");
    drop(client);
}
