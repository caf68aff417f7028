use super::*;

#[test]
fn classes_round_up_to_powers_of_two() {
    let pool = SizedPool::new();
    assert_eq!(pool.class_size_for(0), Some(64));
    assert_eq!(pool.class_size_for(65), Some(128));
    assert_eq!(pool.class_size_for(1024), Some(1024));
    assert_eq!(pool.class_size_for(64 * 1024), Some(64 * 1024));
    assert_eq!(pool.class_size_for(64 * 1024 + 1), None);
    assert_eq!(pool.class_size_for(usize::MAX), None);
}

/// BEHAVIOURS 62: a buffer returns when its last reference drops, and
/// comes back empty.
#[test]
fn b62_frozen_buffer_returns_on_last_clone_and_is_reset() {
    let pool = SizedPool::new();
    let mut buf = pool.alloc(1000);
    buf.extend_from_slice(&[7; 900]);
    let frozen = buf.freeze();
    let clone = frozen.clone();
    drop(frozen);
    assert_eq!(pool.stats().outstanding, 1, "a clone is still alive");
    drop(clone);
    assert_eq!(pool.stats().outstanding, 0);
    let again = pool.alloc(1000);
    assert!(again.is_empty(), "reused buffer must be cleared");
    assert_eq!(again.capacity(), 1024);
    assert_eq!(pool.stats().reused, 1);
    assert_eq!(pool.stats().allocated, 1);
}

#[test]
fn regrown_buffers_are_not_kept() {
    let pool = SizedPool::new();
    let mut buf = pool.alloc(64);
    buf.extend_from_slice(&[0; 1000]);
    drop(buf);
    let stats = pool.stats();
    assert_eq!(
        (stats.discarded, stats.outstanding, stats.retained_bytes),
        (1, 0, 0)
    );
}

#[test]
fn oversize_goes_to_the_heap_and_is_counted() {
    let pool = SizedPool::new();
    let big = pool.alloc(1 << 20);
    assert!(big.capacity() >= 1 << 20);
    drop(big);
    let stats = pool.stats();
    assert_eq!(
        (stats.oversize, stats.outstanding, stats.retained_bytes),
        (1, 0, 0)
    );
}

/// BEHAVIOURS 63: retained memory is bounded.
#[test]
fn b63_retention_is_bounded() {
    let config = SizedPoolConfig::default()
        .max_local_bytes(0)
        .max_shared_bytes(0);
    let pool = SizedPool::with_config(config).expect("valid");
    let bufs: Vec<_> = (0..100).map(|_| pool.alloc(64 * 1024)).collect();
    drop(bufs);
    let stats = pool.stats();
    // 2 in this thread's cache and 4 in the shared queue at most.
    assert!(stats.retained_bytes <= 6 * 64 * 1024, "{stats:?}");
    assert_eq!(stats.outstanding, 0);
    assert!(stats.discarded >= 94, "{stats:?}");
}

#[test]
fn two_pools_on_one_thread_stay_separate_and_balanced() {
    let a = SizedPool::new();
    let b = SizedPool::new();
    for _ in 0..10 {
        let x = a.alloc(100);
        let y = b.alloc(100);
        drop(x);
        drop(y);
    }
    for pool in [&a, &b] {
        let stats = pool.stats();
        assert_eq!(stats.outstanding, 0, "{stats:?}");
        assert_eq!(stats.allocated + stats.reused, 10, "{stats:?}");
    }
}

#[test]
fn pool_ids_are_64_bit_and_distinct() {
    let (a, b) = (SizedPool::new(), SizedPool::new());
    let id: u64 = a.shared.id;
    assert_ne!(id, 0);
    assert_ne!(id, b.shared.id);
}

#[test]
fn with_config_refuses_bad_bounds() {
    let config = SizedPoolConfig::default().min_class((1 << 63) + 1);
    let err = SizedPool::with_config(config).expect_err("refused");
    assert!(matches!(err, ConfigError::ClassTooLarge { .. }), "{err}");
}

#[test]
fn a_dropped_pool_frees_its_returns() {
    let pool = SizedPool::new();
    let buf = pool.alloc(64);
    drop(pool);
    drop(buf); // no pool to return to: freed, no panic
    let other = SizedPool::new();
    drop(other.alloc(64)); // the thread cache moves on cleanly
    assert_eq!(other.stats().outstanding, 0);
}
