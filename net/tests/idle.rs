//! 10,000 idle clients on the event-loop server: the server-side memory
//! held per idle connection stays under 2 KiB.
//!
//! The server runs in a child process (this test binary, re-run with
//! `WALLE_IDLE_CHILD=1`), so that its resident memory is measured alone
//! and each side has its own descriptor table.

mod util;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use util::*;
use walle_net::ServerOptions;

const CLIENTS: usize = 10_000;
const WARM: usize = 200;

/// The child: serves, and prints its counters every 50 ms.
#[test]
fn idle_child() {
    if std::env::var("WALLE_IDLE_CHILD").as_deref() != Ok("1") {
        return;
    }
    let server = server(
        &walle_net::Backend::evloop(),
        echo_router(),
        ServerOptions::default(),
    );
    let mut out = std::io::stdout();
    writeln!(out, "ADDR {}", server.local_addr()).unwrap();
    loop {
        let io = server.io_stats();
        writeln!(
            out,
            "STATS {} {} {}",
            server.session_count(),
            io.read_buffers_held,
            io.spare_read_bytes
        )
        .unwrap();
        out.flush().unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn raise_fd_limit(want: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a local struct.
    #[allow(unsafe_code)]
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max.min(want.max(limit.rlim_cur));
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
    assert!(
        limit.rlim_cur >= want,
        "need {want} descriptors, the hard limit is {}",
        limit.rlim_max
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

struct Child {
    child: std::process::Child,
    stats: Arc<Mutex<(usize, usize, usize)>>,
    addr: SocketAddr,
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_child() -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["idle_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("WALLE_IDLE_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("child output").unwrap();
        // libtest may print "test idle_child ... " on the same line first.
        if let Some(addr) = line.split("ADDR ").nth(1) {
            break addr.trim().parse().unwrap();
        }
    };
    let stats = Arc::new(Mutex::new((0, 0, 0)));
    let s = stats.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let mut f = line
                .strip_prefix("STATS ")
                .unwrap_or("")
                .split(' ')
                .filter_map(|v| v.parse().ok());
            if let (Some(a), Some(b), Some(c)) = (f.next(), f.next(), f.next()) {
                *s.lock().unwrap() = (a, b, c);
            }
        }
    });
    Child { child, stats, addr }
}

fn connect_and_touch(addr: SocketAddr, n: usize) -> Vec<Raw> {
    (0..n)
        .map(|i| {
            let mut s = connect(&walle_net::Backend::evloop(), addr);
            raw_round_trip(&mut s, i as u64 + 1, b"hello"); // a real session, then idle
            s
        })
        .collect()
}

fn wait_sessions(child: &Child, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.stats.lock().unwrap().0 != n {
        assert!(
            Instant::now() < deadline,
            "sessions stuck at {:?}",
            child.stats.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
}

#[test]
fn ten_thousand_idle_connections_cost_under_2_kib_each() {
    raise_fd_limit((CLIENTS + WARM + 100) as u64);
    let child = spawn_child();
    let pid = child.child.id();
    let warm = connect_and_touch(child.addr, WARM);
    wait_sessions(&child, WARM);
    let before = rss_kib(pid);
    let idle = connect_and_touch(child.addr, CLIENTS);
    wait_sessions(&child, WARM + CLIENTS);
    let after = rss_kib(pid);
    let (sessions, held, spare) = *child.stats.lock().unwrap();
    let per_conn = (after.saturating_sub(before) * 1024) as f64 / CLIENTS as f64;
    println!(
        "{CLIENTS} idle connections: server RSS {before} KiB -> {after} KiB, {per_conn:.0} bytes per connection; \
         read buffers held {held}, spare read bytes {spare}, sessions {sessions}"
    );
    assert_eq!(held, 0, "idle connections hold no read buffer");
    assert!(per_conn < 2048.0, "{per_conn:.0} bytes per idle connection");
    drop((warm, idle));
}
