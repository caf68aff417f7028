//! BEHAVIOURS 24-41 (and 43: the same code for every backend), over real
//! loopback sockets, run against the event-loop and the tokio backends.

mod util;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use util::*;
use walle_codec::{Code, RawCodec};
use walle_net::{
    Backend, ClientOptions, ConnOptions, Dispatcher, HeartbeatMode, ServerOptions, Strategy,
    WriteMode,
};
use walle_packet::{DueFormat, Protocol, WalleFormat};
use walle_process::{Context, Error, Router};

/// BEHAVIOURS 24: frames split across reads or coalesced in one read are
/// each delivered once, in order.
#[test]
fn b24_split_and_coalesced_frames() {
    for backend in backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        let mut raw = connect(server.local_addr());
        raw.set_nodelay(true).unwrap();
        let mut wire = Vec::new();
        for seq in 1..=3u64 {
            wire.extend(request_frame("echo", seq, &[seq as u8; 300]));
        }
        for byte in &wire {
            raw.write_all(std::slice::from_ref(byte)).unwrap(); // one byte at a time
        }
        let mut coalesced = Vec::new();
        for seq in 4..=6u64 {
            coalesced.extend(request_frame("echo", seq, &[seq as u8; 10]));
        }
        raw.write_all(&coalesced).unwrap(); // three frames in one write
        let protocol = Protocol::new(WalleFormat::new());
        for seq in 1..=6u64 {
            let mut len = [0u8; 4];
            raw.read_exact(&mut len).unwrap();
            let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
            raw.read_exact(&mut body).unwrap();
            let p = protocol.decode(Bytes::from(body)).unwrap();
            assert_eq!(p.seq(), seq, "{}", backend.name());
            assert!(p.payload().iter().all(|&b| b == seq as u8));
        }
    }
}

/// BEHAVIOURS 25: a frame over the maximum fails at encode with code 6;
/// nothing is sent.
#[test]
fn b25_oversized_send_fails_with_code_6() {
    for backend in backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        let client = Client_max(&backend, server.local_addr());
        let rt = runtime();
        let big = Bytes::from(vec![0u8; 4096]);
        let err = rt
            .block_on(client.call::<Bytes, Bytes>("echo", &big))
            .unwrap_err();
        assert_eq!(err.code(), Code::PACKET_SIZE, "{}", backend.name());
        // The connection is intact: nothing partial was sent.
        let ok: Bytes = rt
            .block_on(client.call("echo", &Bytes::from_static(b"small")))
            .unwrap();
        assert_eq!(ok, Bytes::from_static(b"small"));
    }
}

#[allow(non_snake_case)]
fn Client_max(backend: &Backend, addr: std::net::SocketAddr) -> walle_net::Client<RawCodec> {
    walle_net::Client::builder(addr, Router::new(RawCodec))
        .backend(backend.clone())
        .protocol(Protocol::new(WalleFormat::new()).with_max_frame(1024))
        .build()
        .unwrap()
}

/// BEHAVIOURS 26: a length over the maximum closes the connection, on the
/// server and on the client, without harming other connections.
#[test]
fn b26_oversized_length_closes_only_that_connection() {
    for backend in backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        let mut good = connect(server.local_addr());
        let mut bad = connect(server.local_addr());
        bad.write_all(&[0xff, 0xff, 0xff, 0xf0, 1, 2, 3]).unwrap();
        assert!(closed_by_server(&mut bad), "{}", backend.name());
        assert_eq!(
            raw_round_trip(&mut good, 1, b"still here").len(),
            16 + 4 + 10
        );

        // Client side: a "server" that announces 4 GiB.
        let evil = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = evil.local_addr().unwrap();
        let client = client(&backend, addr, ClientOptions::default());
        let (mut conn, _) = evil.accept().unwrap();
        let rt = runtime();
        eventually("connected", || client.is_connected());
        let call = client
            .process()
            .unwrap()
            .call::<Bytes, Bytes>("echo", &Bytes::new());
        conn.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
        let err = rt.block_on(call).unwrap_err();
        assert!(
            matches!(err, Error::SessionClosed),
            "{}: {err}",
            backend.name()
        );
        eventually("client disconnect", || !client.is_connected());
    }
}

