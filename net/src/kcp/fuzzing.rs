//! The datagram path of the kcp backend for a fuzzer (feature `fuzzing`):
//! not an API.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use walle_packet::{ByteOrder, FrameMode, Framing};

use super::{Config, Counters, Event, KcpEndpoint, Role, Sent};
use crate::options::KcpOptions;
use crate::outbound::Outbound;

/// Feeds a server endpoint and a client endpoint the datagrams `data`
/// describes, against a fake clock, accepting every session, answering
/// every frame, firing every deadline. Each datagram is a record: a byte
/// of flags (which endpoint, which peer, how much time passes, raw or
/// built), then either raw bytes (length-prefixed) or KCP segments built
/// from the fields that follow (conv, cmd, frg, wnd, ts, sn, una, data),
/// so that most of them pass the header check and reach the KCP states.
/// Panics if a bound is broken; must never panic otherwise.
pub fn datagrams(data: &[u8]) {
    let start = Instant::now();
    let kcp = KcpOptions::default()
        .max_sessions(8)
        .new_sessions_per_sec(4)
        .open_timeout(Duration::from_secs(1));
    let config = Config {
        kcp,
        silence: Some(Duration::from_secs(3)),
        close_flush: Duration::from_millis(500),
    };
    let mut server: KcpEndpoint<()> = KcpEndpoint::new(
        config.clone(),
        Role::Server,
        Arc::new(Counters::default()),
        start,
    );
    let mut client: KcpEndpoint<()> =
        KcpEndpoint::new(config, Role::Client, Arc::new(Counters::default()), start);
    let server_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7000);
    let dialled = client.connect(start, server_addr, 7);
    let framing = Framing::new(4, ByteOrder::Big).max_frame(64 * 1024);
    let mut out = Outbound::new(FrameMode::Stream);
    let mut now = start;
    let mut timers = Vec::new();
    let mut input = data;
    while let Some((&flags, rest)) = input.split_first() {
        input = rest;
        now += Duration::from_millis(u64::from(flags >> 4) * 37);
        let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4000 + u16::from(flags & 3));
        let datagram = if flags & 4 == 0 {
            take_raw(&mut input)
        } else {
            build(&mut input)
        };
        let to_client = flags & 8 != 0;
        let ep = if to_client { &mut client } else { &mut server };
        let from = if to_client { server_addr } else { peer };
        ep.handle(now, from, &datagram);
        timers.retain(|&(at, id, c)| {
            if at <= now && c == to_client {
                ep.handle_timeout(now, id);
            }
            !(at <= now && c == to_client)
        });
        settle(ep, now, &framing, &mut out, &mut timers, to_client);
        assert!(server.len() <= 8, "the session table is bounded");
    }
    let _ = dialled;
}

fn settle(
    ep: &mut KcpEndpoint<()>,
    now: Instant,
    framing: &Framing,
    out: &mut Outbound,
    timers: &mut Vec<(Instant, super::SessionId, bool)>,
    client: bool,
) {
    loop {
        while let Some(event) = ep.poll_event() {
            match event {
                Event::Opened(id, _) => ep.accept(now, id, framing.decoder(), ()),
                Event::Frame(_, body) => {
                    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
                    frame.extend_from_slice(&body);
                    out.push_shared(bytes::Bytes::from(frame));
                }
                Event::Closed(..) => {}
            }
        }
        let Some(id) = ep.poll_touched() else { break };
        ep.flush(now, id, Some(out));
        if let Some(at) = ep.poll_timeout(now, id) {
            timers.push((at, id, client));
        }
    }
    ep.poll_transmit(|_, _| Sent::Done);
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> &'a [u8] {
    let n = n.min(input.len());
    let (head, rest) = input.split_at(n);
    *input = rest;
    head
}

fn take_raw(input: &mut &[u8]) -> Vec<u8> {
    let n = take(input, 1).first().copied().unwrap_or(0);
    take(input, usize::from(n)).to_vec()
}

/// Segments from fields: a count, then per segment conv (1 byte, small
/// convs collide on purpose), cmd (81..=84 mostly), frg, wnd, ts, sn, una
/// (2 bytes each), and data (length-prefixed); the length field written
/// is off now and then.
fn build(input: &mut &[u8]) -> Vec<u8> {
    let count = take(input, 1).first().map_or(1, |c| 1 + c % 4);
    let mut datagram = Vec::new();
    for _ in 0..count {
        let f = take(input, 12);
        let byte = |i: usize| f.get(i).copied().unwrap_or(0);
        let wide = |i: usize| u32::from(byte(i)) | (u32::from(byte(i + 1)) << 8);
        let conv = u32::from(byte(0) % 4) + 7;
        let cmd = if byte(1) < 240 {
            81 + byte(1) % 4
        } else {
            byte(1)
        };
        let data = take_raw(input);
        let len = match byte(11) {
            255 => data.len() as u32 + 1,
            254 => u32::MAX,
            _ => data.len() as u32,
        };
        datagram.extend(conv.to_le_bytes());
        datagram.extend([cmd, byte(2) % 130]);
        datagram.extend((wide(3) as u16).to_le_bytes());
        // Timestamps anywhere in the u32 range: the state's arithmetic on
        // them wraps.
        let ts = match byte(2) & 0x80 {
            0 => wide(5),
            _ => wide(5) << 16,
        };
        datagram.extend(ts.to_le_bytes());
        datagram.extend((wide(7) % 64).to_le_bytes());
        datagram.extend((wide(9) % 64).to_le_bytes());
        datagram.extend(len.to_le_bytes());
        datagram.extend(&data);
    }
    datagram
}

#[cfg(test)]
mod tests {
    /// A few inputs, built and raw, run clean (the fuzz target runs many).
    #[test]
    fn the_fuzz_entry_runs() {
        super::datagrams(&[]);
        super::datagrams(&[4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]);
        super::datagrams(&[0, 30, 9, 9, 9]);
        // An ack and a push stamped half the clock's range away.
        super::datagrams(&[4, 1, 0, 1, 0x80, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0]);
        super::datagrams(&[4, 1, 0, 0, 0x80, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0]);
        let seq: Vec<u8> = (0..2000u32).map(|i| (i * 131 % 251) as u8).collect();
        super::datagrams(&seq);
    }
}
