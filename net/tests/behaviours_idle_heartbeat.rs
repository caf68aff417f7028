//! BEHAVIOURS 32-33 over loopback sockets, on every backend: the read
//! timeout closes an idle connection, and heartbeats (server tick or echo)
//! keep a live one and drop a silent one.

mod util;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use util::*;
use walle_codec::RawCodec;
use walle_net::{ClientOptions, ConnOptions, HeartbeatMode, ServerOptions};
use walle_packet::{DueFormat, Protocol};
use walle_process::Router;

/// BEHAVIOURS 32: a connection silent for the read timeout is closed; one
/// that keeps talking stays.
#[test]
fn b32_idle_connection_is_closed() {
    for backend in all_backends() {
        let limit = Duration::from_millis(400);
        let conn = ConnOptions::default().read_timeout(limit);
        let server = server(&backend, echo_router(), ServerOptions::default().conn(conn));
        let mut talker = connect(&backend, server.local_addr());
        // Before the idle peer connects: a kcp or ws server starts its
        // silence timer before the peer hears its answer to the hello or
        // the upgrade.
        let started = Instant::now();
        let mut idle = connect(&backend, server.local_addr());
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
    for backend in all_backends() {
        let every = Duration::from_millis(100);
        // A `due` server whose connections beat every `every`, in `mode`.
        let serve = |mode| {
            let conn = ConnOptions::default().heartbeat(every, mode);
            walle_net::Server::builder(echo_router())
                .backend(backend.clone())
                .protocol(due())
                .options(ServerOptions::default().conn(conn))
                .bind("127.0.0.1:0")
                .unwrap()
        };
        // Server tick: a silent raw peer gets heartbeats, then is dropped.
        let server = serve(HeartbeatMode::ServerTick);
        let mut raw = connect(&backend, server.local_addr());
        let mut beat = [0u8; 5];
        raw.read_exact(&mut beat).unwrap();
        assert_eq!(beat, [0, 0, 0, 1, 0x80], "{}", backend.name());
        assert!(
            closed_by_server(&mut raw),
            "silent peer dropped after 3 missed intervals"
        );

        // Echo: the server answers each heartbeat the client sends.
        let server = serve(HeartbeatMode::Echo);
        let mut raw = connect(&backend, server.local_addr());
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