/// Reads everything `server` pushes to one raw client, for `count` pushes.
fn pushed_bytes(backend: &Backend, mode: WriteMode, count: usize) -> Vec<u8> {
    let conn = ConnOptions::default()
        .write_mode(mode)
        .send_queue_frames(8192)
        .send_queue_bytes(64 << 20);
    let options = ServerOptions::default().conn(conn);
    let server = server(backend, echo_router(), options);
    let mut raw = connect(server.local_addr());
    eventually("session", || server.session_count() == 1);
    let session = server.sessions().pop().unwrap();
    let mut expected_len = 0;
    for i in 0..count {
        let msg = Bytes::from(vec![i as u8; i % 700]);
        session.notify("push", &msg).unwrap();
        expected_len += 4 + 16 + "push".len() + msg.len();
    }
    let mut got = vec![0u8; expected_len];
    raw.read_exact(&mut got).unwrap();
    got
}

/// BEHAVIOURS 27 and 28: sync and async writes put identical bytes on the
/// wire, on every backend; queued frames all arrive, in order.
#[test]
fn b27_b28_write_modes_put_identical_bytes() {
    let reference = pushed_bytes(&Backend::tcp(), WriteMode::Async, 2000);
    assert_eq!(
        pushed_bytes(&Backend::tcp(), WriteMode::Sync, 2000),
        reference
    );
    assert_eq!(
        pushed_bytes(&Backend::evloop(), WriteMode::Async, 2000),
        reference
    );
}

/// BEHAVIOURS 29: a full send queue returns an error; it neither blocks
/// for ever nor grows without bound.
#[test]
fn b29_full_send_queue_is_an_error() {
    for backend in backends() {
        let conn = ConnOptions::default()
            .send_queue_bytes(256 * 1024)
            .send_queue_frames(256);
        let server = server(&backend, echo_router(), ServerOptions::default().conn(conn));
        let _silent = connect(server.local_addr()); // never reads
        eventually("session", || server.session_count() == 1);
        let session = server.sessions().pop().unwrap();
        let msg = Bytes::from(vec![0u8; 16 * 1024]);
        let started = Instant::now();
        let mut sent = 0;
        let err = loop {
            match session.notify("flood", &msg) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent < 100_000, "{}: the queue never filled", backend.name());
        };
        assert!(
            matches!(err, Error::Overloaded(_)),
            "{}: {err}",
            backend.name()
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "sends must not block"
        );
    }
}

/// A server its own handlers reach through a slot.
type Slot = Arc<Mutex<Option<walle_net::Server<RawCodec>>>>;

/// Starts a server into `slot` and connects a raw client to it once its
/// session is up.
fn serve_in(
    slot: &Slot,
    backend: &Backend,
    router: Router<RawCodec>,
    options: ServerOptions,
) -> TcpStream {
    let server = server(backend, router, options);
    let addr = server.local_addr();
    *slot.lock().unwrap() = Some(server);
    let raw = connect(addr);
    eventually("session", || {
        slot.lock().unwrap().as_ref().unwrap().session_count() == 1
    });
    raw
}

/// BEHAVIOURS 29, from a handler: pushes a handler sends on its own
/// connection while the reader is still handing frames on are bounded by
/// the same queue limit; all that were accepted arrive, and once they are
/// read the connection serves again.
#[test]
fn b29_handler_pushes_are_bounded_too() {
    for backend in backends() {
        let slot: Slot = Arc::default();
        let accepted = Arc::new(AtomicUsize::new(usize::MAX));
        let mut router = echo_router();
        let (held, count) = (slot.clone(), accepted.clone());
        router
            .route("flood", move |_: &mut Context, _: Bytes| {
                let guard = held.lock().unwrap();
                let session = guard.as_ref().unwrap().sessions().pop().unwrap();
                let push = Bytes::from(vec![9u8; 1000]);
                let mut n = 0;
                let refused = loop {
                    match session.notify("p", &push) {
                        Ok(()) => n += 1,
                        Err(e) => break e,
                    }
                    assert!(n < 10_000, "the queue never filled");
                };
                assert!(matches!(refused, Error::Overloaded(_)), "{refused}");
                count.store(n, Ordering::SeqCst);
                Ok(Bytes::new()) // refused as well while the queue is full
            })
            .unwrap();
        let conn = ConnOptions::default().send_queue_bytes(64 * 1024);
        let mut raw = serve_in(&slot, &backend, router, ServerOptions::default().conn(conn));
        raw.write_all(&request_frame("flood", 1, b"")).unwrap();
        eventually("flood done", || {
            accepted.load(Ordering::SeqCst) != usize::MAX
        });
        let accepted = accepted.load(Ordering::SeqCst);
        assert!(
            (1..=66).contains(&accepted),
            "{}: {accepted} pushes of 1 KiB under a 64 KiB bound",
            backend.name()
        );
        let mut pushes = vec![0u8; accepted * (4 + 16 + 1 + 1000)];
        raw.read_exact(&mut pushes).unwrap();
        assert!(
            pushes
                .chunks(4 + 16 + 1 + 1000)
                .all(|p| p[4] == 0 && p[21..] == [9u8; 1000][..]),
            "{}: the accepted pushes, whole",
            backend.name()
        );
        let echoed = raw_round_trip_to(&mut raw, "echo");
        assert!(!echoed.is_empty(), "{}: served again", backend.name());
        slot.lock().unwrap().take();
    }
}

