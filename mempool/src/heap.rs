use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::{Pool, PoolBuf, PoolStats, Recycle};

/// A pool that keeps nothing: every buffer comes from the system allocator
/// and is freed on return. Counts what it hands out, so leaks stay visible.
///
/// Useful as a baseline, and where memory must go back to the system at once.
#[derive(Debug, Clone, Default)]
pub struct HeapPool {
    counters: Arc<HeapCounters>,
}

#[derive(Debug, Default)]
struct HeapCounters {
    allocated: AtomicU64,
    released: AtomicU64,
}

impl Recycle for HeapCounters {
    fn recycle(&self, buf: Vec<u8>) {
        self.released.fetch_add(1, Relaxed);
        drop(buf);
    }
}

impl HeapPool {
    /// A new heap pool.
    pub fn new() -> Self {
        HeapPool::default()
    }
}

impl Pool for HeapPool {
    fn alloc(&self, capacity: usize) -> PoolBuf {
        self.counters.allocated.fetch_add(1, Relaxed);
        PoolBuf::with_recycler(Vec::with_capacity(capacity), self.counters.clone())
    }

    fn stats(&self) -> PoolStats {
        let allocated = self.counters.allocated.load(Relaxed);
        PoolStats {
            allocated,
            outstanding: allocated - self.counters.released.load(Relaxed),
            ..PoolStats::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_pool_counts_outstanding() {
        let pool = HeapPool::new();
        let a = pool.alloc(10).freeze();
        let b = pool.alloc(10);
        assert_eq!(pool.stats().outstanding, 2);
        drop((a, b));
        assert_eq!(
            pool.stats(),
            PoolStats {
                allocated: 2,
                ..PoolStats::default()
            }
        );
    }
}
