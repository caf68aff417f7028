//! Buffer pools for walle: size-classed, thread-cached, bounded, counted.
//!
//! A [`Pool`] hands out [`PoolBuf`]s: writable buffers that go back to the
//! pool they came from when their last owner drops them. There is no explicit
//! free to forget. A buffer is writable while one owner holds it and freezes
//! into a [`bytes::Bytes`] ([`PoolBuf::freeze`]) whose last clone returns it.
//!
//! Two pools ship here:
//! - [`SizedPool`]: power-of-two size classes (64 B .. 64 KiB by default),
//!   thread-local caches in front of one bounded shared queue per class, so a
//!   buffer freed on another thread comes back. Requests above the largest
//!   class go to the heap and are counted.
//! - [`HeapPool`]: every buffer straight from the system allocator, counted.
//!
//! The thread caches are intrusive free lists; they and the hand-over of a
//! buffer when a [`PoolBuf`] drops are the only `unsafe` code in walle, each
//! block with its `SAFETY` note. Everything else is safe.
//!
//! This crate does not frame, encode or send anything; it only owns memory.
//!
//! ```
//! use walle_mempool::{Pool, SizedPool};
//!
//! let pool = SizedPool::new();
//! let mut buf = pool.alloc(100); // served from the 128 B class
//! buf.extend_from_slice(b"hello");
//! let frozen = buf.freeze(); // a `Bytes`; dropping it returns the buffer
//! assert_eq!(&frozen[..], b"hello");
//! drop(frozen);
//!
//! let again = pool.alloc(100); // reused, not allocated
//! assert!(again.is_empty());
//! let stats = pool.stats();
//! assert_eq!((stats.allocated, stats.reused, stats.outstanding), (1, 1, 1));
//! ```
#![deny(missing_docs, missing_debug_implementations)]
#![warn(clippy::unwrap_used)]

mod buf;
mod config;
mod heap;
mod local;
mod shelf;
mod sized;
mod stats;

pub use buf::{PoolBuf, Recycle};
pub use config::{ConfigError, SizedPoolConfig};
pub use heap::HeapPool;
pub use sized::SizedPool;
pub use stats::PoolStats;

/// A source of [`PoolBuf`]s.
///
/// Implementations decide where memory comes from and whether it is kept
/// for reuse. The trait is object-safe: servers hold an `Arc<dyn Pool>` when
/// the pool is picked at run time.
///
/// A custom pool returns buffers through [`PoolBuf::with_recycler`]:
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use walle_mempool::{Pool, PoolBuf, Recycle};
///
/// #[derive(Debug, Default)]
/// struct Counting(AtomicUsize);
/// impl Recycle for Counting {
///     fn recycle(&self, _buf: Vec<u8>) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// #[derive(Debug, Default)]
/// struct MyPool(Arc<Counting>);
/// impl Pool for MyPool {
///     fn alloc(&self, capacity: usize) -> PoolBuf {
///         PoolBuf::with_recycler(Vec::with_capacity(capacity), self.0.clone())
///     }
/// }
///
/// let pool = MyPool::default();
/// drop(pool.alloc(10));
/// assert_eq!(pool.0.0.load(Ordering::Relaxed), 1);
/// ```
pub trait Pool: Send + Sync + 'static {
    /// Returns an empty buffer with room for at least `capacity` bytes.
    fn alloc(&self, capacity: usize) -> PoolBuf;

    /// Counters describing the pool's traffic and retained memory.
    fn stats(&self) -> PoolStats {
        PoolStats::default()
    }
}

impl<P: Pool + ?Sized> Pool for std::sync::Arc<P> {
    fn alloc(&self, capacity: usize) -> PoolBuf {
        (**self).alloc(capacity)
    }
    fn stats(&self) -> PoolStats {
        (**self).stats()
    }
}