/// BEHAVIOURS 30 and 38: a handler that pushes to its own connection and
/// then closes it: what it pushed before the close is flushed first.
#[test]
fn b30_pushes_before_a_close_are_flushed() {
    for backend in backends() {
        for _ in 0..20 {
            let slot: Slot = Arc::default();
            let mut router = echo_router();
            let held = slot.clone();
            router
                .route("bye", move |_: &mut Context, _: Bytes| {
                    let guard = held.lock().unwrap();
                    let session = guard.as_ref().unwrap().sessions().pop().unwrap();
                    for i in 0..3u8 {
                        session.notify("p", &Bytes::from(vec![i; 10])).unwrap();
                    }
                    session.close();
                    Ok(Bytes::new())
                })
                .unwrap();
            let mut raw = serve_in(&slot, &backend, router, ServerOptions::default());
            raw.write_all(&request_frame("bye", 1, b"")).unwrap();
            let mut got = Vec::new();
            let _ = raw.read_to_end(&mut got);
            assert_eq!(
                got.len(),
                3 * (4 + 16 + 1 + 10),
                "{}: the three pushes, then the close",
                backend.name()
            );
            slot.lock().unwrap().take();
        }
    }
}

/// A handler that panics fails its own request with an error answer; the
/// thread it ran on (a reactor, a reader task) keeps serving.
#[test]
fn a_panicking_handler_fails_only_its_request() {
    for backend in backends() {
        let mut router = echo_router();
        router
            .route("boom", |_: &mut Context, _: Bytes| -> Result<Bytes, _> {
                panic!("a bug in a handler")
            })
            .unwrap();
        let server = server(&backend, router, ServerOptions::default());
        let client = client(&backend, server.local_addr(), ClientOptions::default());
        let rt = runtime();
        for _ in 0..3 {
            let err = rt
                .block_on(client.call::<Bytes, Bytes>("boom", &Bytes::new()))
                .unwrap_err();
            assert!(
                matches!(&err, Error::Remote { code, desc } if *code == Code::UNKNOWN && desc.contains("panicked")),
                "{}: {err}",
                backend.name()
            );
            let ok: Bytes = rt
                .block_on(client.call("echo", &Bytes::from_static(b"still here")))
                .unwrap();
            assert_eq!(ok, Bytes::from_static(b"still here"), "{}", backend.name());
        }
    }
}

/// A call's callback that panics, whether its answer came or its timeout
/// fired, is contained: the connection and the thread it ran on (a
/// reactor, a reader task) go on serving.
#[test]
fn a_panicking_callback_is_contained() {
    for backend in backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        // Answered: the callback runs while the answer's frame is handled.
        let client = client(&backend, server.local_addr(), ClientOptions::default());
        client.process().expect("connected").async_call(
            "echo",
            &Bytes::from_static(b"x"),
            walle_process::CallOptions::default(),
            |_: Result<Bytes, Error>| panic!("a bug in a callback"),
        );
        let ok: Bytes = runtime()
            .block_on(client.call("echo", &Bytes::from_static(b"fine")))
            .unwrap();
        assert_eq!(ok, Bytes::from_static(b"fine"), "{}", backend.name());
        assert!(client.is_connected(), "{}", backend.name());
        // Timed out: the callback runs from the server's timer.
        let mut raw = connect(server.local_addr());
        eventually("session", || server.session_count() == 2);
        let session = server
            .sessions()
            .into_iter()
            .max_by_key(|s| s.id())
            .unwrap();
        let fired = Arc::new(AtomicUsize::new(0));
        let seen = fired.clone();
        session.process().async_call(
            "ask",
            &Bytes::new(),
            walle_process::CallOptions {
                timeout: Some(Duration::from_millis(50)),
                ..Default::default()
            },
            move |_: Result<Bytes, Error>| {
                seen.fetch_add(1, Ordering::SeqCst);
                panic!("a bug in a timeout callback")
            },
        );
        eventually("the timeout fired", || fired.load(Ordering::SeqCst) == 1);
        let mut ask = [0u8; 4 + 16 + 3];
        raw.read_exact(&mut ask).unwrap(); // the call's request
        let answer = raw_round_trip_to(&mut raw, "echo");
        assert_eq!(
            answer[0],
            2,
            "{}: an answer after the panic",
            backend.name()
        );
        assert_eq!(server.session_count(), 2, "{}", backend.name());
    }
}

