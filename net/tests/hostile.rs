//! Bad peers close only their own connection, with a typed reason, while
//! a well-behaved client keeps getting answers: a length over the maximum,
//! a truncated frame followed by silence, garbage, and a flood of
//! connections over the accept limit.

mod util;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use util::*;
use walle_net::{ConnOptions, ServerOptions};
use walle_packet::PacketError;
use walle_process::{CloseReason, Error};

/// Long enough that a flood on a busy machine fills the places left
/// before the first of them times out.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

#[test]
fn bad_peers_close_alone_while_a_good_client_is_served() {
    for backend in all_backends() {
        let conn = ConnOptions::default().read_timeout(READ_TIMEOUT);
        let options = ServerOptions::default().max_sessions(40).conn(conn);
        let (server, reasons) = recording_server(&backend, options);
        let addr = server.local_addr();

        // A well-behaved client, asking all along.
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let good = {
            let (stop, answered) = (stop.clone(), answered.clone());
            let backend = backend.clone();
            std::thread::spawn(move || {
                let mut stream = connect(&backend, addr);
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    seq += 1;
                    let body = raw_round_trip(&mut stream, seq, b"ping");
                    assert_eq!(&body[body.len() - 4..], b"ping");
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        eventually(&format!("{}: good client served", backend.name()), || {
            answered.load(Ordering::Relaxed) > 10
        });

        // 1. A length over the maximum.
        let mut oversized = connect(&backend, addr);
        oversized.write_all(&[0x7f, 0xff, 0xff, 0xff]).unwrap();
        // 2. A truncated frame, then silence.
        let mut truncated = connect(&backend, addr);
        truncated
            .write_all(&request_frame("echo", 1, &[0u8; 100])[..50])
            .unwrap();
        // 3. Garbage: a sane length, then bytes no format accepts.
        let mut garbage = connect(&backend, addr);
        garbage
            .write_all(&[
                0, 0, 0, 20, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
            ])
            .unwrap();
        for (name, stream) in [
            ("oversized", &mut oversized),
            ("truncated", &mut truncated),
            ("garbage", &mut garbage),
        ] {
            assert!(
                closed_by_server(stream),
                "{}: {name} connection not closed",
                backend.name()
            );
        }

        // 4. A flood of connections over the accept limit. Each flood
        // connection either gets one of the places left (and, holding it
        // silently, closes at the read timeout) or is refused and counted;
        // the limit holds throughout. How many are refused depends on how
        // fast the flood connects against the read timeout freeing places,
        // so the test counts what happened to each instead of assuming a
        // number.
        let mut flood: Vec<Raw> = (0..100)
            .filter_map(|_| try_connect(&backend, addr).ok())
            .collect();
        let flood_peers: Vec<SocketAddr> = flood.iter().map(|s| s.local_addr().unwrap()).collect();
        for stream in &mut flood {
            stream.set_nonblocking(true).unwrap();
        }
        let mut closed = vec![false; flood.len()];
        eventually(
            &format!("{}: every flood connection closed", backend.name()),
            || {
                assert!(
                    server.session_count() <= 40,
                    "{}: limit exceeded",
                    backend.name()
                );
                for (stream, closed) in flood.iter_mut().zip(closed.iter_mut()) {
                    *closed = *closed || seen_closed(stream);
                }
                closed.iter().all(|&c| c)
            },
        );
        drop(flood);
        // Those refused had no session to give a reason to: the server
        // counts them; every other one closed with a reason.
        let with_session = || {
            let reasons = reasons.lock().unwrap();
            flood_peers
                .iter()
                .filter(|p| reasons.contains_key(p))
                .count() as u64
        };
        eventually(
            &format!(
                "{}: each flood connection refused or closed",
                backend.name()
            ),
            || server.refused_connections() + with_session() == flood_peers.len() as u64,
        );
        assert!(
            server.refused_connections() >= 1,
            "{}: a flood of {} over a limit of 40 refused none",
            backend.name(),
            flood_peers.len()
        );

        let before = answered.load(Ordering::Relaxed);
        eventually(
            &format!("{}: good client still served", backend.name()),
            || answered.load(Ordering::Relaxed) > before + 10,
        );
        stop.store(true, Ordering::Relaxed);
        good.join().expect("the good client never failed");

        let reason = |stream: &Raw| {
            let peer = stream.local_addr().unwrap();
            let reasons = reasons.lock().unwrap();
            reasons.get(&peer).cloned().unwrap_or_else(|| {
                panic!(
                    "{}: no close reason for {peer}: {reasons:?}",
                    backend.name()
                )
            })
        };
        let name = backend.name();
        match reason(&oversized) {
            CloseReason::Malformed(e) => assert!(
                matches!(*e, Error::Packet(PacketError::TooLarge { .. })),
                "{name}: oversized: {e:?}"
            ),
            other => panic!("{name}: oversized closed as {other:?}"),
        }
        let silent = reason(&truncated);
        assert!(
            matches!(silent, CloseReason::Silent(d) if d == READ_TIMEOUT),
            "{name}: truncated closed as {silent:?}"
        );
        match reason(&garbage) {
            CloseReason::Malformed(e) => assert!(
                matches!(*e, Error::Packet(PacketError::Malformed(_))),
                "{name}: garbage: {e:?}"
            ),
            other => panic!("{name}: garbage closed as {other:?}"),
        }
    }
}
