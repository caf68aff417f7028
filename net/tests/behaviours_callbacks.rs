//! Panics and callbacks over loopback sockets, on every backend: a
//! panicking handler or call callback is contained, and a send made from a
//! timeout callback leaves at once.

mod util;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use util::*;
use walle_codec::Code;
use walle_net::{ClientOptions, ServerOptions};
use walle_process::{Context, Error};

/// A handler that panics fails its own request with an error answer; the
/// thread it ran on (a reactor, a reader task) keeps serving.
#[test]
fn a_panicking_handler_fails_only_its_request() {
    for backend in all_backends() {
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
    for backend in all_backends() {
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
        let mut raw = connect(&backend, server.local_addr());
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
    for backend in all_backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        let mut raw = connect(&backend, server.local_addr());
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
