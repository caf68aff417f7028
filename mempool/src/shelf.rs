//! A bounded shared stack of free buffers: a pool's second level, behind
//! the per-thread caches.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Free buffers of one size class shared by every thread, at most `cap`.
///
/// The per-thread caches in front take almost every allocation and
/// return, so this is touched once per cache refill or spill; a short
/// lock then costs about what a lock-free queue would. An empty shelf is
/// seen without taking the lock.
pub(crate) struct Shelf {
    items: Mutex<Vec<Vec<u8>>>,
    /// Buffers on the shelf, kept beside the lock for the empty check.
    len: AtomicUsize,
    cap: usize,
}

impl Shelf {
    /// An empty shelf holding at most `cap` buffers.
    pub(crate) fn new(cap: usize) -> Self {
        Shelf {
            items: Mutex::new(Vec::new()),
            len: AtomicUsize::new(0),
            cap,
        }
    }

    /// Shelves `buf`, or hands it back when the shelf is full.
    pub(crate) fn push(&self, buf: Vec<u8>) -> Result<(), Vec<u8>> {
        if self.len.load(Ordering::Relaxed) >= self.cap {
            return Err(buf);
        }
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        if items.len() >= self.cap {
            return Err(buf);
        }
        items.push(buf);
        self.len.store(items.len(), Ordering::Relaxed);
        Ok(())
    }

    /// Takes a buffer, if any.
    pub(crate) fn pop(&self) -> Option<Vec<u8>> {
        if self.len.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let buf = items.pop();
        self.len.store(items.len(), Ordering::Relaxed);
        buf
    }

    /// Buffers on the shelf now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shelf_keeps_at_most_its_cap_and_hands_back_the_rest() {
        let shelf = Shelf::new(2);
        assert!(shelf.pop().is_none());
        shelf.push(vec![1]).unwrap();
        shelf.push(vec![2]).unwrap();
        assert_eq!(shelf.push(vec![3]), Err(vec![3]));
        assert_eq!(shelf.len(), 2);
        assert_eq!(shelf.pop(), Some(vec![2]));
        assert_eq!(shelf.pop(), Some(vec![1]));
        assert_eq!((shelf.pop(), shelf.len()), (None, 0));
    }

    #[test]
    fn threads_sharing_a_shelf_lose_no_buffer() {
        let shelf = std::sync::Arc::new(Shelf::new(1 << 20));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let shelf = shelf.clone();
                std::thread::spawn(move || {
                    let mut taken = 0;
                    for i in 0..10_000 {
                        shelf.push(vec![t; i % 7]).unwrap();
                        if i % 3 == 0 && shelf.pop().is_some() {
                            taken += 1;
                        }
                    }
                    taken
                })
            })
            .collect();
        let taken: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(shelf.len() + taken, 40_000);
    }
}