/// A send made by a call's timeout callback leaves at once, with no other
/// traffic to wake the reactor.
#[test]
fn a_send_from_a_timeout_callback_leaves_at_once() {
    for backend in backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        let mut raw = connect(server.local_addr());
        eventually("session", || server.session_count() == 1);
        let session = server.sessions().pop().unwrap();
        let again = session.clone();
        let options = walle_process::CallOptions {
            timeout: Some(Duration::from_millis(100)),
            ..Default::default()
        };
        session.process().async_call(
            "ask",
            &Bytes::new(),
            options,
            move |answer: Result<Bytes, Error>| {
                assert!(answer.is_err(), "the peer never answers");
                again.notify("late", &Bytes::from_static(b"!")).unwrap();
            },
        );
        let mut frames = Vec::new();
        for _ in 0..2 {
            let mut len = [0u8; 4];
            raw.read_exact(&mut len)
                .unwrap_or_else(|e| panic!("{}: {e}", backend.name()));
            let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
            raw.read_exact(&mut body).unwrap();
            frames.push(body);
        }
        assert_eq!(frames[0][0], 1, "{}: the call's request", backend.name());
        assert_eq!(frames[1][0], 0, "{}: the callback's notify", backend.name());
    }
}

/// BEHAVIOURS 30: writes after close fail with SessionClosed; writes
/// racing a close never panic.
#[test]
fn b30_writes_after_and_during_close() {
    for backend in backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        let _peer = connect(server.local_addr());
        eventually("session", || server.session_count() == 1);
        let session = server.sessions().pop().unwrap();
        let tries = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let (s, tries) = (session.clone(), tries.clone());
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        let _ = s.notify("x", &Bytes::from_static(b"racing"));
                        tries.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        eventually("writers under way", || tries.load(Ordering::Relaxed) > 0);
        session.close();
        for w in writers {
            w.join().expect("no panic while racing close");
        }
        let err = session.notify("x", &Bytes::new()).unwrap_err();
        assert!(
            matches!(err, Error::SessionClosed),
            "{}: {err}",
            backend.name()
        );
    }
}

/// BEHAVIOURS 31: close runs the close callbacks once, fails pending
/// calls, and releases the socket.
#[test]
fn b31_close_callbacks_pending_calls_socket() {
    for backend in backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        // A client that never answers the server's call: its handler waits.
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let mut router = Router::new(RawCodec);
        let g = gate.clone();
        let entered = Arc::new(AtomicUsize::new(0));
        let e = entered.clone();
        router
            .route("slow", move |_: &mut Context, q: Bytes| {
                e.fetch_add(1, Ordering::SeqCst);
                drop(g.lock());
                Ok(q)
            })
            .unwrap();
        let dispatcher = Arc::new(Dispatcher::new(Strategy::Pool(1), 16).unwrap());
        let client = walle_net::Client::builder(server.local_addr(), router)
            .backend(backend.clone())
            .dispatcher(dispatcher)
            .build()
            .unwrap();
        eventually("session", || server.session_count() == 1);
        let session = server.sessions().pop().unwrap();
        let closes = Arc::new(AtomicUsize::new(0));
        let c = closes.clone();
        session.on_close(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        });
        let rt = runtime();
        let call = session.call::<Bytes, Bytes>("slow", &Bytes::new());
        eventually("the client holds the call", || {
            entered.load(Ordering::SeqCst) == 1
        });
        session.close();
        session.close();
        let err = rt.block_on(call).unwrap_err();
        assert!(
            matches!(err, Error::SessionClosed),
            "{}: {err}",
            backend.name()
        );
        assert_eq!(closes.load(Ordering::SeqCst), 1);
        eventually("client sees the socket closed", || !client.is_connected());
        eventually("session forgotten", || server.session_count() == 0);
        drop(held);
    }
}

