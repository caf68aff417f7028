//! How connections end: the order a stop follows, the bounded flush of
//! what a close leaves queued, and connections racing a stop — on both
//! backends.

mod util;

use std::io::Read;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use util::*;
use walle_codec::RawCodec;
use walle_net::{ConnOptions, Server, ServerOptions, SessionHandle};

/// Bytes of one `walle` push to `route` with a payload of `len` bytes.
fn push_len(route: &str, len: usize) -> usize {
    4 + 16 + route.len() + len
}

/// Reads until the end of the stream (EOF or reset), in small reads.
fn read_all_slowly(stream: &mut TcpStream) -> usize {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
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
    for backend in backends() {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let server = Server::builder(echo_router())
            .backend(backend.clone())
            .on_session(move |session| {
                let flag = flag.clone();
                session.on_close(move || {
                    // A slow close callback (saving the user's state, say).
                    std::thread::sleep(Duration::from_millis(150));
                    flag.store(true, Ordering::SeqCst);
                });
                Ok(())
            })
            .bind("127.0.0.1:0")
            .unwrap();
        let mut raw = TcpStream::connect(server.local_addr()).unwrap();
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
    for backend in backends() {
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
                    let racing = racing.clone();
                    std::thread::spawn(move || {
                        let mut held = std::collections::VecDeque::new();
                        while racing.load(Ordering::SeqCst) {
                            match TcpStream::connect(addr) {
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
                TcpStream::connect(addr).is_err(),
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
    for backend in backends() {
        let conn = big_queue().close_flush_timeout(Duration::from_secs(30));
        let server = server(&backend, echo_router(), ServerOptions::default().conn(conn));
        let mut raw = TcpStream::connect(server.local_addr()).unwrap();
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
        let mut raw = TcpStream::connect(server.local_addr()).unwrap();
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
