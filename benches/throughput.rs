//! Echo throughput over loopback: the `evloop` and `tcp` servers against a
//! tokio + tokio-util `LengthDelimitedCodec` echo server, in one run.
//!
//! Each server runs as a child process (this bench binary, re-run with
//! `WALLE_BENCH_SERVER`), so its CPU time per message is read from
//! `/proc` apart from the load client's. One raw framed load client (a
//! single mio thread) sends pre-encoded `walle` request frames, keeps
//! `depth` in flight per connection, and counts answer frames; the
//! baseline answers each frame with the frame itself.
#![allow(clippy::print_stdout)] // a bench report
#![allow(missing_docs)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

// ---------------------------------------------------------------- servers

fn serve(kind: &str) -> io::Result<()> {
    use walle::net::{Backend, Server};
    use walle::prelude::*;
    let addr = match kind {
        "baseline" => baseline()?,
        backend => {
            let mut router = Router::new(RawCodec);
            router
                .route("echo", |_: &mut Context, req: Bytes| Ok(req))
                .map_err(io::Error::other)?;
            let server = Server::builder(router)
                .backend(Backend::parse(backend).ok_or_else(|| io::Error::other("backend"))?)
                .bind("127.0.0.1:0")
                .map_err(io::Error::other)?;
            let addr = server.local_addr();
            std::mem::forget(server); // serves until the process exits
            addr
        }
    };
    println!("ADDR {addr}");
    io::stdout().flush()?;
    // Exit when the parent closes our stdin.
    let mut sink = Vec::new();
    let _ = io::stdin().read_to_end(&mut sink);
    std::process::exit(0);
}

/// What one would write by hand on tokio: a task per connection over
/// tokio-util's length-delimited codec, answers batched per read.
fn baseline() -> io::Result<SocketAddr> {
    use futures_util::{FutureExt, SinkExt, StreamExt};
    use tokio_util::codec::{Framed, LengthDelimitedCodec};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let mut framed = Framed::new(stream, LengthDelimitedCodec::new());
                while let Some(Ok(frame)) = framed.next().await {
                    if framed.feed(frame.freeze()).await.is_err() {
                        return;
                    }
                    while let Some(Some(Ok(frame))) = framed.next().now_or_never() {
                        if framed.feed(frame.freeze()).await.is_err() {
                            return;
                        }
                    }
                    if SinkExt::<bytes::Bytes>::flush(&mut framed).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    std::mem::forget(runtime);
    Ok(addr)
}

struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServerProcess {
    fn start(kind: &str) -> ServerProcess {
        let mut child = Command::new(std::env::current_exe().expect("bench binary"))
            .env("WALLE_BENCH_SERVER", kind)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let stdout = child.stdout.take().expect("stdout");
        let addr = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("ADDR ").map(|a| a.parse().expect("addr")))
            .expect("server address");
        ServerProcess { child, addr }
    }

    /// User + system CPU time of the server so far.
    fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("stat");
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .expect("comm")
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 =
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ----------------------------------------------------------- load client

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
struct Load {
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    frame: Vec<u8>,
    buf: Vec<u8>,
    answered: u64,
}

impl Load {
    fn connect(addr: SocketAddr, conns: usize, depth: usize, size: usize) -> Load {
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
    fn run_for(&mut self, window: Duration) -> u64 {
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
    fn run(&mut self, n: u64) -> Duration {
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

// ------------------------------------------------------------- the bench

/// Rounds of the interleaved comparison, and the window of each turn.
const ROUNDS: usize = 11;
const WINDOW: Duration = Duration::from_millis(1500);
const SERVERS: [&str; 3] = ["baseline", "evloop", "tcp"];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn throughput(c: &mut Criterion) {
    let configs = [(256usize, 16usize, 1024usize), (16, 16, 64)];
    // `WALLE_BENCH_CONFIGS=16x16x64B` runs only the configurations named.
    let only = std::env::var("WALLE_BENCH_CONFIGS").ok();
    let mut report = Vec::new();
    for (conns, depth, size) in configs {
        let config = format!("{conns}x{depth}x{size}B");
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|c| c == config))
        {
            continue;
        }
        let mut group = c.benchmark_group(format!("echo/{config}"));
        group.throughput(Throughput::Elements(1));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4));
        let mut servers: Vec<(ServerProcess, Load)> = SERVERS
            .iter()
            .map(|kind| {
                let process = ServerProcess::start(kind);
                let mut load = Load::connect(process.addr, conns, depth, size);
                load.run(10_000); // connections warm
                (process, load)
            })
            .collect();
        for (kind, (_, load)) in SERVERS.iter().zip(servers.iter_mut()) {
            group.bench_function(BenchmarkId::from_parameter(kind), |b| {
                b.iter_custom(|iters| load.run(iters))
            });
        }
        group.finish();
        // The machine is shared and noisy: the servers take turns, round
        // after round, and each round's ratios are against that round's
        // baseline; the medians are reported.
        let mut rates = vec![Vec::new(); SERVERS.len()];
        let mut cpus = vec![Vec::new(); SERVERS.len()];
        let mut ratios = vec![Vec::new(); SERVERS.len()];
        for _ in 0..ROUNDS {
            let mut round = Vec::new();
            for (i, (process, load)) in servers.iter_mut().enumerate() {
                let cpu0 = process.cpu();
                let n = load.run_for(WINDOW);
                let cpu = process.cpu() - cpu0;
                round.push(n as f64 / WINDOW.as_secs_f64());
                rates[i].push(n as f64 / WINDOW.as_secs_f64());
                cpus[i].push(cpu.as_secs_f64() * 1e6 / n.max(1) as f64);
            }
            for i in 0..SERVERS.len() {
                ratios[i].push(round[i] / round[0]);
            }
        }
        for i in 0..SERVERS.len() {
            let (r, lo, hi) = {
                let mut sorted = ratios[i].clone();
                sorted.sort_by(f64::total_cmp);
                (
                    median(ratios[i].clone()),
                    sorted[0],
                    sorted[sorted.len() - 1],
                )
            };
            report.push(format!(
                "{:<9} {:<14} {:>11.0}   {:>5.2}x ({:.2}-{:.2})   {:>8.3}",
                SERVERS[i],
                config,
                median(rates[i].clone()),
                r,
                lo,
                hi,
                median(cpus[i].clone())
            ));
        }
    }
    println!("\nmedians of {ROUNDS} interleaved rounds of {WINDOW:?} each");
    println!("server    config           msgs/s     vs baseline (min-max)   server CPU us/msg");
    for line in report {
        println!("{line}");
    }
}

fn main() {
    if let Ok(kind) = std::env::var("WALLE_BENCH_SERVER") {
        if let Err(e) = serve(&kind) {
            eprintln!("server failed: {e}");
            std::process::exit(1);
        }
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    throughput(&mut criterion);
    criterion.final_summary();
}
