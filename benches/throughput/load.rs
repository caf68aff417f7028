//! The load client: one mio thread keeping requests in flight on every
//! connection, writing pre-encoded `walle` request frames and counting
//! the answer frames that come back.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

struct Conn {
    stream: TcpStream,
    out: Vec<u8>,
    written: usize,
    /// Bytes still to skip of the answer being read; `None` between answers.
    body_left: Option<usize>,
    header: [u8; 4],
    header_len: usize,
}

/// One mio thread keeping `depth` requests in flight on every connection.
pub(crate) struct Load {
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    frame: Vec<u8>,
    buf: Vec<u8>,
    answered: u64,
}

impl Load {
    pub(crate) fn connect(addr: SocketAddr, conns: usize, depth: usize, size: usize) -> Load {
        let poll = Poll::new().expect("poll");
        let mut frame = Vec::new();
        walle::packet::Protocol::new(walle::packet::WalleFormat::new())
            .encode(
                &walle::packet::Head::request(walle::packet::Route::Uri("echo"), 1),
                &vec![0x5a; size],
                &mut frame,
            )
            .expect("frame");
        let conns = (0..conns)
            .map(|i| {
                let std = std::net::TcpStream::connect(addr).expect("connect");
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
                    body_left: None,
                    header: [0; 4],
                    header_len: 0,
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
            ..
        } = self;
        let conn = &mut conns[i];
        loop {
            match conn.stream.read(buf) {
                Ok(0) => panic!("server closed a connection"),
                Ok(n) => {
                    let got = count_answers(conn, &buf[..n]);
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

/// Counts the whole answer frames completed by `data`.
fn count_answers(conn: &mut Conn, mut data: &[u8]) -> usize {
    let mut complete = 0;
    while !data.is_empty() {
        match conn.body_left {
            Some(left) => {
                let take = left.min(data.len());
                data = &data[take..];
                if take == left {
                    conn.body_left = None;
                    complete += 1;
                } else {
                    conn.body_left = Some(left - take);
                }
            }
            None => {
                let take = (4 - conn.header_len).min(data.len());
                conn.header[conn.header_len..conn.header_len + take].copy_from_slice(&data[..take]);
                conn.header_len += take;
                data = &data[take..];
                if conn.header_len == 4 {
                    conn.header_len = 0;
                    let len = u32::from_be_bytes(conn.header) as usize;
                    if len == 0 {
                        complete += 1;
                    } else {
                        conn.body_left = Some(len);
                    }
                }
            }
        }
    }
    complete
}
