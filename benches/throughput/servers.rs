//! The servers under test, each run in a child process: `walle` on a
//! named backend, or the tokio + tokio-util baseline; and the parent's
//! handle on such a child, which reads its address and CPU time.

use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) fn serve(kind: &str) -> io::Result<()> {
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
    // Lines from the parent go to its hook; exit when it closes our stdin.
    for line in io::stdin().lines().map_while(Result::ok) {
        if let Some(hook) = ON_LINE.get() {
            hook(&line);
        }
    }
    std::process::exit(0);
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
