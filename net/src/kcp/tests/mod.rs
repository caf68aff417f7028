//! Two endpoints, a client's and a server's, against a fake clock: the
//! datagrams of each are handed to the other (or lost, as a test says),
//! time moves in steps, deadlines fire when due. No socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use walle_packet::{ByteOrder, FrameMode, Framing};
use walle_process::CloseReason;

use super::*;
use crate::options::KcpOptions;
use crate::outbound::Outbound;

mod table;

const CLIENT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4000);
const SERVER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7000);
const STEP: Duration = Duration::from_millis(5);

fn framing() -> Framing {
    Framing::new(4, ByteOrder::Big).max_frame(1 << 20)
}

fn config(kcp: KcpOptions) -> Config {
    Config {
        kcp,
        silence: None,
        close_flush: Duration::from_secs(5),
    }
}

/// One side: its endpoint, its queue, what it got.
struct Side {
    ep: KcpEndpoint<()>,
    out: Outbound,
    frames: Vec<Bytes>,
    closed: Vec<CloseReason>,
    opened: Vec<SessionId>,
    timers: Vec<(Instant, SessionId)>,
    addr: SocketAddr,
}

impl Side {
    fn new(role: Role, config: Config, now: Instant, addr: SocketAddr) -> Side {
        Side {
            ep: KcpEndpoint::new(config, role, Arc::new(Counters::default()), now),
            out: Outbound::new(FrameMode::Stream),
            frames: Vec::new(),
            closed: Vec::new(),
            opened: Vec::new(),
            timers: Vec::new(),
            addr,
        }
    }

    /// Takes events (accepting every new session), flushes what was
    /// touched (and `queued`, whose queue may have grown), collects
    /// deadlines.
    fn settle(&mut self, now: Instant, queued: &[SessionId]) {
        for &id in queued.iter().chain(self.opened.clone().iter()) {
            self.ep.flush(now, id, Some(&mut self.out));
            if let Some(at) = self.ep.poll_timeout(now, id) {
                self.timers.push((at, id));
            }
        }
        loop {
            while let Some(event) = self.ep.poll_event() {
                match event {
                    Event::Opened(id, _) => {
                        self.opened.push(id);
                        self.ep.accept(now, id, framing().decoder(), ());
                    }
                    Event::Frame(_, frame) => self.frames.push(frame),
                    Event::Closed(reason, _) => self.closed.push(reason),
                }
            }
            let Some(id) = self.ep.poll_touched() else {
                break;
            };
            self.ep.flush(now, id, Some(&mut self.out));
            if let Some(at) = self.ep.poll_timeout(now, id) {
                self.timers.push((at, id));
            }
        }
    }

    fn fire(&mut self, now: Instant) {
        let due: Vec<SessionId> = self
            .timers
            .iter()
            .filter(|(at, _)| *at <= now)
            .map(|&(_, id)| id)
            .collect();
        self.timers.retain(|(at, _)| *at > now);
        for id in due {
            self.ep.handle_timeout(now, id);
        }
    }

    fn sent(&mut self) -> Vec<Vec<u8>> {
        let mut datagrams = Vec::new();
        let _ = self.ep.poll_transmit(|_, d| {
            datagrams.push(d.to_vec());
            Sent::Done
        });
        datagrams
    }

    /// Queues one length-prefixed frame of `body`.
    fn queue(&mut self, body: &[u8]) {
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        self.out.push_shared(Bytes::from(frame));
    }
}

struct Link {
    now: Instant,
    client: Side,
    server: Side,
    conv: SessionId,
    /// Lost datagrams: called with (to the server?, index of the datagram).
    lose: Box<dyn FnMut(bool, u64) -> bool>,
    count: u64,
}

impl Link {
    fn new(kcp: KcpOptions) -> Link {
        let now = Instant::now();
        let mut client = Side::new(Role::Client, config(kcp.clone()), now, CLIENT);
        let server = Side::new(Role::Server, config(kcp), now, SERVER);
        let conv = client.ep.connect(now, SERVER, 0x1234_5678);
        Link {
            now,
            client,
            server,
            conv,
            lose: Box::new(|_, _| false),
            count: 0,
        }
    }

    fn step(&mut self) {
        self.client.settle(self.now, &[self.conv]);
        self.server.settle(self.now, &[]);
        for d in self.client.sent() {
            self.count += 1;
            if !(self.lose)(true, self.count) {
                self.server.ep.handle(self.now, self.client.addr, &d);
            }
        }
        for d in self.server.sent() {
            self.count += 1;
            if !(self.lose)(false, self.count) {
                self.client.ep.handle(self.now, self.server.addr, &d);
            }
        }
        self.client.settle(self.now, &[]);
        self.server.settle(self.now, &[]);
        self.now += STEP;
        self.client.fire(self.now);
        self.server.fire(self.now);
    }

