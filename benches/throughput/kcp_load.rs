//! The load client over KCP: one mio thread driving a `kcp::Kcp` state
//! per connection over a connected UDP socket, with the fast settings of
//! the server's defaults (nodelay, a 10 ms interval, fast resend after 2,
//! no congestion window, 256-segment windows). It says hello (an empty
//! message, as the framework's client does), then writes the same
//! pre-encoded length-prefixed request frames as the TCP client, into the
//! KCP stream, and counts the answer frames in what KCP delivers.

use std::hash::{BuildHasher, RandomState};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kcp::Kcp;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use crate::load::{Framer, Wire, count_answers, request_frame};

/// How often every state is ticked (its resends, its window probes).
const TICK: Duration = Duration::from_millis(10);

/// A KCP state's output: one datagram per write. One the socket does not
/// take now is dropped, for KCP to send again.
struct Out(std::net::UdpSocket);

impl Write for Out {
    fn write(&mut self, datagram: &[u8]) -> io::Result<usize> {
        match self.0.send(datagram) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(datagram.len()),
            sent => sent,
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Conn {
    socket: UdpSocket,
    kcp: Kcp<Out>,
    framer: Framer,
}

/// One mio thread keeping `depth` requests in flight on every KCP
/// connection.
pub(crate) struct KcpLoad {
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    frame: Vec<u8>,
    datagram: Vec<u8>,
    message: Vec<u8>,
    answered: u64,
    epoch: Instant,
    next_tick: Instant,
}

impl KcpLoad {
    pub(crate) fn connect(addr: SocketAddr, conns: usize, depth: usize, size: usize) -> KcpLoad {
        let poll = Poll::new().expect("poll");
        let frame = request_frame(size);
        let epoch = Instant::now();
        let seed = RandomState::new();
        let conns = (0..conns)
            .map(|i| {
                let std = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
                std.connect(addr).expect("connect");
                std.set_nonblocking(true).expect("nonblocking");
                let out = Out(std.try_clone().expect("a second handle"));
                let mut socket = UdpSocket::from_std(std);
                poll.registry()
                    .register(&mut socket, Token(i), Interest::READABLE)
                    .expect("register");
                let conv = seed.hash_one(i) as u32;
                let mut kcp = Kcp::new(conv, out);
                kcp.set_nodelay(true, 10, 2, true);
                kcp.set_wndsize(256, 256);
                kcp.update(0).expect("update");
                kcp.send(&[]).expect("hello");
                for _ in 0..depth {
                    kcp.send(&frame).expect("request");
                }
                kcp.flush().expect("flush");
                Conn {
                    socket,
                    kcp,
                    framer: Framer::default(),
                }
            })
            .collect();
        KcpLoad {
            poll,
            events: Events::with_capacity(1024),
            conns,
            frame,
            datagram: vec![0; 64 * 1024],
            message: vec![0; 1024 * 1024],
            answered: 0,
            epoch,
            next_tick: epoch + TICK,
        }
    }

    fn now_ms(&self) -> u32 {
        self.epoch.elapsed().as_millis() as u32
    }

    /// One turn: the sockets that are ready, and the tick when it is due.
    fn turn(&mut self, timeout: Duration) {
        self.poll
            .poll(&mut self.events, Some(timeout.min(TICK)))
            .expect("poll");
        let ready: Vec<usize> = self.events.iter().map(|e| e.token().0).collect();
        for i in ready {
            self.pump(i);
        }
        if Instant::now() >= self.next_tick {
            let now = self.now_ms();
            for conn in &mut self.conns {
                conn.kcp.update(now).expect("update");
            }
            self.next_tick = Instant::now() + TICK;
        }
    }

    /// Runs for `window`; returns the answers that arrived in it.
    pub(crate) fn run_for(&mut self, window: Duration) -> u64 {
        let start = self.answered;
        let deadline = Instant::now() + window;
        while Instant::now() < deadline {
            self.turn(deadline.saturating_duration_since(Instant::now()));
        }
        self.answered - start
    }

    /// Runs until `n` more answers have arrived; returns the time taken.
    pub(crate) fn run(&mut self, n: u64) -> Duration {
        let target = self.answered + n;
        let started = Instant::now();
        let mut last = (self.answered, Instant::now());
        while self.answered < target {
            self.turn(TICK);
            if self.answered != last.0 {
                last = (self.answered, Instant::now());
            }
            assert!(
                last.1.elapsed() < Duration::from_secs(5),
                "kcp load stalled at {} of {target}",
                self.answered
            );
        }
        started.elapsed()
    }

    fn pump(&mut self, i: usize) {
        let now = self.now_ms();
        let KcpLoad {
            conns,
            frame,
            datagram,
            message,
            answered,
            ..
        } = self;
        let conn = &mut conns[i];
        loop {
            match conn.socket.recv(datagram) {
                Ok(n) => {
                    let _ = conn.kcp.input(&datagram[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("kcp load: recv: {e}"),
            }
        }
        while let Ok(n) = conn.kcp.recv(message) {
            let got = count_answers(&mut conn.framer, Wire::Tcp, &message[..n]);
            *answered += got as u64;
            for _ in 0..got {
                conn.kcp.send(frame).expect("request");
            }
        }
        conn.kcp.update(now).expect("update");
        conn.kcp.flush().expect("flush");
    }
}
