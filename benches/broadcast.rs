//! Broadcast at scale: one 64 B push to every one of 10,000 sessions of an
//! evloop server, encoded once (`Server::broadcast`), against the same
//! pre-encoded frame written to the same sockets by hand (one `write` per
//! socket, in a loop), in interleaved rounds of one run.
//!
//! The server runs as a child process (this bench binary, re-run with
//! `WALLE_BENCH_SERVER`), so that it and the clients each stay under the
//! file descriptor limit. The hand-written writes go to the session
//! sockets themselves: the child finds them among its open descriptors
//! (their local port is the server's, and they have a peer). A round's
//! time runs from the parent's command to the last byte of the last
//! client's copy, read by one mio thread in the parent; both ways pay
//! that reading alike. The child also times its own side: the
//! `broadcast` call (which queues the frame on every session and wakes
//! the loops, which write it meanwhile) and the hand-written loop of
//! writes. `WALLE_BROADCAST_CONNS` sets the count.
//!
//! `cargo bench --bench broadcast`
#![allow(clippy::print_stdout)] // a bench report
#![allow(missing_docs)]
#![allow(unsafe_code)] // borrowing the session sockets by descriptor

#[allow(dead_code)] // the throughput bench's servers
#[path = "throughput/servers.rs"]
mod servers;

use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use servers::ServerProcess;
use walle::net::{Backend, Server};
use walle::packet::{Head, Protocol, Route, WalleFormat};
use walle::prelude::*;

const ROUNDS: usize = 15;
const SIZE: usize = 64;

/// The child: an evloop server, broadcasting or writing by hand on each
/// command line from the parent (`framework N`, `hand N`, N the sessions
/// to wait for first).
fn child() -> io::Result<()> {
    let server = Server::builder(Router::new(RawCodec))
        .backend(Backend::evloop())
        .bind("127.0.0.1:0")
        .map_err(io::Error::other)?;
    let local = server.local_addr();
    println!("ADDR {local}");
    io::stdout().flush()?;
    let payload = Bytes::from(vec![0x5a; SIZE]);
    let mut sockets: Vec<std::mem::ManuallyDrop<std::net::TcpStream>> = Vec::new();
    let mut up = 0;
    let (mut calls, mut loops) = (Vec::new(), Vec::new());
    for line in io::stdin().lock().lines().map_while(Result::ok) {
        let (what, n) = line.split_once(' ').unwrap_or((&line, "0"));
        let n: usize = if what == "report" {
            0
        } else {
            n.parse().unwrap_or(0)
        };
        // Once, before the first round: every session is up.
        while up < n {
            up = server.sessions().len();
            if up < n {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let started = Instant::now();
        match what {
            "framework" => {
                let sent = server
                    .broadcast("tick", &payload, |_| true)
                    .map_err(io::Error::other)?;
                calls.push(started.elapsed().as_secs_f64() * 1e3);
                assert_eq!(sent, n, "every session takes the push");
            }
            "hand" => {
                if sockets.len() != n {
                    sockets = session_sockets(local)?;
                    assert_eq!(sockets.len(), n, "the session sockets");
                }
                let started = Instant::now(); // the search is not the writes'
                let frame = server
                    .encode_push("tick", &payload)
                    .map_err(io::Error::other)?;
                for socket in &sockets {
                    // Loopback with room in every buffer: one write each.
                    let written = (&**socket).write(&frame)?;
                    assert_eq!(written, frame.len(), "a short write");
                }
                loops.push(started.elapsed().as_secs_f64() * 1e3);
            }
            "report" => {
                // The medians, to the file the parent names (written whole,
                // then renamed into place), but for the first (warming)
                // round of each.
                let path = n_or_path(&line);
                let part = format!("{path}.part");
                std::fs::write(
                    &part,
                    format!("{} {}", median(&calls[1..]), median(&loops[1..])),
                )?;
                std::fs::rename(part, path)?;
            }
            _ => {}
        }
    }
    std::process::exit(0);
}

/// The argument of a command line.
fn n_or_path(line: &str) -> &str {
    line.split_once(' ').map_or("", |(_, arg)| arg)
}

/// This process's sockets connected to the server at `local`, borrowed
/// (never closed here: the server owns them).
fn session_sockets(
    local: SocketAddr,
) -> io::Result<Vec<std::mem::ManuallyDrop<std::net::TcpStream>>> {
    use std::os::fd::FromRawFd;
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Ok(fd) = entry?.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // SAFETY: the descriptor is open (listed just now, and nothing in
        // this process closes sockets meanwhile: the clients are idle);
        // `ManuallyDrop` keeps it from being closed here. On a descriptor
        // that is not a socket, the address calls fail (ENOTSOCK).
        let socket = std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(fd) });
        let ours = socket.local_addr().is_ok_and(|a| a == local) && socket.peer_addr().is_ok();
        if ours {
            found.push(socket);
        }
    }
    Ok(found)
}

