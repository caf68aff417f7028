//! Bad peers close only their own connection, with a typed reason, while
//! a well-behaved client keeps getting answers: a length over the maximum,
//! a truncated frame followed by silence, garbage, and a flood of
//! connections over the accept limit.

mod util;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use util::*;
use walle_codec::RawCodec;
use walle_net::{Backend, ConnOptions, Server, ServerOptions};
use walle_packet::PacketError;
use walle_process::{CloseReason, Error};

/// The reason each session closed with, by the peer's address.
type Reasons = Arc<Mutex<HashMap<SocketAddr, CloseReason>>>;

/// A server recording why each of its sessions closed.
fn recording_server(backend: &Backend, options: ServerOptions) -> (Server<RawCodec>, Reasons) {
    let reasons = Reasons::default();
    let record = reasons.clone();
    let server = Server::builder(echo_router())
        .backend(backend.clone())
        .options(options)
        .on_session(move |session| {
            let (record, peer) = (record.clone(), session.peer());
            session.on_close(move |reason| {
                record.lock().unwrap().insert(peer, reason.clone());
            });
            Ok(())
        })
        .bind("127.0.0.1:0")
        .expect("bind");
    (server, reasons)
}

#[test]
fn bad_peers_close_alone_while_a_good_client_is_served() {
    for backend in all_backends() {
        let conn = ConnOptions::default().read_timeout(Duration::from_millis(300));
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
        eventually("good client served", || {
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

        // 4. A flood of connections over the accept limit.
        let mut flood: Vec<Raw> = (0..100)
            .filter_map(|_| try_connect(&backend, addr).ok())
            .collect();
        for stream in &mut flood {
            stream.set_nonblocking(true).unwrap();
        }
        // Until at least the 60 over the limit are refused (the others
        // close at the read timeout).
        let mut closed = vec![false; flood.len()];
        eventually("the refusals", || {
            assert!(
                server.session_count() <= 40,
                "{}: limit exceeded",
                backend.name()
            );
            for (stream, closed) in flood.iter_mut().zip(closed.iter_mut()) {
                *closed = *closed || seen_closed(stream);
            }
            closed.iter().filter(|&&c| c).count() >= 60
        });
        drop(flood);
        // Those over the limit had no session to give a reason to: the
        // server counts them. (Sessions closing at the read timeout free
        // places while the flood is accepted, so fewer than all 60 over
        // the limit may be refused on a slow machine.)
        eventually("the refusals counted", || {
            server.refused_connections() >= 50
        });

        let before = answered.load(Ordering::Relaxed);
        eventually("good client still served", || {
            answered.load(Ordering::Relaxed) > before + 10
        });
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
            matches!(silent, CloseReason::Silent(d) if d == Duration::from_millis(300)),
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
