//! How connections end: the order a stop or a close follows, the bounded
//! flush of what a close leaves queued, connections racing a stop, and a
//! full send queue with a send timeout — on both backends unless a test
//! says otherwise.

mod util;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use util::*;
use walle_codec::RawCodec;
use walle_net::{
    Backend, ConnOptions, Server, ServerOptions, SessionHandle, TcpOptions, WriteMode, WsOptions,
};
use walle_process::{Context, Error, Router};

/// The session of the last connection, kept by the new-session hook.
type Last = Arc<Mutex<Option<SessionHandle<RawCodec>>>>;

fn serve_keeping_last(
    backend: &Backend,
    router: Router<RawCodec>,
    options: ServerOptions,
) -> (Server<RawCodec>, Last) {
    let last = Last::default();
    let keep = last.clone();
    let server = Server::builder(router)
        .backend(backend.clone())
        .options(options)
        .on_session(move |session| {
            *keep.lock().unwrap() = Some(session.clone());
            Ok(())
        })
        .bind("127.0.0.1:0")
        .expect("bind");
    (server, last)
}

/// Bytes of one `walle` push to `route` with a payload of `len` bytes.
fn push_len(route: &str, len: usize) -> usize {
    4 + 16 + route.len() + len
}

/// Reads until the end of the stream (EOF or reset), in small reads.
fn read_all_slowly(stream: &mut (impl Read + Timeouts)) -> usize {
    stream.timeout(Some(Duration::from_secs(30)));
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return total,
            Ok(n) => total += n,
        }
    }
}

/// BEHAVIOURS 31 and 38: a stop closes every session — its close
/// callbacks run and it leaves the server's count — before its peer can
/// see the connection end, and returns only once that is done.
#[test]
fn a_stop_closes_sessions_before_their_peers_see_the_end() {
    for backend in all_backends() {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let server = Server::builder(echo_router())
            .backend(backend.clone())
            .on_session(move |session| {
                let flag = flag.clone();
                session.on_close(move |_| {
                    // A slow close callback (saving the user's state, say).
                    std::thread::sleep(Duration::from_millis(150));
                    flag.store(true, Ordering::SeqCst);
                });
                Ok(())
            })
            .bind("127.0.0.1:0")
            .unwrap();
        let mut raw = connect(&backend, server.local_addr());
        eventually("session", || server.session_count() == 1);
        let seen = done.clone();
        let peer = std::thread::spawn(move || {
            let _ = read_all_slowly(&mut raw);
            seen.load(Ordering::SeqCst)
        });
        server.stop();
        assert!(
            done.load(Ordering::SeqCst),
            "{}: stop returned before the close callback was done",
            backend.name()
        );
        assert_eq!(server.session_count(), 0, "{}", backend.name());
        assert!(
            peer.join().unwrap(),
            "{}: the peer saw the end before the close callback was done",
            backend.name()
        );
    }
}

