//! The servers under test, each run in a child process: `walle` on a
//! named backend, or the tokio + tokio-util baseline; and the parent's
//! handle on such a child, which reads its address and CPU time.

use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) fn serve(kind: &str) -> io::Result<()> {
    use walle::net::Server;
    use walle::prelude::*;
    let addr = match kind {
        "baseline" => baseline()?,
        "mio" => raw_mio()?,
        backend => {
            let mut router = Router::new(RawCodec);
            router
                .route("echo", |_: &mut Context, req: Bytes| Ok(req))
                .map_err(io::Error::other)?;
            let server = Server::builder(router)
                .backend(bench_backend(backend)?)
                .bind("127.0.0.1:0")
                .map_err(io::Error::other)?;
            let addr = server.local_addr();
            std::mem::forget(server); // serves until the process exits
            addr
        }
    };
    println!("ADDR {addr}");
    io::stdout().flush()?;
    // Lines from the parent go to its hook; exit when it closes our stdin.
    for line in io::stdin().lines().map_while(Result::ok) {
        if let Some(hook) = ON_LINE.get() {
            hook(&line);
        }
    }
    std::process::exit(0);
}

/// The backend named, with `WALLE_BENCH_LOOPS` and `WALLE_BENCH_BUSY_US`
/// (the evloop server's loops and busy poll) where set.
fn bench_backend(name: &str) -> io::Result<walle::net::Backend> {
    use walle::net::Backend;
    let backend = Backend::parse(name).ok_or_else(|| io::Error::other("backend"))?;
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    Ok(match backend {
        Backend::Evloop(mut opts) => {
            if let Some(loops) = env("WALLE_BENCH_LOOPS") {
                opts = opts.loops(loops as usize);
            }
            if let Some(us) = env("WALLE_BENCH_BUSY_US") {
                opts = opts.busy_poll(Duration::from_micros(us));
            }
            Backend::Evloop(opts)
        }
        other => other,
    })
}

/// What a server child does with a line its parent sends
/// ([`ServerProcess::say`]).
#[allow(dead_code)] // the idle bench's
pub(crate) static ON_LINE: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

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

pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl ServerProcess {
    pub(crate) fn start(kind: &str) -> ServerProcess {
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
    #[allow(dead_code)] // the throughput bench's
    pub(crate) fn cpu(&self) -> Duration {
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

    /// Sends the child a line, for its [`ON_LINE`] hook.
    #[allow(dead_code)] // the idle bench's
    pub(crate) fn say(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("say");
        stdin.flush().expect("say");
    }

    /// The server's resident memory (`VmRSS`), in bytes.
    #[allow(dead_code)] // the idle bench's
    pub(crate) fn rss(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        kib * 1024
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The raw limit: a framed echo on mio by hand, one loop per core, each
/// accepting from the shared listener; reads land in one reused buffer
/// per loop, whole frames go back as they came (one write per read), a
/// frame cut by the read waits in the connection's own buffer, and what a
/// write leaves waits for the socket. No allocation in steady state.
pub(crate) fn raw_mio() -> io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let loops = std::thread::available_parallelism().map_or(1, |n| n.get());
    for _ in 0..loops {
        let listener = mio::net::TcpListener::from_std(listener.try_clone()?);
        std::thread::spawn(move || raw_loop(listener));
    }
    Ok(addr)
}

struct RawConn {
    stream: mio::net::TcpStream,
    /// The start of a frame the last read cut.
    partial: Vec<u8>,
    /// Answers the socket did not take yet.
    out: Vec<u8>,
}

fn raw_loop(mut listener: mio::net::TcpListener) {
    use mio::{Events, Interest, Poll, Token};
    const LISTENER: Token = Token(usize::MAX);
    let mut poll = Poll::new().expect("poll");
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .expect("register");
    let mut events = Events::with_capacity(1024);
    let mut conns = slab::Slab::<RawConn>::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        poll.poll(&mut events, None).expect("poll");
        for event in &events {
            if event.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    let _ = stream.set_nodelay(true);
                    let entry = conns.vacant_entry();
                    poll.registry()
                        .register(
                            &mut stream,
                            Token(entry.key()),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .expect("register");
                    entry.insert(RawConn {
                        stream,
                        partial: Vec::new(),
                        out: Vec::new(),
                    });
                }
                continue;
            }
            let key = event.token().0;
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            if raw_ready(conn, &mut buf).is_err() {
                let mut conn = conns.remove(key);
                let _ = poll.registry().deregister(&mut conn.stream);
            }
        }
    }
}

/// Reads what there is and echoes the whole frames; `Err` ends the
/// connection.
fn raw_ready(conn: &mut RawConn, buf: &mut [u8]) -> io::Result<()> {
    use std::io::Read;
    raw_flush(conn)?;
    loop {
        let have = conn.partial.len();
        if have >= buf.len() {
            return Err(io::ErrorKind::InvalidData.into()); // a frame over the buffer
        }
        buf[..have].copy_from_slice(&conn.partial);
        let n = match conn.stream.read(&mut buf[have..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let data = &buf[..have + n];
        let mut whole = 0;
        while let Some(len) = data.get(whole..whole + 4) {
            let end = whole + 4 + u32::from_be_bytes(len.try_into().expect("4")) as usize;
            if end > data.len() {
                break;
            }
            whole = end;
        }
        conn.partial.clear();
        conn.partial.extend_from_slice(&data[whole..]);
        if conn.out.is_empty() {
            let at = write_what_it_takes(&mut conn.stream, &data[..whole])?;
            conn.out.extend_from_slice(&data[at..whole]);
        } else {
            conn.out.extend_from_slice(&data[..whole]);
        }
        if have + n < buf.len() {
            return Ok(()); // a short read drained the socket
        }
    }
}

/// Writes what waits; `Ok` whether or not all of it went.
fn raw_flush(conn: &mut RawConn) -> io::Result<()> {
    let at = write_what_it_takes(&mut conn.stream, &conn.out)?;
    conn.out.drain(..at);
    Ok(())
}

/// Writes `data` until the socket would block; returns how much went.
fn write_what_it_takes(stream: &mut mio::net::TcpStream, data: &[u8]) -> io::Result<usize> {
    let mut at = 0;
    while at < data.len() {
        match stream.write(&data[at..]) {
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(at)
}

/// Raises this process's soft limit of open descriptors to `want` (or the
/// hard limit, if lower: then fails, naming both), before server children
/// are started, which inherit it.
#[allow(dead_code)] // the idle and broadcast benches'
pub(crate) fn raise_fd_limit(want: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < want {
        setrlimit(Resource::RLIMIT_NOFILE, want.min(hard), hard).expect("setrlimit");
    }
    assert!(
        hard >= want,
        "need {want} file descriptors per process, the hard limit is {hard}"
    );
}