/// BEHAVIOURS 32: a connection silent for the read timeout is closed; one
/// that keeps talking stays.
#[test]
fn b32_idle_connection_is_closed() {
    for backend in backends() {
        let limit = Duration::from_millis(400);
        let conn = ConnOptions::default().read_timeout(limit);
        let server = server(&backend, echo_router(), ServerOptions::default().conn(conn));
        let mut talker = connect(server.local_addr());
        let mut idle = connect(server.local_addr());
        let started = Instant::now();
        let watcher = std::thread::spawn(move || closed_by_server(&mut idle));
        // The talker talks, far more often than the limit, until the idle
        // connection is closed.
        let mut seq = 0;
        while !watcher.is_finished() {
            seq += 1;
            raw_round_trip(&mut talker, seq, b"hi");
            std::thread::sleep(Duration::from_millis(5)); // pacing, not waiting
        }
        assert!(watcher.join().unwrap(), "{}", backend.name());
        assert!(started.elapsed() >= limit, "not before the read timeout");
        raw_round_trip(&mut talker, 0, b"still open");
    }
}

/// BEHAVIOURS 33: heartbeats are sent (server tick) or echoed, and a peer
/// silent past the allowed misses is dropped.
#[test]
fn b33_heartbeats() {
    let due = || Protocol::new(DueFormat::new());
    for backend in backends() {
        let every = Duration::from_millis(100);
        // Server tick: a silent raw peer gets heartbeats, then is dropped.
        let conn = ConnOptions::default().heartbeat(every, HeartbeatMode::ServerTick);
        let server = walle_net::Server::builder(echo_router())
            .backend(backend.clone())
            .protocol(due())
            .options(ServerOptions::default().conn(conn))
            .bind("127.0.0.1:0")
            .unwrap();
        let mut raw = connect(server.local_addr());
        let mut beat = [0u8; 5];
        raw.read_exact(&mut beat).unwrap();
        assert_eq!(beat, [0, 0, 0, 1, 0x80], "{}", backend.name());
        assert!(
            closed_by_server(&mut raw),
            "silent peer dropped after 3 missed intervals"
        );

        // Echo: the server answers each heartbeat the client sends.
        let conn = ConnOptions::default().heartbeat(every, HeartbeatMode::Echo);
        let server = walle_net::Server::builder(echo_router())
            .backend(backend.clone())
            .protocol(due())
            .options(ServerOptions::default().conn(conn))
            .bind("127.0.0.1:0")
            .unwrap();
        let mut raw = connect(server.local_addr());
        raw.write_all(&[0, 0, 0, 1, 0x80]).unwrap();
        raw.read_exact(&mut beat).unwrap();
        assert_eq!(beat, [0, 0, 0, 1, 0x80]);
        // A client in echo mode ticks, so it stays connected past the limit.
        let opts = ClientOptions::default()
            .conn(ConnOptions::default().heartbeat(every, HeartbeatMode::Echo));
        let client = walle_net::Client::builder(server.local_addr(), Router::new(RawCodec))
            .backend(backend.clone())
            .protocol(due())
            .options(opts)
            .build()
            .unwrap();
        // Watched over twice the silence limit.
        let until = Instant::now() + every * 6;
        while Instant::now() < until {
            assert!(
                client.is_connected(),
                "{}: a ticking client stays",
                backend.name()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// BEHAVIOURS 34: the accept limit refuses connection N+1, frees its place
/// on close, and holds against racing connects.
#[test]
fn b34_accept_limit() {
    for backend in backends() {
        let server = server(
            &backend,
            echo_router(),
            ServerOptions::default().max_sessions(3),
        );
        let mut kept: Vec<TcpStream> = (0..3).map(|_| connect(server.local_addr())).collect();
        eventually("three sessions", || server.session_count() == 3);
        let mut refused = connect(server.local_addr());
        assert!(
            closed_by_server(&mut refused),
            "{}: connection 4 refused",
            backend.name()
        );
        assert_eq!(server.admitted(), 3, "a refusal leaks no place");
        drop(kept.pop());
        eventually("place freed", || server.admitted() == 2);
        let mut again = connect(server.local_addr());
        raw_round_trip(&mut again, 1, b"in");
        drop(kept);
        drop(again);
        eventually("all gone", || server.admitted() == 0);

        // Racing connects never exceed the limit.
        let peak = Arc::new(AtomicUsize::new(0));
        let racers: Vec<_> = (0..30)
            .map(|_| {
                let addr = server.local_addr();
                std::thread::spawn(move || TcpStream::connect(addr).ok())
            })
            .collect();
        let mut streams: Vec<_> = racers
            .into_iter()
            .filter_map(|r| r.join().unwrap())
            .collect();
        assert!(streams.len() > 3);
        let mut closed = vec![false; streams.len()];
        for s in &streams {
            s.set_nonblocking(true).unwrap();
        }
        // Until every connection over the limit was refused.
        eventually("the refusals", || {
            peak.fetch_max(server.session_count(), Ordering::SeqCst);
            for (stream, closed) in streams.iter_mut().zip(closed.iter_mut()) {
                *closed = *closed || seen_closed(stream);
            }
            closed.iter().filter(|&&c| c).count() == streams.len() - 3
        });
        assert!(peak.load(Ordering::SeqCst) <= 3, "{}", backend.name());
        assert_eq!(server.session_count(), 3, "{}", backend.name());
        drop(streams);
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Greeting(&'static str);

/// BEHAVIOURS 35: the new-session hook refuses connections or attaches
/// values to them.
#[test]
fn b35_new_session_hook() {
    for backend in backends() {
        let mut router = Router::new(RawCodec);
        router
            .route("hello", |ctx: &mut Context, _: Bytes| {
                Ok(Bytes::from(
                    ctx.session().get::<Greeting>().map_or("none", |g| g.0),
                ))
            })
            .unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let s = seen.clone();
        let server = walle_net::Server::builder(router)
            .backend(backend.clone())
            .on_session(move |session| {
                if s.fetch_add(1, Ordering::SeqCst) == 1 {
                    return Err("every second connection is refused".into());
                }
                session.session().insert(Greeting("welcome"));
                Ok(())
            })
            .bind("127.0.0.1:0")
            .unwrap();
        let mut first = connect(server.local_addr());
        let body = raw_round_trip_to(&mut first, "hello");
        assert!(body.ends_with(b"welcome"), "{}", backend.name());
        let mut second = connect(server.local_addr());
        assert!(closed_by_server(&mut second));
        eventually("refused session gone", || server.admitted() == 1);
    }
}

fn raw_round_trip_to(stream: &mut TcpStream, uri: &str) -> Vec<u8> {
    stream.write_all(&request_frame(uri, 1, b"")).unwrap();
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).unwrap();
    body
}

fn push_router(log: Arc<Mutex<Vec<String>>>, name: &'static str) -> Router<RawCodec> {
    let mut router = Router::new(RawCodec);
    router
        .route("news", move |_: &mut Context, msg: Bytes| {
            log.lock()
                .unwrap()
                .push(format!("{name}:{}", String::from_utf8_lossy(&msg)));
            Ok(Bytes::new())
        })
        .unwrap();
    router
}

/// BEHAVIOURS 36, 37 and 41: broadcast (encoded once, with a filter),
/// multicast to sessions and users, a re-bind kicking the old session,
/// and client routers handling what the server pushes.
#[test]
fn b36_b37_b41_broadcast_multicast_bind() {
    for backend in backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        let log = Arc::new(Mutex::new(Vec::new()));
        let clients: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|name| {
                client_with(
                    &backend,
                    server.local_addr(),
                    push_router(log.clone(), name),
                    ClientOptions::default(),
                )
            })
            .collect();
        eventually("three sessions", || server.session_count() == 3);
        let mut ids: Vec<u64> = server.sessions().iter().map(|s| s.id()).collect();
        ids.sort();
        let n = server
            .broadcast("news", &Bytes::from_static(b"all"), |_| true)
            .unwrap();
        assert_eq!(n, 3);
        let n = server
            .broadcast("news", &Bytes::from_static(b"some"), |s| s.id() != ids[0])
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            server
                .multicast(&ids[..1], "news", &Bytes::from_static(b"one"))
                .unwrap(),
            1
        );
        eventually("pushes handled", || log.lock().unwrap().len() == 6);
        let got = log.lock().unwrap().clone();
        for name in ["a", "b", "c"] {
            assert!(
                got.contains(&format!("{name}:all")),
                "{}: {got:?}",
                backend.name()
            );
        }
        assert_eq!(got.iter().filter(|l| l.ends_with(":some")).count(), 2);
        assert_eq!(got.iter().filter(|l| l.ends_with(":one")).count(), 1);

        // Users: bind, multicast by user, re-bind kicks.
        server.bind_user(42, ids[0]).unwrap();
        assert_eq!(
            server
                .multicast_users(&[42, 7], "news", &Bytes::from_static(b"user"))
                .unwrap(),
            1
        );
        server.bind_user(42, ids[1]).unwrap();
        eventually("old session kicked", || server.session(ids[0]).is_none());
        assert_eq!(server.session_of_user(42).map(|s| s.id()), Some(ids[1]));
        eventually("a client lost its connection", || {
            clients.iter().filter(|c| !c.is_connected()).count() == 1
        });
        assert!(server.bind_user(9, 999_999).is_err());
    }
}

/// BEHAVIOURS 37: re-binding a session to another user unbinds the first
/// user: pushes to it reach no one, and it may bind another session
/// without kicking this one.
#[test]
fn b37_rebinding_a_session_forgets_its_old_user() {
    for backend in backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        let _first = connect(server.local_addr());
        eventually("session", || server.session_count() == 1);
        let id = server.sessions().pop().unwrap().id();
        server.bind_user(1, id).unwrap();
        server.bind_user(2, id).unwrap();
        assert!(
            server.session_of_user(1).is_none(),
            "{}: user 1 is no longer bound",
            backend.name()
        );
        assert_eq!(server.session_of_user(2).map(|s| s.id()), Some(id));
        assert_eq!(
            server
                .multicast_users(&[1], "news", &Bytes::from_static(b"for 1"))
                .unwrap(),
            0,
            "{}: a push to user 1 reaches no one",
            backend.name()
        );
        let _second = connect(server.local_addr());
        eventually("two sessions", || server.session_count() == 2);
        let other = server
            .sessions()
            .into_iter()
            .map(|s| s.id())
            .find(|&s| s != id)
            .unwrap();
        server.bind_user(1, other).unwrap();
        assert!(
            server.session(id).is_some_and(|s| !s.is_closed()),
            "{}: user 2's session is not kicked by user 1's binding",
            backend.name()
        );
        assert_eq!(server.session_of_user(1).map(|s| s.id()), Some(other));
        assert_eq!(server.session_of_user(2).map(|s| s.id()), Some(id));
    }
}

/// BEHAVIOURS 38: stop refuses new connections, flushes queued writes and
/// closes every session.
#[test]
fn b38_graceful_stop_flushes_and_closes() {
    for backend in backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        let addr = server.local_addr();
        let mut raw = connect(addr);
        eventually("session", || server.session_count() == 1);
        let session = server.sessions().pop().unwrap();
        let msg = Bytes::from(vec![7u8; 1000]);
        for _ in 0..500 {
            session.notify("bye", &msg).unwrap();
        }
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            raw.read_to_end(&mut all).map(|_| all.len())
        });
        server.stop();
        let received = reader.join().unwrap().unwrap_or(0);
        // len + header + uri "bye" + payload
        assert_eq!(
            received,
            500 * (4 + 16 + 3 + 1000),
            "{}: every queued frame flushed",
            backend.name()
        );
        assert_eq!(server.session_count(), 0);
        let refused = TcpStream::connect(addr).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(&request_frame("echo", 1, b""))?;
            let mut b = [0u8; 1];
            s.read(&mut b)
        });
        assert!(
            !matches!(refused, Ok(n) if n > 0),
            "{}: a stopped server answers nothing",
            backend.name()
        );
    }
}

