//! kcp under a flood: 10,000 garbage datagrams (short, unknown commands,
//! lengths past the end) and 10,000 datagrams each opening a fresh conv,
//! from several sockets, while a well-behaved client keeps calling. The
//! client never fails a call, the server's session table stays within
//! its bound, the drops are counted, and the unproven sessions leave.

mod util;

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use util::*;
use walle_net::{Backend, ClientOptions, KcpOptions, ServerOptions};

/// A datagram of one KCP segment.
fn segment(conv: u32, cmd: u8, sn: u32, data: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(24 + data.len());
    s.extend(conv.to_le_bytes());
    s.extend([cmd, 0]);
    s.extend(128u16.to_le_bytes());
    s.extend(0u32.to_le_bytes());
    s.extend(sn.to_le_bytes());
    s.extend(0u32.to_le_bytes());
    s.extend((data.len() as u32).to_le_bytes());
    s.extend(data);
    s
}

/// Garbage datagram `i`: too short, an unknown command, a length past the
/// end, in turn.
fn garbage(i: u32) -> Vec<u8> {
    match i % 3 {
        0 => vec![0xab; (i % 24) as usize],
        1 => segment(i, 0x20 + (i % 40) as u8, 0, b"what"),
        _ => {
            let mut s = segment(i, 81, 0, b"cut short");
            s.truncate(s.len() - 3);
            s
        }
    }
}

#[test]
fn a_flood_leaves_a_good_client_alone_and_the_table_bounded() {
    let kcp = KcpOptions::default()
        .max_sessions(256)
        .new_sessions_per_sec(200)
        .open_timeout(Duration::from_secs(1));
    let backend = Backend::kcp(kcp);
    let server = server(&backend, echo_router(), ServerOptions::default());
    let addr = server.local_addr();
    let client = client(&backend, addr, ClientOptions::default());

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let good = {
        let (client, stop, answered) = (client.clone(), stop.clone(), answered.clone());
        std::thread::spawn(move || {
            let rt = runtime();
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let msg = Bytes::from(i.to_be_bytes().to_vec());
                let answer: Bytes = rt.block_on(client.call("echo", &msg)).expect("answered");
                assert_eq!(answer, msg);
                answered.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    eventually("the good client served", || {
        answered.load(Ordering::Relaxed) > 10
    });

    let floods: Vec<_> = (0..4u32)
        .map(|t| {
            std::thread::spawn(move || {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                for i in t * 2500..(t + 1) * 2500 {
                    let _ = socket.send_to(&garbage(i), addr);
                    let _ = socket.send_to(&segment(0x7000_0000 + i, 81, 0, b""), addr);
                    if i % 64 == 0 {
                        std::thread::sleep(Duration::from_millis(1)); // a socket buffer's worth at a time
                    }
                }
            })
        })
        .collect();
    for f in floods {
        f.join().unwrap();
    }
    let stats = server.io_stats().kcp;
    assert!(stats.sessions <= 256, "{stats:?}");
    let before = answered.load(Ordering::Relaxed);
    eventually("the good client still served", || {
        answered.load(Ordering::Relaxed) > before + 10
    });
    // Every garbage datagram that arrived was dropped and counted (a
    // loaded machine's socket buffer may lose a few before that).
    eventually("the drops counted", || {
        let s = server.io_stats().kcp;
        s.short + s.bad_command + s.bad_length > 9_000 && s.over_limit + s.over_rate > 0
    });
    // The fresh convs proved nothing: they leave after the open timeout.
    eventually("the unproven sessions gone", || {
        server.io_stats().kcp.sessions <= 2
    });
    assert_eq!(
        server.session_count(),
        1,
        "the good client's session is left"
    );
    stop.store(true, Ordering::Relaxed);
    good.join().expect("the good client never failed");
    assert!(client.is_connected());
    eprintln!("flood: {:?}", server.io_stats().kcp);
}