    /// Steps until `done`, for at most `limit` of fake time.
    fn until(&mut self, limit: Duration, mut done: impl FnMut(&Link) -> bool) {
        let end = self.now + limit;
        while !done(self) {
            assert!(self.now < end, "not done within {limit:?}");
            self.step();
        }
    }
}

#[test]
fn frames_span_messages_and_share_them() {
    let mut link = Link::new(KcpOptions::default());
    link.until(Duration::from_secs(1), |l| !l.client.opened.is_empty());
    assert_eq!(
        link.server.opened.len(),
        1,
        "the client's hello opens the server's session"
    );
    assert_eq!(
        link.client.opened,
        [link.conv],
        "the server's ack opens the client's"
    );
    let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    link.client.queue(&big);
    for i in 0..50u8 {
        link.client.queue(&[i; 3]); // many frames per segment
    }
    link.until(Duration::from_secs(5), |l| l.server.frames.len() == 51);
    assert_eq!(&link.server.frames[0][..], &big[..]);
    for (i, frame) in link.server.frames[1..].iter().enumerate() {
        assert_eq!(&frame[..], &[i as u8; 3]);
    }
    // And back.
    link.server.queue(b"answer");
    link.until(Duration::from_secs(1), |l| l.client.frames.len() == 1);
    assert_eq!(&link.client.frames[0][..], b"answer");
}

#[test]
fn frames_come_through_a_lossy_link_whole_and_in_order() {
    let mut link = Link::new(KcpOptions::default());
    // Every fourth datagram lost, both ways, and a few in a row now and then.
    link.lose = Box::new(|_, n| n % 4 == 0 || n % 97 < 3);
    for i in 0..200u32 {
        link.client.queue(&vec![i as u8; (i as usize * 331) % 5000]);
    }
    link.until(Duration::from_secs(60), |l| l.server.frames.len() == 200);
    for (i, frame) in link.server.frames.iter().enumerate() {
        assert_eq!(frame.len(), (i * 331) % 5000);
        assert!(frame.iter().all(|&b| b == i as u8));
    }
}

#[test]
fn a_close_sends_the_end_of_the_stream_after_what_is_queued() {
    let mut link = Link::new(KcpOptions::default());
    link.client.queue(b"last words");
    let conv = link.conv;
    let now = link.now;
    link.client.ep.close(now, conv, CloseReason::Local);
    link.until(Duration::from_secs(2), |l| !l.server.closed.is_empty());
    assert_eq!(link.server.frames, [Bytes::from_static(b"last words")]);
    assert!(matches!(link.server.closed[..], [CloseReason::PeerClosed]));
    link.until(Duration::from_secs(2), |l| l.client.ep.len() == 0);
    assert!(matches!(link.client.closed[..], [CloseReason::Local]));
    // The server's state lingers a while, then leaves.
    assert_eq!(link.server.ep.len(), 1);
    link.until(Duration::from_secs(5), |l| l.server.ep.len() == 0);
}

#[test]
fn a_link_that_stops_carrying_ends_in_a_dead_link() {
    let mut link = Link::new(KcpOptions::default().dead_link(5));
    link.until(Duration::from_secs(1), |l| !l.server.opened.is_empty());
    link.lose = Box::new(|_, _| true);
    link.client.queue(b"into the void");
    link.until(Duration::from_secs(60), |l| !l.client.closed.is_empty());
    assert!(matches!(link.client.closed[..], [CloseReason::DeadLink]));
    assert_eq!(link.client.ep.len(), 0, "a dead session does not linger");
}

#[test]
fn silence_and_an_unproven_session_end_with_silent() {
    let kcp = KcpOptions::default().open_timeout(Duration::from_secs(1));
    let mut link = Link::new(kcp.clone());
    link.until(Duration::from_secs(3), |l| !l.server.closed.is_empty());
    let open = Duration::from_secs(1);
    assert!(matches!(link.server.closed[..], [CloseReason::Silent(d)] if d == open));

    let mut link = Link::new(kcp);
    link.server.ep.config_mut().silence = Some(Duration::from_millis(300));
    link.client.queue(b"one frame proves it");
    link.until(Duration::from_secs(3), |l| !l.server.closed.is_empty());
    let quiet = Duration::from_millis(300);
    assert!(matches!(link.server.closed[..], [CloseReason::Silent(d)] if d == quiet));
}