/// BEHAVIOURS 38, from inside: a handler running inline on the server's
/// own thread (a reactor, a runtime worker) can stop its server; the stop
/// completes in the background instead of waiting for its own thread.
#[test]
fn b38_a_handler_stops_its_own_server() {
    for backend in backends() {
        let slot: Slot = Arc::default();
        let mut router = echo_router();
        let held = slot.clone();
        router
            .route("shutdown", move |_: &mut Context, _: Bytes| {
                if let Some(server) = held.lock().unwrap().as_ref() {
                    server.stop();
                }
                Ok(Bytes::from_static(b"stopping"))
            })
            .unwrap();
        let mut raw = serve_in(&slot, &backend, router, ServerOptions::default());
        let addr = raw.peer_addr().unwrap();
        raw.write_all(&request_frame("shutdown", 1, b"")).unwrap();
        let mut rest = Vec::new();
        let read = raw.read_to_end(&mut rest);
        assert!(
            read.is_ok(),
            "{}: the connection ends once the server stopped: {read:?}",
            backend.name()
        );
        let server = slot.lock().unwrap().take().unwrap();
        assert_eq!(
            server.session_count(),
            0,
            "{}: the session is gone before its peer sees the end",
            backend.name()
        );
        // From this thread, stop waits for the stop the handler began.
        server.stop();
        assert!(
            TcpStream::connect(addr).is_err(),
            "{}: the listener is closed once stop returned",
            backend.name()
        );
        drop(server); // stopping again is a no-op
    }
}

