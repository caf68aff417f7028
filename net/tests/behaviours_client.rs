//! BEHAVIOURS 39-40 over loopback sockets, on every backend: lazy and
//! eager dialing, calls that fail fast or wait for the connection, and
//! reconnects with pending calls failing at once.

mod util;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use util::*;
use walle_net::{ClientOptions, Dispatcher, ServerOptions, Strategy};
use walle_process::{Context, Error};

/// BEHAVIOURS 39: lazy or eager dial; while not connected, calls fail at
/// once or wait for the connection, as configured.
#[test]
fn b39_lazy_eager_and_waiting_calls() {
    for backend in all_backends() {
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
        let port = held_port_for(&backend);
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
    for backend in all_backends() {
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
