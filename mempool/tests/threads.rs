//! Buffers freed on other threads come back and the counters balance
//! (BEHAVIOURS 62, 63).

use std::sync::mpsc;
use std::thread;

use walle_mempool::{Pool, SizedPool};

/// BEHAVIOURS 62/63: allocate on one set of threads, free on another; every
/// buffer is accounted for and retained memory stays within the bounds.
#[test]
fn b62_b63_cross_thread_frees_balance() {
    const PER_THREAD: usize = 20_000;
    let pool = SizedPool::new();
    let (tx, rx) = mpsc::sync_channel::<bytes::Bytes>(1024);
    let producers: Vec<_> = (0..3)
        .map(|t| {
            let pool = pool.clone();
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let size = [64, 1000, 16 * 1024][(i + t) % 3];
                    let mut buf = pool.alloc(size);
                    buf.extend_from_slice(&[t as u8; 32]);
                    if i % 2 == 0 {
                        tx.send(buf.freeze()).expect("consumer alive");
                    } else {
                        drop(buf);
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let consumer = thread::spawn(move || rx.iter().count());
    for p in producers {
        p.join().expect("producer");
    }
    let received = consumer.join().expect("consumer");
    assert_eq!(received, 3 * PER_THREAD / 2);

    let stats = pool.stats();
    assert_eq!(stats.outstanding, 0, "{stats:?}");
    assert_eq!(
        stats.allocated + stats.reused,
        3 * PER_THREAD as u64,
        "{stats:?}"
    );
    assert!(
        stats.reused > stats.allocated,
        "buffers must be reused: {stats:?}"
    );
    // Bounded: 64 MiB shared + 1 MiB per thread cache by default.
    assert!(stats.retained_bytes <= (64 + 5) << 20, "{stats:?}");

    // Buffers freed by the consumer thread came back: a fresh thread can
    // allocate thousands without touching the system allocator.
    let before = pool.stats().allocated;
    let p = pool.clone();
    thread::spawn(move || {
        let held: Vec<_> = (0..100).map(|_| p.alloc(16 * 1024)).collect();
        drop(held);
    })
    .join()
    .expect("reuser");
    assert_eq!(
        pool.stats().allocated,
        before,
        "cross-thread frees were not reused"
    );
}
