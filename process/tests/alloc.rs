//! Heap allocations of one in-memory request -> response round trip on the
//! `Inline` path, `walle` format, in steady state: at most 2, with the raw
//! codec, and with the JSON codec over a transport that encodes frames
//! into chunks of a second pool (net's outbound queue does).

#[path = "util/chunk.rs"]
mod chunk;
mod util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use std::sync::Arc;

use bytes::Bytes;
use chunk::ChunkTransport;
use util::{Link, poll, walle};
use walle_codec::{JsonCodec, RawCodec};
use walle_mempool::{Pool, SizedPool};
use walle_process::mem::{MemPipe, MemTransport};
use walle_process::{Context, Process, Router, Transport};

/// Counts the allocations of the threads that turned counting on.
struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ON.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ON.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn round_trip(link: &mut Link, payload: &Bytes) {
    let mut call = link.client.call::<Bytes, Bytes>("echo", payload);
    assert!(poll(&mut call).is_pending());
    link.pump();
    match poll(&mut call) {
        std::task::Poll::Ready(Ok(answer)) => assert_eq!(answer.len(), payload.len()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn steady_state_round_trip_allocations() {
    let mut router = Router::new(RawCodec);
    router
        .route("echo", |_: &mut Context, req: Bytes| Ok(req))
        .unwrap();
    let mut link = Link::new(walle(), router);
    for size in [64usize, 1024] {
        let payload = Bytes::from(vec![7u8; size]);
        for _ in 0..1000 {
            round_trip(&mut link, &payload); // warm up: buffers, tables, caches
        }
        const N: u64 = 10_000;
        COUNT.with(|c| c.set(0));
        ON.with(|on| on.set(true));
        for _ in 0..N {
            round_trip(&mut link, &payload);
        }
        ON.with(|on| on.set(false));
        let allocs = COUNT.with(Cell::get);
        let per_trip = allocs as f64 / N as f64;
        println!(
            "{size} B payload: {allocs} allocations in {N} round trips = {per_trip:.3} per round trip"
        );
        assert!(per_trip <= 2.0, "{per_trip} allocations per round trip");
    }
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Move {
    player: u64,
    x: i32,
    y: i32,
}

/// Two pools used in turn on one thread (the process pool for payloads,
/// another for frames) keep their thread caches: no allocation per
/// message for re-adopting a cache.
#[test]
fn steady_state_json_round_trip_with_two_pools_allocations() {
    let protocol = walle();
    let process_pool: Arc<dyn Pool> = Arc::new(SizedPool::new());
    let chunk_pool: Arc<dyn Pool> = Arc::new(SizedPool::new());
    let to_server = Arc::new(MemTransport::new(1 << 20));
    let to_client = Arc::new(MemTransport::new(1 << 20));
    let chunked = |link: &Arc<MemTransport>| -> Arc<dyn Transport> {
        Arc::new(ChunkTransport {
            link: link.clone(),
            chunks: chunk_pool.clone(),
        })
    };
    let mut router = Router::new(JsonCodec);
    router
        .route("move", |_: &mut Context, m: Move| Ok(m))
        .unwrap();
    let server = Process::builder(protocol.clone(), router)
        .transport(chunked(&to_client))
        .pool(process_pool.clone())
        .build()
        .unwrap();
    let client = Process::builder(protocol.clone(), Router::new(JsonCodec))
        .transport(chunked(&to_server))
        .pool(process_pool)
        .build()
        .unwrap();
    let (mut up, mut down) = (MemPipe::new(&protocol), MemPipe::new(&protocol));
    let msg = Move {
        player: 7,
        x: -3,
        y: 1024,
    };
    let mut round_trip = || {
        let mut call = client.call::<Move, Move>("move", &msg);
        up.pump(&to_server, &server).unwrap();
        down.pump(&to_client, &client).unwrap();
        match poll(&mut call) {
            std::task::Poll::Ready(Ok(answer)) => assert_eq!(answer, msg),
            other => panic!("{other:?}"),
        }
    };
    for _ in 0..1000 {
        round_trip();
    }
    const N: u64 = 10_000;
    COUNT.with(|c| c.set(0));
    ON.with(|on| on.set(true));
    for _ in 0..N {
        round_trip();
    }
    ON.with(|on| on.set(false));
    let per_trip = COUNT.with(Cell::get) as f64 / N as f64;
    println!("JSON, two pools: {per_trip:.3} allocations per round trip");
    assert!(per_trip < 1.0, "{per_trip} allocations per round trip");
}
