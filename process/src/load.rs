//! The load limit: a bound on requests in flight, shared by the
//! connections of a server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A bound on requests in flight, shared by the connections of a server.
/// `0` means no bound.
#[derive(Debug, Default)]
pub struct LoadLimit {
    current: AtomicUsize,
    max: usize,
}

impl LoadLimit {
    /// A limit of `max` requests in flight (0: unlimited).
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(LoadLimit {
            current: AtomicUsize::new(0),
            max,
        })
    }

    /// The bound (0: unlimited).
    pub fn max(&self) -> usize {
        self.max
    }

    /// Requests in flight now.
    pub fn current(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    /// Takes a place, or `None` when the limit is reached. Racing callers
    /// cannot exceed it: the count rises first and falls back on refusal.
    pub fn try_acquire(self: &Arc<Self>) -> Option<LoadGuard> {
        let before = self.current.fetch_add(1, Ordering::AcqRel);
        if self.max != 0 && before >= self.max {
            self.current.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(LoadGuard(self.clone()))
    }
}

/// A place in a [`LoadLimit`], given back on drop.
#[derive(Debug)]
pub struct LoadGuard(Arc<LoadLimit>);

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_and_given_back() {
        let limit = LoadLimit::new(2);
        let (a, b) = (limit.try_acquire(), limit.try_acquire());
        assert!(a.is_some() && b.is_some());
        assert!(limit.try_acquire().is_none());
        assert_eq!(limit.current(), 2);
        drop(a);
        assert_eq!(limit.current(), 1);
        assert!(limit.try_acquire().is_some());
        let free = LoadLimit::new(0);
        let held: Vec<_> = (0..100).filter_map(|_| free.try_acquire()).collect();
        assert_eq!((held.len(), free.max()), (100, 0));
    }
}