/// The parent's clients: one mio thread reading every connection.
struct Clients {
    poll: Poll,
    events: Events,
    conns: Vec<TcpStream>,
    buf: Vec<u8>,
}

impl Clients {
    fn connect(addr: SocketAddr, n: usize) -> Clients {
        let poll = Poll::new().expect("poll");
        let conns = (0..n)
            .map(|i| {
                let std = std::net::TcpStream::connect(addr).expect("connect");
                std.set_nonblocking(true).expect("nonblocking");
                let mut stream = TcpStream::from_std(std);
                poll.registry()
                    .register(&mut stream, Token(i), Interest::READABLE)
                    .expect("register");
                stream
            })
            .collect();
        Clients {
            poll,
            events: Events::with_capacity(4096),
            conns,
            buf: vec![0; 64 * 1024],
        }
    }

    /// Reads until `bytes` have arrived over all connections; the time.
    fn receive(&mut self, bytes: usize, started: Instant) -> Duration {
        let mut got = 0;
        while got < bytes {
            self.poll
                .poll(&mut self.events, Some(Duration::from_secs(10)))
                .expect("poll");
            assert!(!self.events.is_empty(), "stalled at {got} of {bytes} bytes");
            for event in self.events.iter() {
                let conn = &mut self.conns[event.token().0];
                loop {
                    match conn.read(&mut self.buf) {
                        Ok(0) => panic!("the server closed a connection"),
                        Ok(n) => got += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("read: {e}"),
                    }
                }
            }
        }
        assert_eq!(got, bytes, "more than one copy per connection");
        started.elapsed()
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::var("WALLE_BENCH_SERVER").is_ok() {
        if let Err(e) = child() {
            eprintln!("server failed: {e}");
            std::process::exit(1);
        }
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list`: nothing to list
    }
    let n: usize = std::env::var("WALLE_BROADCAST_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    // Each side holds `n` sockets, and some more.
    servers::raise_fd_limit(n as u64 + 256);
    let mut server = ServerProcess::start("evloop");
    let mut clients = Clients::connect(server.addr, n);
    let mut frame = Vec::new();
    Protocol::new(WalleFormat::new())
        .encode(&Head::notify(Route::Uri("tick")), &[0x5a; SIZE], &mut frame)
        .expect("the frame");
    let bytes = n * frame.len();
    let mut round = |what: &str| {
        let started = Instant::now();
        server.say(&format!("{what} {n}"));
        clients.receive(bytes, started)
    };
    // Warm: the sessions are all up, the hand-written side has its list.
    round("framework");
    round("hand");
    let (mut ours, mut hand, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let a = round("framework").as_secs_f64() * 1e3;
        let b = round("hand").as_secs_f64() * 1e3;
        ours.push(a);
        hand.push(b);
        ratios.push(a / b);
    }
    let report = std::env::temp_dir().join(format!("walle-broadcast-{}", std::process::id()));
    let _ = std::fs::remove_file(&report);
    server.say(&format!("report {}", report.display()));
    let asked = Instant::now();
    let sides = loop {
        if let Ok(text) = std::fs::read_to_string(&report) {
            break text;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "no report from the server"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = std::fs::remove_file(&report);
    let sides: Vec<f64> = sides
        .split(' ')
        .map(|v| v.parse().expect("a time"))
        .collect();
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(0.0, f64::max);
    println!(
        "broadcast of one {SIZE} B push ({} B frame) to {n} sessions, medians of {ROUNDS} interleaved rounds",
        frame.len()
    );
    println!(
        "framework {:.2} ms, by hand {:.2} ms: ratio {:.2}x ({lo:.2}-{hi:.2}) (bound: 2.0)",
        median(&ours),
        median(&hand),
        median(&ratios)
    );
    println!(
        "server side: the broadcast call {:.2} ms (the loops write meanwhile), the loop of writes by hand {:.2} ms",
        sides[0], sides[1]
    );
}
