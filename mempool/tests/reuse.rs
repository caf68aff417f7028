//! A reused buffer starts empty, whichever way it came back to its pool.

use std::thread;

use walle_mempool::{Pool, SizedPool};

/// BEHAVIOURS 62. A buffer freed on a thread whose cache belongs to other pools goes to
/// its own pool's shared queue; taken from there, it must hold nothing of
/// what its last owner wrote (a stale prefix would be sent on the wire).
#[test]
fn a_buffer_back_through_the_shared_queue_is_empty() {
    let ours = SizedPool::new();
    let written = {
        let ours = ours.clone();
        thread::spawn(move || {
            let mut buf = ours.alloc(100);
            buf.extend_from_slice(b"stale bytes of an earlier message");
            buf
        })
        .join()
        .expect("writer")
    };
    thread::spawn(move || {
        // This thread caches for as many other pools as it has room for
        // (a free never evicts one), so `ours`'s buffer cannot stay here.
        let others: Vec<_> = (0..16).map(|_| SizedPool::new()).collect();
        for pool in &others {
            drop(pool.alloc(100));
        }
        drop(written);
    })
    .join()
    .expect("freer");
    let before = ours.stats().reused;
    let (len, reused) = thread::spawn(move || {
        let buf = ours.alloc(100);
        (buf.len(), ours.stats().reused)
    })
    .join()
    .expect("reader");
    assert_eq!(reused, before + 1, "the buffer came from the shared queue");
    assert_eq!(len, 0, "a reused buffer must be empty");
}

/// The same on one thread: a cache spilled to the shared queue.
#[test]
fn buffers_spilled_from_a_full_cache_are_empty_when_reused() {
    let pool = SizedPool::new();
    let bufs: Vec<_> = (0..4096)
        .map(|i| {
            let mut buf = pool.alloc(64);
            buf.extend_from_slice(&[i as u8; 40]);
            buf
        })
        .collect();
    drop(bufs);
    let pool2 = pool.clone();
    let lens: Vec<usize> =
        thread::spawn(move || (0..4096).map(|_| pool2.alloc(64).len()).collect())
            .join()
            .expect("reader");
    assert!(lens.iter().all(|&len| len == 0), "{:?}", &lens[..8]);
}