/// BEHAVIOURS 38: connections keep arriving while the server stops. None
/// becomes a session once the stop returned, the listener is closed by
/// then, and the stop does not wait out the drain timeout for a connection
/// accepted while it ran.
#[test]
fn connects_racing_a_stop_neither_register_nor_hold_it() {
    let drain = Duration::from_secs(30);
    for backend in all_backends() {
        for round in 0..8 {
            let stopped = Arc::new(AtomicBool::new(false));
            let late = Arc::new(AtomicUsize::new(0));
            let (flag, count) = (stopped.clone(), late.clone());
            let server = Server::builder(echo_router())
                .backend(backend.clone())
                .options(ServerOptions::default().drain_timeout(drain))
                .on_session(move |_| {
                    if flag.load(Ordering::SeqCst) {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(())
                })
                .bind("127.0.0.1:0")
                .unwrap();
            let addr = server.local_addr();
            let racing = Arc::new(AtomicBool::new(true));
            let connectors: Vec<_> = (0..2)
                .map(|_| {
                    let (racing, backend) = (racing.clone(), backend.clone());
                    std::thread::spawn(move || {
                        let mut held = std::collections::VecDeque::new();
                        while racing.load(Ordering::SeqCst) {
                            match try_connect_quickly(&backend, addr) {
                                Ok(s) => held.push_back(s),
                                Err(_) => break, // the listener is gone
                            }
                            if held.len() > 50 {
                                held.pop_front();
                            }
                        }
                        held
                    })
                })
                .collect();
            eventually("connections arriving", || server.session_count() >= 5);
            let started = Instant::now();
            server.stop();
            let took = started.elapsed();
            stopped.store(true, Ordering::SeqCst);
            assert!(
                took < drain / 2,
                "{} round {round}: the stop waited {took:?} for a connection accepted during it",
                backend.name()
            );
            assert_eq!(server.session_count(), 0, "{}", backend.name());
            assert!(
                !serves(&backend, addr),
                "{}: the listener is closed once stop returned",
                backend.name()
            );
            racing.store(false, Ordering::SeqCst);
            for c in connectors {
                drop(c.join().unwrap());
            }
            assert_eq!(late.load(Ordering::SeqCst), 0, "{}", backend.name());
        }
    }
}

/// Queues `bytes` of pushes on `session`; returns the bytes on the wire.
fn queue_pushes(session: &SessionHandle<RawCodec>, bytes: usize) -> usize {
    let payload = Bytes::from(vec![5u8; 64 * 1024]);
    let mut wire = 0;
    while wire < bytes {
        session.notify("bulk", &payload).unwrap();
        wire += push_len("bulk", payload.len());
    }
    wire
}

fn big_queue() -> ConnOptions {
    ConnOptions::default()
        .send_queue_bytes(64 << 20)
        .send_queue_frames(1 << 16)
}

/// A close flushes what is queued until its deadline: a peer that reads
/// only after the close still gets all of it.
#[test]
fn a_close_flushes_all_it_can_within_the_deadline() {
    for backend in all_backends() {
        let conn = big_queue().close_flush_timeout(Duration::from_secs(30));
        let server = server(&backend, echo_router(), ServerOptions::default().conn(conn));
        let mut raw = connect(&backend, server.local_addr());
        eventually("session", || server.session_count() == 1);
        let session = server.sessions().pop().unwrap();
        // More than the kernel buffers hold while the peer does not read.
        let wire = queue_pushes(&session, 16 << 20);
        session.close();
        assert_eq!(
            read_all_slowly(&mut raw),
            wire,
            "{}: every queued byte, then the end",
            backend.name()
        );
        eventually("connection released", || server.io_stats().connections == 0);
    }
}

/// A close gives up on a peer that never reads: at the deadline the rest
/// of the queue is dropped and the connection released, instead of never.
#[test]
fn a_close_gives_up_on_a_peer_that_never_reads() {
    for backend in backends() {
        let conn = big_queue().close_flush_timeout(Duration::from_millis(200));
        let server = server(&backend, echo_router(), ServerOptions::default().conn(conn));
        let mut raw = connect(&backend, server.local_addr());
        eventually("session", || server.session_count() == 1);
        let session = server.sessions().pop().unwrap();
        let wire = queue_pushes(&session, 16 << 20);
        session.close();
        eventually("connection released", || server.io_stats().connections == 0);
        assert_eq!(server.session_count(), 0, "{}", backend.name());
        // The peer reads now: what the kernel had taken, then the end.
        let got = read_all_slowly(&mut raw);
        assert!(
            got < wire,
            "{}: {got} of {wire} bytes: the rest was dropped",
            backend.name()
        );
    }
}

/// A router whose "hold" handler (inline, on the connection's reader)
/// says it started and waits until released.
fn holding_router(started: mpsc::Sender<()>, release: mpsc::Receiver<()>) -> Router<RawCodec> {
    let (started, release) = (Mutex::new(started), Mutex::new(release));
    let mut router = echo_router();
    router
        .route("hold", move |_: &mut Context, _: Bytes| {
            let _ = started.lock().unwrap().send(());
            let _ = release
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(30));
            Ok(Bytes::new())
        })
        .unwrap();
    router
}

