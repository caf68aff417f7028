//! Idle connections on the evloop server: what each one costs in the
//! server's resident memory. The server runs as a child process (this
//! bench binary, re-run with `WALLE_BENCH_SERVER`); raw connections each
//! make one echo call (so the session, its process and its timers exist)
//! and then sit idle. The growth of the server's `VmRSS` from the first
//! `WARM` connections to all of them, over the connections added, is the
//! figure. `WALLE_IDLE_CONNS` sets the count (default 10,000; the file
//! descriptor limit of the machine bounds it).
//!
//! `cargo bench --bench idle`
#![allow(clippy::print_stdout)] // a bench report
#![allow(missing_docs)]
#![allow(unsafe_code)] // the census allocator

#[allow(dead_code)] // the throughput bench's load clients
#[path = "throughput/load.rs"]
mod load;
#[path = "throughput/servers.rs"]
mod servers;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use servers::{ON_LINE, ServerProcess, serve};

/// The live heap allocations of this process by size (exact up to
/// `SIZES`, one bucket above), for the census a server child prints.
mod census {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

    pub(crate) const SIZES: usize = 4096;
    static LIVE: [AtomicI64; SIZES + 1] = [const { AtomicI64::new(0) }; SIZES + 1];
    static BIG_BYTES: AtomicI64 = AtomicI64::new(0);
    static LAST: Mutex<Option<(Vec<i64>, i64)>> = Mutex::new(None);

    pub(crate) struct Census;

    fn count(size: usize, by: i64) {
        LIVE[size.min(SIZES)].fetch_add(by, Relaxed);
        if size > SIZES {
            BIG_BYTES.fetch_add(by * size as i64, Relaxed);
        }
    }

    // SAFETY: every call goes to the system allocator unchanged.
    unsafe impl GlobalAlloc for Census {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count(layout.size(), 1);
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            count(layout.size(), -1);
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
            count(layout.size(), -1);
            count(new, 1);
            unsafe { System.realloc(ptr, layout, new) }
        }
    }

    /// Prints the live allocations added since the last call, largest
    /// share first.
    pub(crate) fn report(what: &str) {
        let now: Vec<i64> = LIVE.iter().map(|c| c.load(Relaxed)).collect();
        let big = BIG_BYTES.load(Relaxed);
        let mut last = LAST.lock().unwrap();
        if let Some((before, big_before)) = last.as_ref() {
            let mut rows: Vec<(i64, usize, i64)> = (0..SIZES)
                .map(|size| {
                    let n = now[size] - before[size];
                    (n * size as i64, size, n)
                })
                .filter(|r| r.2 != 0)
                .collect();
            rows.sort_by_key(|r| std::cmp::Reverse(r.0));
            let total: i64 = rows.iter().map(|r| r.0).sum::<i64>() + (big - big_before);
            eprintln!("heap census, {what}: {total} B added in live allocations");
            for (bytes, size, n) in rows.iter().take(12) {
                eprintln!("  {n:>7} x {size:>5} B = {bytes:>9} B");
            }
            eprintln!("  over {SIZES} B: {} B", big - big_before);
        }
        *last = Some((now, big));
    }
}

#[global_allocator]
static ALLOC: census::Census = census::Census;

/// Connections opened before the first measure: thread-local pools and
/// the slab's first pages are not a connection's own.
const WARM: usize = 200;

/// Opens a connection and makes one echo call on it.
fn open(addr: SocketAddr, frame: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(frame).expect("request");
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).expect("answer");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).expect("answer");
    stream
}

fn main() {
    if let Ok(kind) = std::env::var("WALLE_BENCH_SERVER") {
        let _ = ON_LINE.set(census::report);
        if let Err(e) = serve(&kind) {
            eprintln!("server failed: {e}");
            std::process::exit(1);
        }
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list`: nothing to list
    }
    let n: usize = std::env::var("WALLE_IDLE_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
        .max(WARM + 1);
    servers::raise_fd_limit(n as u64 + 256);
    let mut server = ServerProcess::start("evloop");
    let frame = load::request_frame(16);
    let empty = server.rss();
    let mut conns: Vec<TcpStream> = (0..WARM).map(|_| open(server.addr, &frame)).collect();
    server.say("warm");
    let warm = server.rss();
    let started = Instant::now();
    conns.extend((WARM..n).map(|_| open(server.addr, &frame)));
    let opened = started.elapsed();
    let full = server.rss();
    server.say(&format!(
        "the {} connections after the first {WARM}",
        n - WARM
    ));
    // Idle a moment: what the sessions hold once nothing moves.
    std::thread::sleep(Duration::from_secs(2));
    let idle = server.rss();
    let added = (n - WARM) as f64;
    let per = |rss: u64| rss.saturating_sub(warm) as f64 / added;
    println!("evloop, {n} idle connections (opened and called once in {opened:.1?})");
    println!(
        "server VmRSS: {:.1} MiB empty, {:.1} MiB after {WARM}, {:.1} MiB after {n}, {:.1} MiB idle 2 s later",
        empty as f64 / 1048576.0,
        warm as f64 / 1048576.0,
        full as f64 / 1048576.0,
        idle as f64 / 1048576.0,
    );
    println!(
        "per connection: {:.0} B at once, {:.0} B idle (bound: 1024 B)",
        per(full),
        per(idle)
    );
    drop(conns);
}
