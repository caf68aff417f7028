use crate::{Pool, SizedPool};

/// Slots of this thread's cache, by pool id.
fn cached() -> Vec<u64> {
    super::fast()
        .slots
        .iter()
        .map(|s| s.pool.get())
        .filter(|&id| id != 0)
        .collect()
}

/// Two pools used in turn on one thread both stay cached: after the
/// first round, every allocation is a reuse from this thread's lists
/// and no thread block is registered again.
#[test]
fn alternating_pools_keep_their_thread_caches() {
    std::thread::spawn(|| {
        let (a, b) = (SizedPool::new(), SizedPool::new());
        for _ in 0..100 {
            let x = a.alloc(1000);
            let y = b.alloc(16 * 1024);
            drop(y);
            drop(x);
        }
        for pool in [&a, &b] {
            let stats = pool.stats();
            assert_eq!((stats.allocated, stats.reused), (1, 99), "{stats:?}");
            assert_eq!(pool.shared.threads_registered(), 1, "re-adopted");
        }
        assert_eq!(cached().len(), 2);
    })
    .join()
    .expect("test thread");
}

/// Five pools on this thread: the first four adopted (a slow path each),
/// then allocated from in the order `uses` gives (the fast path), then
/// the fifth, which evicts one of them.
fn fifth_pool_after(uses: &[usize]) -> Vec<SizedPool> {
    let pools: Vec<SizedPool> = (0..5).map(|_| SizedPool::new()).collect();
    for pool in &pools[..4] {
        drop(pool.alloc(100));
    }
    for &i in uses {
        drop(pools[i].alloc(100));
    }
    drop(pools[4].alloc(100));
    pools
}

/// Asserts that this thread caches for exactly `kept` of `pools`.
fn assert_cached(pools: &[SizedPool], kept: &[usize], why: &str) {
    let mut want: Vec<u64> = kept.iter().map(|&i| pools[i].shared.id).collect();
    let mut got = cached();
    want.sort();
    got.sort();
    assert_eq!(got, want, "{why}");
}

/// A fifth pool evicts the least recently used slot, whose cached
/// buffers go back to their pool's shared queue; the others stay.
#[test]
fn a_fifth_pool_evicts_the_least_recently_used() {
    std::thread::spawn(|| {
        // Use 0, 2, 3 again: pool 1 is the least recently used.
        let pools = fifth_pool_after(&[0, 2, 3]);
        assert_cached(&pools, &[0, 2, 3, 4], "pool 1 goes");
        // Pool 1's cached buffer went to its shared queue: still retained.
        let stats = pools[1].stats();
        assert_eq!((stats.outstanding, stats.retained_bytes), (0, 128));
        drop(pools[1].alloc(100));
        assert_eq!(pools[1].stats().reused, 1, "served from the shared queue");
    })
    .join()
    .expect("test thread");
}

/// Recency counts every allocation, the fast path's too: the pool used
/// last is kept even when all four were served from their lists since
/// the last slow path.
#[test]
fn the_pool_used_last_survives_an_eviction() {
    std::thread::spawn(|| {
        let pools = fifth_pool_after(&[1, 2, 3, 0]);
        assert_cached(
            &pools,
            &[0, 2, 3, 4],
            "pool 1, the least recently used, goes",
        );
    })
    .join()
    .expect("test thread");
}

/// A thread that only frees takes a free slot but never evicts one.
#[test]
fn frees_do_not_evict() {
    let pools: Vec<SizedPool> = (0..5).map(|_| SizedPool::new()).collect();
    let bufs: Vec<_> = pools.iter().map(|p| p.alloc(100)).collect();
    std::thread::spawn(move || {
        drop(bufs);
        assert_eq!(cached().len(), 4);
    })
    .join()
    .expect("test thread");
    for pool in &pools {
        assert_eq!(pool.stats().outstanding, 0);
    }
}

/// The buffer waiting beside a list counts against the class's local cap:
/// a thread that frees many buffers keeps no more than the cap (a full
/// list spills half of itself to the shared queue).
#[test]
fn a_thread_keeps_at_most_its_local_cap_hot_buffer_included() {
    std::thread::spawn(|| {
        let pool = SizedPool::new();
        let class = pool.shared.class_of(1024).expect("a class");
        let cap = pool.shared.local_cap[class] as usize;
        let bufs: Vec<_> = (0..cap * 3).map(|_| pool.alloc(1024)).collect();
        drop(bufs);
        let f = super::fast();
        let slot = f.slot_of(pool.shared.id).expect("a slot");
        let listed = (slot.caps[class].get() - slot.room[class].get()) as usize;
        let hot = usize::from(!slot.hot[class].get().is_null());
        assert_eq!(hot, 1, "a buffer waits beside the list");
        assert!(
            listed + hot <= cap,
            "{listed} listed + {hot} hot > cap {cap}"
        );
        assert!(
            listed + hot > cap / 2,
            "{listed} listed: the list spilled too much"
        );
    })
    .join()
    .expect("test thread");
}
