//! BEHAVIOURS 29-31 over loopback sockets, on every backend: the bounded
//! send queue (from outside and from a handler), writes around a close,
//! and what a close runs and releases.

mod util;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use util::*;
use walle_codec::RawCodec;
use walle_net::{ConnOptions, Dispatcher, ServerOptions, Strategy};
use walle_process::{Context, Error, Router};

/// BEHAVIOURS 29: a full send queue returns an error; it neither blocks
/// for ever nor grows without bound.
#[test]
fn b29_full_send_queue_is_an_error() {
    for backend in all_backends() {
        let conn = ConnOptions::default()
            .send_queue_bytes(256 * 1024)
            .send_queue_frames(256);
        let server = server(&backend, echo_router(), ServerOptions::default().conn(conn));
        let _silent = connect_silent(&backend, server.local_addr()); // never reads
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

/// BEHAVIOURS 29, from a handler: pushes a handler sends on its own
/// connection while the reader is still handing frames on are bounded by
/// the same queue limit; all that were accepted arrive, and once they are
/// read the connection serves again.
#[test]
fn b29_handler_pushes_are_bounded_too() {
    for backend in all_backends() {
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
    for backend in all_backends() {
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

/// BEHAVIOURS 30: writes after close fail with SessionClosed; writes
/// racing a close never panic.
#[test]
fn b30_writes_after_and_during_close() {
    for backend in all_backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        let _peer = connect(&backend, server.local_addr());
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
    for backend in all_backends() {
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
