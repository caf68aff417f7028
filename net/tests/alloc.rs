//! Heap allocations per request on the event-loop, tcp, kcp and ws servers
//! with inline dispatch, `walle` format, raw codec, over a real socket, in
//! steady state: at most 2 (the foundation's figure, now with sockets) on
//! the stream and ws backends, the kcp crate's own on kcp.
//!
//! The client is a raw blocking socket with a pre-encoded frame and fixed
//! buffers, so every allocation counted is the server's.

mod util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use util::*;
use walle_net::{Backend, ServerOptions};

struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static COUNT: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers to the system allocator; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            COUNT.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            COUNT.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn evloop_inline_request_allocations() {
    request_allocations(&Backend::evloop(), 2.0);
}

#[test]
fn tcp_inline_request_allocations() {
    request_allocations(&Backend::tcp(), 2.0);
}

/// kcp: the `kcp` crate allocates each segment's data, sent (the answer)
/// and received (the request): 2 a request on the server; the raw KCP
/// peer of this test, in the same process, allocates as many on its side.
/// The bound keeps anything the backend adds to that visible.
#[test]
fn kcp_inline_request_allocations() {
    request_allocations(&Backend::kcp(walle_net::KcpOptions::default()), 5.0);
}

#[test]
fn ws_inline_request_allocations() {
    request_allocations(&Backend::ws(), 2.0);
}

/// The counter is global: tests sharing a process take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Counts heap allocations per request over a socket, in steady state,
/// with inline dispatch; prints the figure, which must be at most `max`.
/// On ws the client writes a pre-encoded (masked) binary message and reads
/// the answer's message whole, header and all, so it allocates nothing
/// either.
#[allow(clippy::print_stdout)]
fn request_allocations(backend: &Backend, max: f64) {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = server(backend, echo_router(), ServerOptions::default());
    let (mut stream, ws) = match connect(backend, server.local_addr()) {
        Raw::Ws(ws) => (Raw::Tcp(ws.stream), true),
        raw => (raw, false),
    };
    stream.set_nodelay(true).unwrap();
    for size in [64usize, 1024] {
        let frame = request_frame("echo", 7, &vec![1u8; size]);
        // The echo answer has the same length.
        let (wire, answer_len) = match ws {
            false => (frame.clone(), frame.len()),
            true => {
                let body = &frame[4..];
                let header = if body.len() < 126 { 2 } else { 4 };
                (
                    ws_frame(true, 2, body, body.len() as u64, true),
                    header + body.len(),
                )
            }
        };
        let mut answer = vec![0u8; answer_len];
        let mut trip = |stream: &mut Raw| {
            stream.write_all(&wire).unwrap();
            stream.read_exact(&mut answer).unwrap();
        };
        for _ in 0..2000 {
            trip(&mut stream); // warm up: buffers, pools, tables
        }
        const N: u64 = 10_000;
        COUNT.store(0, Ordering::Relaxed);
        ON.store(true, Ordering::Relaxed);
        for _ in 0..N {
            trip(&mut stream);
        }
        ON.store(false, Ordering::Relaxed);
        let per_request = COUNT.load(Ordering::Relaxed) as f64 / N as f64;
        println!(
            "{}, {size} B: {per_request:.3} heap allocations per request (server side)",
            backend.name()
        );
        assert!(per_request <= max, "{per_request} allocations per request");
    }
}
