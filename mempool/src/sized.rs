//! The size-classed pool: per-thread free lists in front of shared queues.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};

use crate::buf::{Home, PoolBuf};
use crate::config::Layout;
use crate::local::{self, MAX_CLASSES};
use crate::shelf::Shelf;
use crate::{ConfigError, Pool, PoolStats, SizedPoolConfig};

/// A pool of power-of-two size classes with per-thread caches.
///
/// Allocation and return on a thread whose cache is warm touch no lock and
/// no shared atomic. A buffer dropped on another thread lands in that
/// thread's cache and overflows to a bounded shared queue per class, from
/// which every thread refills. Memory held is bounded by
/// [`SizedPoolConfig`]; returns beyond the bounds are freed and counted as
/// `discarded`.
///
/// Each thread caches for up to 4 pools at once (an io thread allocating
/// from net's chunk pool and a process pool in turn keeps both warm), so a
/// thread holds at most 4 × `max_local_bytes`. A thread that allocates
/// from a fifth pool flushes the cache of a dropped pool if it has one,
/// else of the pool it allocated from least recently, to that pool's
/// shared queue; a free never evicts a cache. Threads that cycle through
/// more pools stay correct and pay the shared queues' cost.
///
/// Cloning the pool clones a handle to the same pool.
#[derive(Clone)]
pub struct SizedPool {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    /// Unique for the life of the process: ids come from a 64-bit
    /// counter, which does not wrap in practice.
    pub(crate) id: u64,
    pub(crate) min_shift: u32,
    pub(crate) local_cap: Box<[u32]>,
    pub(crate) queues: Box<[Shelf]>,
    /// Counter blocks of the threads caching for this pool; a block is
    /// folded into `retired` when its thread exits or switches pools.
    threads: Mutex<Vec<Arc<Counters>>>,
    /// Thread caches ever started for this pool (a thread that is evicted
    /// and comes back counts twice).
    adoptions: AtomicU64,
    pub(crate) retired: Counters,
}

/// Counters of one thread for one pool. Written only by that thread (a
/// plain load and store, no read-modify-write), read by `stats()`.
///
/// The fast path touches one counter per operation: its class's entry in
/// `local_reused` or `local_released`. The bytes those buffers moved are
/// not counted there but derived by `stats()` from the class sizes, which
/// keeps a second read-modify-write off the path.
#[derive(Default, Debug)]
pub(crate) struct Counters {
    pub(crate) allocated: AtomicU64,
    /// Buffers served from a shared queue.
    pub(crate) reused: AtomicU64,
    pub(crate) oversize: AtomicU64,
    pub(crate) discarded: AtomicU64,
    /// Buffers returned beside the thread caches (to a shared queue, or
    /// dropped because they were regrown).
    pub(crate) released: AtomicU64,
    /// Bytes that entered the pool minus bytes that left it, outside the
    /// thread caches' fast path; one block may wrap below zero, only the
    /// sum over blocks means anything.
    pub(crate) retained: AtomicU64,
    /// Buffers served from this thread's list of each class.
    pub(crate) local_reused: [AtomicU64; MAX_CLASSES],
    /// Buffers returned to this thread's list of each class.
    pub(crate) local_released: [AtomicU64; MAX_CLASSES],
}

impl Counters {
    /// `counter += by` from the owning thread.
    #[inline(always)]
    pub(crate) fn bump(counter: &AtomicU64, by: u64) {
        counter.store(counter.load(Relaxed).wrapping_add(by), Relaxed);
    }

    /// `counter += by` from any thread.
    pub(crate) fn add(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Relaxed);
    }

    fn fields(&self) -> impl Iterator<Item = &AtomicU64> {
        [
            &self.allocated,
            &self.reused,
            &self.oversize,
            &self.discarded,
            &self.released,
            &self.retained,
        ]
        .into_iter()
        .chain(&self.local_reused)
        .chain(&self.local_released)
    }

    fn fold_into(&self, other: &Counters) {
        for (from, to) in self.fields().zip(other.fields()) {
            to.fetch_add(from.load(Relaxed), Relaxed);
        }
    }
}

/// The next pool id; 0 means "no pool" in the thread caches.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// Pools by id, for returns on threads that never allocated from them.
static REGISTRY: Mutex<Vec<(u64, Weak<Shared>)>> = Mutex::new(Vec::new());

pub(crate) fn lookup(id: u64) -> Option<Arc<Shared>> {
    let registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    registry
        .iter()
        .find(|(i, _)| *i == id)
        .and_then(|(_, w)| w.upgrade())
}

impl Shared {
    pub(crate) fn class_size(&self, class: usize) -> usize {
        1 << (self.min_shift as usize + class)
    }

    #[inline(always)]
    pub(crate) fn class_of(&self, size: usize) -> Option<usize> {
        // ceil(log2(size)), 0 for sizes 0 and 1: the bit length of size - 1.
        let shift = usize::BITS - size.saturating_sub(1).leading_zeros();
        let class = shift.saturating_sub(self.min_shift) as usize;
        (class < self.queues.len()).then_some(class)
    }

    /// A counter block for a thread that starts caching for this pool.
    pub(crate) fn register_thread(&self) -> Arc<Counters> {
        self.adoptions.fetch_add(1, Relaxed);
        let counters = Arc::new(Counters::default());
        self.threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(counters.clone());
        counters
    }

