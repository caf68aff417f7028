//! The load client: one mio thread keeping requests in flight on every
//! connection, writing pre-encoded `walle` request frames and counting
//! the answer frames that come back. Over TCP the frames are
//! length-prefixed; over WebSocket ([`Wire::Ws`]) each frame body is one
//! masked binary message, after an upgrade made by hand.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// How answers are framed on the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    /// A 4-byte big-endian length, then the body.
    Tcp,
    /// WebSocket messages, one frame body each.
    Ws,
}

/// Where the reading of a connection's answers stands.
#[derive(Default)]
pub(crate) struct Framer {
    /// Bytes still to skip of the message being read; `None` between them.
    body_left: Option<usize>,
    /// Whether the message being skipped counts as an answer.
    counts: bool,
    header: [u8; 14],
    header_len: usize,
}

struct Conn {
    stream: TcpStream,
    out: Vec<u8>,
    written: usize,
    framer: Framer,
}

/// One mio thread keeping `depth` requests in flight on every connection.
pub(crate) struct Load {
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    frame: Vec<u8>,
    buf: Vec<u8>,
    answered: u64,
    wire: Wire,
}

/// A masked binary WebSocket message holding `body` (the mask is fixed:
/// the bench needs a valid client frame, not an unpredictable one).
fn ws_message(body: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![0x82];
    match body.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(body.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// The `walle` request frame of an echo of `size` bytes, length prefix
/// and all.
pub(crate) fn request_frame(size: usize) -> Vec<u8> {
    let mut frame = Vec::new();
    walle::packet::Protocol::new(walle::packet::WalleFormat::new())
        .encode(
            &walle::packet::Head::request(walle::packet::Route::Uri("echo"), 1),
            &vec![0x5a; size],
            &mut frame,
        )
        .expect("frame");
    frame
}

/// The client's half of the upgrade on `/`, blocking.
fn upgrade(stream: &mut std::net::TcpStream, addr: SocketAddr) {
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .expect("upgrade request");
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("upgrade response");
        response.push(byte[0]);
    }
    assert!(
        response.starts_with(b"HTTP/1.1 101"),
        "upgrade refused: {}",
        String::from_utf8_lossy(&response)
    );
}

impl Load {
    pub(crate) fn connect(
        addr: SocketAddr,
        wire: Wire,
        conns: usize,
        depth: usize,
        size: usize,
    ) -> Load {
        let poll = Poll::new().expect("poll");
        let mut frame = request_frame(size);
        if wire == Wire::Ws {
            frame = ws_message(&frame[4..]);
        }
        let conns = (0..conns)
            .map(|i| {
                let mut std = std::net::TcpStream::connect(addr).expect("connect");
                if wire == Wire::Ws {
                    upgrade(&mut std, addr);
                }
                std.set_nodelay(true).expect("nodelay");
                std.set_nonblocking(true).expect("nonblocking");
                let mut stream = TcpStream::from_std(std);
                poll.registry()
                    .register(
                        &mut stream,
                        Token(i),
                        Interest::READABLE | Interest::WRITABLE,
                    )
                    .expect("register");
                let out = frame.repeat(depth);
                Conn {
                    stream,
                    out,
                    written: 0,
                    framer: Framer::default(),
                }
            })
            .collect();
        Load {
            poll,
            events: Events::with_capacity(1024),
            conns,
            frame,
            buf: vec![0; 256 * 1024],
            answered: 0,
            wire,
        }
    }

    /// Runs for `window`; returns the answers that arrived in it.
    pub(crate) fn run_for(&mut self, window: Duration) -> u64 {
        let start = self.answered;
        let deadline = Instant::now() + window;
        for i in 0..self.conns.len() {
            self.pump(i);
        }
        while Instant::now() < deadline {
            self.poll
                .poll(&mut self.events, Some(Duration::from_millis(50)))
                .expect("poll");
            let ready: Vec<usize> = self.events.iter().map(|e| e.token().0).collect();
            for i in ready {
                self.pump(i);
            }
        }
        self.answered - start
    }

    /// Runs until `n` more answers have arrived; returns the time taken.
    pub(crate) fn run(&mut self, n: u64) -> Duration {
        let target = self.answered + n;
        let started = Instant::now();
        for i in 0..self.conns.len() {
            self.pump(i);
        }
        while self.answered < target {
            self.poll
                .poll(&mut self.events, Some(Duration::from_secs(5)))
                .expect("poll");
            assert!(
                !self.events.is_empty(),
                "load stalled at {} of {target}",
                self.answered
            );
            let ready: Vec<usize> = self.events.iter().map(|e| e.token().0).collect();
            for i in ready {
                self.pump(i);
            }
        }
        started.elapsed()
    }

    fn pump(&mut self, i: usize) {
        let Load {
            conns,
            frame,
            buf,
            answered,
            wire,
            ..
        } = self;
        let conn = &mut conns[i];
        loop {
            match conn.stream.read(buf) {
                Ok(0) => panic!("server closed a connection"),
                Ok(n) => {
                    let got = count_answers(&mut conn.framer, *wire, &buf[..n]);
                    *answered += got as u64;
                    for _ in 0..got {
                        conn.out.extend_from_slice(frame);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("read: {e}"),
            }
        }
        while conn.written < conn.out.len() {
            match conn.stream.write(&conn.out[conn.written..]) {
                Ok(n) => conn.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
        }
        if conn.written == conn.out.len() {
            conn.out.clear();
            conn.written = 0;
        }
    }
}

/// The header's length once its first bytes are in, if they say.
fn header_len(wire: Wire, header: &[u8]) -> Option<usize> {
    match wire {
        Wire::Tcp => Some(4),
        Wire::Ws if header.len() < 2 => None,
        Wire::Ws => {
            let ext = match header[1] & 0x7f {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            let mask = if header[1] & 0x80 != 0 { 4 } else { 0 };
            Some(2 + ext + mask)
        }
    }
}

/// A whole header's body length, and whether the message is an answer
/// (over ws, control messages such as pings are not).
fn body_of(wire: Wire, header: &[u8]) -> (usize, bool) {
    match wire {
        Wire::Tcp => (
            u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize,
            true,
        ),
        Wire::Ws => {
            let len = match header[1] & 0x7f {
                126 => usize::from(u16::from_be_bytes([header[2], header[3]])),
                127 => {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&header[2..10]);
                    u64::from_be_bytes(n) as usize
                }
                n => usize::from(n),
            };
            (len, header[0] & 0x0f == 0x2)
        }
    }
}

/// Counts the whole answer messages completed by `data`.
pub(crate) fn count_answers(conn: &mut Framer, wire: Wire, mut data: &[u8]) -> usize {
    let mut complete = 0;
    while !data.is_empty() {
        match conn.body_left {
            Some(left) => {
                let take = left.min(data.len());
                data = &data[take..];
                if take == left {
                    conn.body_left = None;
                    complete += usize::from(conn.counts);
                } else {
                    conn.body_left = Some(left - take);
                }
            }
            None => {
                // One byte at a time until the header's length is known,
                // then the rest of it.
                let need = header_len(wire, &conn.header[..conn.header_len])
                    .unwrap_or(conn.header_len + 1);
                let take = (need - conn.header_len).min(data.len());
                conn.header[conn.header_len..conn.header_len + take].copy_from_slice(&data[..take]);
                conn.header_len += take;
                data = &data[take..];
                if header_len(wire, &conn.header[..conn.header_len]) == Some(conn.header_len) {
                    let (len, counts) = body_of(wire, &conn.header[..conn.header_len]);
                    conn.header_len = 0;
                    conn.counts = counts;
                    if len == 0 {
                        complete += usize::from(counts);
                    } else {
                        conn.body_left = Some(len);
                    }
                }
            }
        }
    }
    complete
}
