//! BEHAVIOURS 34-37 and 41 over loopback sockets, on every backend: the
//! accept limit, the new-session hook, broadcast and multicast, binding
//! users to sessions, and client routers handling server pushes.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use util::*;
use walle_codec::RawCodec;
use walle_net::{ClientOptions, ServerOptions};
use walle_process::{Context, Router};

/// BEHAVIOURS 34: the accept limit refuses connection N+1, frees its place
/// on close, and holds against racing connects.
#[test]
fn b34_accept_limit() {
    for backend in all_backends() {
        let server = server(
            &backend,
            echo_router(),
            ServerOptions::default().max_sessions(3),
        );
        let mut kept: Vec<Raw> = (0..3)
            .map(|_| connect(&backend, server.local_addr()))
            .collect();
        eventually("three sessions", || server.session_count() == 3);
        let mut refused = connect(&backend, server.local_addr());
        assert!(
            closed_by_server(&mut refused),
            "{}: connection 4 refused",
            backend.name()
        );
        assert_eq!(server.admitted(), 3, "a refusal leaks no place");
        drop(kept.pop());
        eventually("place freed", || server.admitted() == 2);
        let mut again = connect(&backend, server.local_addr());
        raw_round_trip(&mut again, 1, b"in");
        drop(kept);
        drop(again);
        eventually("all gone", || server.admitted() == 0);

        // Racing connects never exceed the limit.
        let peak = Arc::new(AtomicUsize::new(0));
        let racers: Vec<_> = (0..30)
            .map(|_| {
                let (addr, backend) = (server.local_addr(), backend.clone());
                std::thread::spawn(move || try_connect(&backend, addr).ok())
            })
            .collect();
        let mut streams: Vec<_> = racers
            .into_iter()
            .filter_map(|r| r.join().unwrap())
            .collect();
        assert!(streams.len() > 3);
        let mut closed = vec![false; streams.len()];
        for s in &mut streams {
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
    for backend in all_backends() {
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
        let mut first = connect(&backend, server.local_addr());
        let body = raw_round_trip_to(&mut first, "hello");
        assert!(body.ends_with(b"welcome"), "{}", backend.name());
        let mut second = connect(&backend, server.local_addr());
        assert!(closed_by_server(&mut second));
        eventually("refused session gone", || server.admitted() == 1);
    }
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
    for backend in all_backends() {
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
    for backend in all_backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        let _first = connect(&backend, server.local_addr());
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
        let _second = connect(&backend, server.local_addr());
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
