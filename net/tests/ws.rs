//! The ws backend's own behaviours (BEHAVIOURS 42) over loopback sockets:
//! one binary message per frame in every format, a text message and an
//! oversized message closing only their own connection (1003, 1009),
//! ping/pong heartbeats, the close handshake of a stop and a close, and
//! refusals (the upgrade's checks are in `ws_upgrade.rs`). The raw peers
//! speak WebSocket by hand (`util::ws_raw`).

mod util;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
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

/// The reason each session closed with, by the peer's address.
type Reasons = Arc<Mutex<HashMap<SocketAddr, CloseReason>>>;

/// A ws server of `opts` recording why each of its sessions closed.
fn recording(opts: WsOptions, options: ServerOptions) -> (Server<RawCodec>, Reasons) {
    let reasons = Reasons::default();
    let record = reasons.clone();
    let server = Server::builder(echo_router())
        .backend(Backend::Ws(opts))
        .options(options)
        .on_session(move |session| {
            let (record, peer) = (record.clone(), session.peer());
            session.on_close(move |reason| {
                record.lock().unwrap().insert(peer, reason.clone());
            });
            Ok(())
        })
        .bind("127.0.0.1:0")
        .expect("bind");
    (server, reasons)
}

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
    let (server, reasons) = recording(WsOptions::default(), ServerOptions::default());
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
    let (server, reasons) = recording(WsOptions::default(), ServerOptions::default());
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
    let (server, reasons) = recording(WsOptions::default(), ServerOptions::default().conn(conn));
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
    let (server, reasons) = recording(opts.clone(), ServerOptions::default());
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