/// A server may be stopped (here: dropped) from inside an async task of
/// the application's own runtime.
#[test]
fn b38_stop_from_inside_another_runtime() {
    for backend in backends() {
        let rt = runtime();
        let addr = rt.block_on(async {
            let server = server(&backend, echo_router(), ServerOptions::default());
            let addr = server.local_addr();
            drop(server);
            addr
        });
        eventually("listener closed", || TcpStream::connect(addr).is_err());
    }
}

/// BEHAVIOURS 39: lazy or eager dial; while not connected, calls fail at
/// once or wait for the connection, as configured.
#[test]
fn b39_lazy_eager_and_waiting_calls() {
    for backend in backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        let lazy = client(
            &backend,
            server.local_addr(),
            ClientOptions::default().lazy(true),
        );
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            server.session_count(),
            0,
            "{}: lazy clients do not dial at build",
            backend.name()
        );
        let rt = runtime();
        // Fail-fast: the first call finds no connection (dial starts).
        let first = rt.block_on(lazy.call::<Bytes, Bytes>("echo", &Bytes::new()));
        assert!(matches!(first, Err(Error::SessionClosed)));
        eventually("lazy dial", || lazy.is_connected());
        let eager = client(&backend, server.local_addr(), ClientOptions::default());
        assert!(eager.is_connected(), "eager clients are connected at build");
        eventually("two sessions", || server.session_count() == 2);

        // Waiting: a lazy client of a server that is not up yet.
        let port = held_port();
        let opts = ClientOptions::default()
            .lazy(true)
            .reconnect(-1, Duration::from_millis(20))
            .wait_connected(Duration::from_secs(30));
        let waiting = client(&backend, port.addr, opts);
        let late = std::thread::spawn({
            let backend = backend.clone();
            move || {
                std::thread::sleep(Duration::from_millis(200));
                walle_net::Server::builder(echo_router())
                    .backend(backend)
                    .bind(port.release())
                    .unwrap()
            }
        });
        let answer: Bytes = rt
            .block_on(waiting.call("echo", &Bytes::from_static(b"waited")))
            .unwrap();
        assert_eq!(answer, Bytes::from_static(b"waited"));
        drop(late.join().unwrap());
    }
}

