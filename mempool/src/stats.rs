/// A snapshot of a pool's counters.
///
/// `outstanding` counts buffers handed out and not yet returned, including
/// buffers frozen into `Bytes` whose clones are still alive: a value that
/// keeps growing in a steady-state test is a leak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Buffers of a size class freshly taken from the system allocator.
    pub allocated: u64,
    /// Buffers served from the pool's caches instead of the allocator.
    pub reused: u64,
    /// Requests above the largest size class, served by the heap directly.
    pub oversize: u64,
    /// Buffers returned but not kept: caches full, or memory still shared.
    pub discarded: u64,
    /// Buffers handed out and not yet returned.
    pub outstanding: u64,
    /// Bytes of capacity held in the pool's caches, ready for reuse.
    pub retained_bytes: u64,
}
