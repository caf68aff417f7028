//! Bad peers close only their own connection, with a logged reason, while
//! a well-behaved client keeps getting answers: a length over the maximum,
//! a truncated frame followed by silence, garbage, and a flood of
//! connections over the accept limit.

mod util;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use util::*;
use walle_net::{ConnOptions, ServerOptions};

/// Captures log lines, to check each bad connection left a reason.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> Logs {
    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .init();
        logs
    })
    .clone()
}

#[test]
fn bad_peers_close_alone_while_a_good_client_is_served() {
    let logs = logs();
    for backend in backends() {
        let conn = ConnOptions::default().read_timeout(Duration::from_millis(300));
        let options = ServerOptions::default().max_sessions(40).conn(conn);
        let server = server(&backend, echo_router(), options);
        let addr = server.local_addr();

        // A well-behaved client, asking all along.
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let good = {
            let (stop, answered) = (stop.clone(), answered.clone());
            std::thread::spawn(move || {
                let mut stream = connect(addr);
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
        let mut oversized = connect(addr);
        oversized.write_all(&[0x7f, 0xff, 0xff, 0xff]).unwrap();
        // 2. A truncated frame, then silence.
        let mut truncated = connect(addr);
        truncated
            .write_all(&request_frame("echo", 1, &[0u8; 100])[..50])
            .unwrap();
        // 3. Garbage: a sane length, then bytes no format accepts.
        let mut garbage = connect(addr);
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
        let mut flood: Vec<TcpStream> = (0..100)
            .filter_map(|_| TcpStream::connect(addr).ok())
            .collect();
        for stream in &flood {
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

        let before = answered.load(Ordering::Relaxed);
        eventually("good client still served", || {
            answered.load(Ordering::Relaxed) > before + 10
        });
        stop.store(true, Ordering::Relaxed);
        good.join().expect("the good client never failed");

        let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
        for reason in [
            "bad input",
            "exceeds the maximum",
            "silent too long",
            "accept limit reached",
        ] {
            assert!(
                text.contains(reason),
                "{}: no log line with {reason:?}:\n{text}",
                backend.name()
            );
        }
        logs.0.lock().unwrap().clear();
    }
}