/// BEHAVIOURS 40: on disconnect pending calls fail at once; the client
/// reconnects as configured (0 never, N times, negative for ever).
#[test]
fn b40_reconnect_and_pending_calls_fail_at_once() {
    for backend in backends() {
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let mut router = echo_router();
        let g = gate.clone();
        router
            .route("stuck", move |_: &mut Context, q: Bytes| {
                drop(g.lock());
                Ok(q)
            })
            .unwrap();
        let dispatcher = Arc::new(Dispatcher::new(Strategy::Pool(1), 16).unwrap());
        let server = walle_net::Server::builder(router)
            .backend(backend.clone())
            .dispatcher(dispatcher)
            .bind("127.0.0.1:0")
            .unwrap();
        let opts = ClientOptions::default().reconnect(-1, Duration::from_millis(20));
        let forever = client(&backend, server.local_addr(), opts);
        let never = client(&backend, server.local_addr(), ClientOptions::default());
        eventually("two sessions", || server.session_count() == 2);
        let rt = runtime();
        let long = walle_process::CallOptions {
            timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        let pending =
            forever
                .process()
                .unwrap()
                .call_with::<Bytes, Bytes>("stuck", &Bytes::new(), long);
        let started = Instant::now();
        for s in server.sessions() {
            s.close();
        }
        let err = rt.block_on(pending).unwrap_err();
        assert!(
            matches!(err, Error::SessionClosed),
            "{}: {err}",
            backend.name()
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "failed at once, not by its 60 s timeout"
        );
        drop(held); // free the server's one worker
        eventually("reconnected", || forever.is_connected());
        let again: Bytes = rt
            .block_on(forever.call("echo", &Bytes::from_static(b"back")))
            .unwrap();
        assert_eq!(again, Bytes::from_static(b"back"));
        std::thread::sleep(Duration::from_millis(100));
        assert!(!never.is_connected(), "reconnect 0 never reconnects");
    }
}
