//! Heap allocations of one in-memory request -> response round trip on the
//! `Inline` path, `walle` format, raw codec, in steady state: at most 2.

mod util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use util::{Link, poll, walle};
use walle_codec::RawCodec;
use walle_process::{Context, Router};

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
