//! The table against bad input and floods, and datagrams kept to their
//! own peers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use walle_packet::FrameMode;

use super::{CLIENT, config, framing};
use crate::kcp::*;
use crate::options::KcpOptions;
use crate::outbound::Outbound;

/// A datagram of one PUSH segment.
fn push(conv: u32, sn: u32, data: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend(conv.to_le_bytes());
    s.extend([81, 0]);
    s.extend(256u16.to_le_bytes());
    s.extend([0; 4]);
    s.extend(sn.to_le_bytes());
    s.extend([0; 4]);
    s.extend((data.len() as u32).to_le_bytes());
    s.extend(data);
    s
}

#[test]
fn bad_datagrams_are_dropped_and_counted() {
    let now = Instant::now();
    let counters = Arc::new(Counters::default());
    let mut ep: KcpEndpoint<()> = KcpEndpoint::new(
        config(KcpOptions::default()),
        Role::Server,
        counters.clone(),
        now,
    );
    assert!(ep.handle(now, CLIENT, &[1; 23]).is_none());
    let mut unknown = push(1, 0, b"");
    unknown[4] = 99;
    assert!(ep.handle(now, CLIENT, &unknown).is_none());
    let mut long = push(1, 0, b"abc");
    long.pop();
    assert!(ep.handle(now, CLIENT, &long).is_none());
    assert!(ep.handle(now, CLIENT, &push(1, 9, b"mid-stream")).is_none());
    let stats = counters.snapshot();
    assert_eq!(
        (
            stats.short,
            stats.bad_command,
            stats.bad_length,
            stats.stray
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(ep.len(), 0);
    assert!(
        ep.handle(now, CLIENT, &push(1, 0, b"")).is_some(),
        "a stream's first segment opens"
    );
    assert_eq!(ep.len(), 1);
    // Timestamps, sequence numbers and unas half the u32 range away reach
    // the state's arithmetic, which wraps (never an overflow panic).
    for (cmd, ts, sn, una) in [
        (82u8, 0x8000_0000u32, 0x8000_0000u32, 0x8000_0000u32),
        (81, 0x8000_0001, 1, u32::MAX),
    ] {
        let mut d = push(1, sn, b"x");
        d[4] = cmd;
        d[8..12].copy_from_slice(&ts.to_le_bytes());
        d[16..20].copy_from_slice(&una.to_le_bytes());
        assert!(ep.handle(now, CLIENT, &d).is_some());
        while let Some(id) = ep.poll_touched() {
            ep.flush(now, id, None);
        }
    }
}

#[test]
fn fresh_convs_cannot_grow_the_table_without_bound() {
    let start = Instant::now();
    let counters = Arc::new(Counters::default());
    let kcp = KcpOptions::default()
        .max_sessions(50)
        .new_sessions_per_sec(20)
        .open_timeout(Duration::from_secs(2));
    let mut ep: KcpEndpoint<()> =
        KcpEndpoint::new(config(kcp), Role::Server, counters.clone(), start);
    let mut now = start;
    let mut timers = Vec::new();
    for conv in 1..=10_000u32 {
        if conv % 100 == 0 {
            now += Duration::from_millis(100);
            timers.retain(|&(at, id)| {
                if at <= now {
                    ep.handle_timeout(now, id);
                }
                at > now
            });
        }
        if let Some(id) = ep.handle(now, CLIENT, &push(conv, 0, b"")) {
            ep.accept(now, id, framing().decoder(), ());
        }
        while let Some(id) = ep.poll_touched() {
            ep.flush(now, id, None);
            if let Some(at) = ep.poll_timeout(now, id) {
                timers.push((at, id));
            }
        }
        while ep.poll_event().is_some() {}
        assert!(ep.len() <= 50, "the table is bounded");
    }
    let stats = counters.snapshot();
    // 10 s of fake time at 20 a second, from a full bucket.
    assert!(stats.opened <= 20 + 20 * 10 + 1, "{stats:?}");
    assert!(stats.over_rate + stats.over_limit > 9000, "{stats:?}");
    assert!(stats.over_rate > 0 && stats.over_limit > 0, "{stats:?}");
    assert!(
        stats.opened > 50,
        "unproven sessions leave and make room: {stats:?}"
    );
}

#[test]
fn each_peer_gets_its_own_datagrams() {
    const OTHER: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4001);
    let start = Instant::now();
    let counters = Arc::new(Counters::default());
    let mut ep: KcpEndpoint<()> =
        KcpEndpoint::new(config(KcpOptions::default()), Role::Server, counters, start);
    let a = ep.handle(start, CLIENT, &push(1, 0, b"")).unwrap();
    let b = ep.handle(start, OTHER, &push(2, 0, b"")).unwrap();
    for id in [a, b] {
        ep.accept(start, id, framing().decoder(), ());
    }
    // B has a segment in flight, never acknowledged.
    let mut out = Outbound::new(FrameMode::Stream);
    out.push_shared(Bytes::from_static(b"\0\0\0\x01x"));
    ep.flush(start, b, Some(&mut out));
    while ep.poll_touched().is_some() {}
    ep.poll_transmit(|_, _| Sent::Done);
    // Long after: a datagram of B's updates its state, which sends the
    // segment again; then one of A's, and only A is flushed.
    let later = start + Duration::from_secs(3);
    ep.handle(later, OTHER, &push(2, 0, b""));
    ep.handle(later, CLIENT, &push(1, 0, b""));
    ep.flush(later, a, None);
    let mut seen = Vec::new();
    ep.poll_transmit(|to, d| {
        let conv = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
        seen.push((to, conv));
        Sent::Done
    });
    assert!(
        seen.contains(&(OTHER, 2)),
        "B's segment sent again, to B: {seen:?}"
    );
    for (to, conv) in seen {
        assert_eq!(
            to,
            if conv == 1 { CLIENT } else { OTHER },
            "conv {conv} sent to {to}"
        );
    }
}