    /// Thread caches ever started for this pool.
    #[cfg(test)]
    pub(crate) fn threads_registered(&self) -> u64 {
        self.adoptions.load(Relaxed)
    }

    /// Folds a thread's counter block into the totals and forgets it.
    pub(crate) fn retire_thread(&self, counters: &Arc<Counters>) {
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        threads.retain(|c| !Arc::ptr_eq(c, counters));
        counters.fold_into(&self.retired);
    }

    /// Puts a buffer of `class` in the shared queue, emptied, or frees it.
    pub(crate) fn push_shared(&self, class: usize, mut buf: Vec<u8>, counters: &Counters) {
        // Whoever takes it next appends to it: nothing of its last owner's
        // message may stay in front.
        buf.clear();
        if self.queues[class].push(buf).is_err() {
            Counters::add(&counters.discarded, 1);
            Counters::add(
                &counters.retained,
                0u64.wrapping_sub(self.class_size(class) as u64),
            );
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        registry.retain(|(id, _)| *id != self.id);
    }
}

impl SizedPool {
    /// A pool with the default classes (64 B .. 64 KiB) and bounds.
    pub fn new() -> Self {
        match SizedPool::with_config(SizedPoolConfig::default()) {
            Ok(pool) => pool,
            Err(e) => unreachable!("the default configuration is valid: {e}"),
        }
    }

    /// A pool with the given classes and bounds; fails when the class
    /// bounds are out of range ([`ConfigError`]), as a configuration read
    /// from a file may be.
    pub fn with_config(config: SizedPoolConfig) -> Result<Self, ConfigError> {
        let Layout { min_shift, classes } = config.layout()?;
        let count_for = |budget: usize, size: usize, lo: usize, hi: usize| {
            (budget / classes / size).clamp(lo, hi)
        };
        let sizes: Vec<usize> = (0..classes)
            .map(|c| 1usize << (min_shift as usize + c))
            .collect();
        let shared = Arc::new(Shared {
            id: NEXT_ID.fetch_add(1, Relaxed),
            min_shift,
            local_cap: sizes
                .iter()
                .map(|&s| count_for(config.max_local_bytes, s, 2, 256) as u32)
                .collect(),
            queues: sizes
                .iter()
                .map(|&s| Shelf::new(count_for(config.max_shared_bytes, s, 4, 4096)))
                .collect(),
            threads: Mutex::new(Vec::new()),
            adoptions: AtomicU64::new(0),
            retired: Counters::default(),
        });
        REGISTRY
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((shared.id, Arc::downgrade(&shared)));
        Ok(SizedPool { shared })
    }

    /// The capacity of the class serving `size`, or `None` above the largest.
    pub fn class_size_for(&self, size: usize) -> Option<usize> {
        self.shared
            .class_of(size)
            .map(|c| self.shared.class_size(c))
    }
}

impl Default for SizedPool {
    fn default() -> Self {
        SizedPool::new()
    }
}

impl Pool for SizedPool {
    #[inline(always)]
    fn alloc(&self, capacity: usize) -> PoolBuf {
        let shared = &self.shared;
        let Some(class) = shared.class_of(capacity) else {
            Counters::add(&shared.retired.oversize, 1);
            return PoolBuf::unpooled(capacity);
        };
        let shift = (shared.min_shift as usize + class) as u8;
        let home = Home::Sized {
            pool: shared.id,
            class: class as u8,
            shift,
        };
        // Each arm builds the buffer in place: merging the two `Vec`s first
        // costs the fast path a copy.
        match local::pop(shared.id, class, 1 << shift) {
            Some(buf) => PoolBuf::new(buf, home),
            None => PoolBuf::new(local::alloc_slow(shared, class), home),
        }
    }

    fn stats(&self) -> PoolStats {
        let total = Counters::default();
        {
            // Under the lock `retire_thread` folds a leaving thread's
            // block with: each block is counted once, live or retired.
            let threads = self
                .shared
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            self.shared.retired.fold_into(&total);
            for counters in threads.iter() {
                counters.fold_into(&total);
            }
        }
        let get = |c: &AtomicU64| c.load(Relaxed);
        let (mut reused, mut released, mut retained) = (
            get(&total.reused),
            get(&total.released),
            get(&total.retained),
        );
        for class in 0..self.shared.queues.len() {
            let (out, back) = (
                get(&total.local_reused[class]),
                get(&total.local_released[class]),
            );
            reused = reused.wrapping_add(out);
            released = released.wrapping_add(back);
            let size = self.shared.class_size(class) as u64;
            retained = retained.wrapping_add(back.wrapping_sub(out).wrapping_mul(size));
        }
        let pooled_out = get(&total.allocated) + reused;
        PoolStats {
            allocated: get(&total.allocated),
            reused,
            oversize: get(&total.oversize),
            discarded: get(&total.discarded),
            // Oversize buffers are plain heap buffers: not counted out.
            outstanding: pooled_out.wrapping_sub(released),
            retained_bytes: retained,
        }
    }
}

/// Takes back a buffer of pool `pool`, class `class` (size `1 << shift`).
#[inline(always)]
pub(crate) fn release(pool: u64, class: u8, shift: u8, buf: Vec<u8>) {
    if let Err(buf) = local::push(pool, class as usize, 1 << shift, buf) {
        local::release_slow(pool, class as usize, buf);
    }
}

impl fmt::Debug for SizedPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SizedPool")
            .field("id", &self.shared.id)
            .field("classes", &self.shared.queues.len())
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests;
