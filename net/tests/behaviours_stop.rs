//! BEHAVIOURS 38 over loopback sockets, on every backend: a graceful stop
//! flushes and closes, from outside, from one of the server's own
//! handlers, and from inside another runtime.

mod util;

use std::io::{Read, Write};
use std::sync::Arc;

use bytes::Bytes;
use util::*;
use walle_net::ServerOptions;
use walle_process::Context;

/// BEHAVIOURS 38: stop refuses new connections, flushes queued writes and
/// closes every session.
#[test]
fn b38_graceful_stop_flushes_and_closes() {
    for backend in all_backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        let addr = server.local_addr();
        let mut raw = connect(&backend, addr);
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
        assert!(
            !answers(&backend, addr),
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
    for backend in all_backends() {
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
            !serves(&backend, addr),
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
    for backend in all_backends() {
        let rt = runtime();
        let addr = rt.block_on(async {
            let server = server(&backend, echo_router(), ServerOptions::default());
            let addr = server.local_addr();
            drop(server);
            addr
        });
        eventually("listener closed", || !serves(&backend, addr));
    }
}