/// BEHAVIOURS 29, tokio tasks (tcp, ws): a send waiting for room in a
/// full queue wakes the writer, so it gets room as soon as the peer has
/// read, even while the connection's reader is busy in a handler (and
/// would write only after); and sends from other threads leave without
/// waiting for that handler.
#[test]
fn a_waiting_send_wakes_the_writer() {
    // The held handler keeps one worker; the writer needs another.
    let mut two_workers = TcpOptions::default();
    two_workers.workers = 2;
    let backends = [
        Backend::Tcp(two_workers),
        Backend::Ws(WsOptions::default().workers(2)),
    ];
    for backend in backends {
        for mode in [WriteMode::Async, WriteMode::Sync] {
            let name = backend.name();
            let (started_tx, started) = mpsc::channel();
            let (release, release_rx) = mpsc::channel();
            let conn = ConnOptions::default()
                .write_mode(mode)
                .send_queue_frames(4)
                .send_timeout(Duration::from_secs(20));
            let (server, last) = serve_keeping_last(
                &backend,
                holding_router(started_tx, release_rx),
                ServerOptions::default().conn(conn),
            );
            let mut raw = connect(&backend, server.local_addr());
            eventually("session", || last.lock().unwrap().is_some());
            let session = last.lock().unwrap().clone().unwrap();
            let pushes = 40;
            let expected = pushes * push_len("p", 100);
            raw.write_all(&request_frame("hold", 1, b"")).unwrap();
            let peer = std::thread::spawn(move || {
                let mut got = vec![0u8; expected];
                raw.read_exact(&mut got).map(|()| got.len())
            });
            started.recv_timeout(Duration::from_secs(10)).unwrap();
            let payload = Bytes::from(vec![1u8; 100]);
            for i in 0..pushes {
                let sent = session.notify("p", &payload);
                assert!(sent.is_ok(), "{name}, {mode:?}: push {i}: {sent:?}");
            }
            // All of them arrive while the handler still holds the reader.
            assert_eq!(peer.join().unwrap().unwrap(), expected, "{name}, {mode:?}");
            release.send(()).unwrap();
        }
    }
}

/// BEHAVIOURS 29: a handler running inline on its connection's reader
/// that fills that connection's queue gets `Overloaded` at once, whatever
/// the send timeout: only that reader would drain the queue, once the
/// handler returns.
#[test]
fn an_inline_handler_never_waits_on_its_own_queue() {
    for backend in all_backends() {
        flood_until_refused(&backend, false);
    }
}

/// Nor does a handler filling another connection's queue block the worker
/// it runs on for the send timeout: the writers it would wait for may need
/// that worker.
#[test]
fn a_handler_never_blocks_its_worker_on_another_connections_queue() {
    for backend in all_backends() {
        flood_until_refused(&backend, true);
    }
}

/// A `flood` handler pushes to the first session (whose peer never reads)
/// until a push fails, with a send timeout of an hour; the failure must be
/// `Overloaded` and come at once. The request comes from that session, or
/// from a second connection when `from_other`.
fn flood_until_refused(backend: &Backend, from_other: bool) {
    let (tx, refused) = mpsc::channel();
    let tx = Mutex::new(tx);
    let first = Last::default();
    let held = first.clone();
    let mut router = echo_router();
    router
        .route("flood", move |_: &mut Context, _: Bytes| {
            let session = held.lock().unwrap().clone().unwrap();
            let push = Bytes::from(vec![9u8; 1000]);
            let err = loop {
                if let Err(e) = session.notify("p", &push) {
                    break e;
                }
            };
            let _ = tx.lock().unwrap().send(err);
            Ok(Bytes::new())
        })
        .unwrap();
    let keep = first.clone();
    let conn = ConnOptions::default()
        .send_queue_bytes(64 * 1024)
        .send_timeout(Duration::from_secs(3600));
    let server = Server::builder(router)
        .backend(backend.clone())
        .options(ServerOptions::default().conn(conn))
        .on_session(move |session| {
            keep.lock().unwrap().get_or_insert_with(|| session.clone());
            Ok(())
        })
        .bind("127.0.0.1:0")
        .unwrap();
    let mut silent = connect_silent(backend, server.local_addr()); // never reads
    eventually("session", || first.lock().unwrap().is_some());
    let mut other = from_other.then(|| connect(backend, server.local_addr()));
    let asker = other.as_mut().unwrap_or(&mut silent);
    asker.write_all(&request_frame("flood", 1, b"")).unwrap();
    let err = refused
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{}: the handler still waits: {e}", backend.name()));
    assert!(
        matches!(err, Error::Overloaded(_)),
        "{}: {err}",
        backend.name()
    );
}
