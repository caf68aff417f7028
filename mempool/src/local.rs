//! Per-thread caches: one intrusive free list per size class.
//!
//! A cached buffer's first 8 bytes hold the pointer to the next cached
//! buffer of its class, as glibc's tcache does; popping and pushing are a
//! few loads and stores on a thread-local with no destructor, hence no lock,
//! no shared atomic and no lazy-initialisation check on the fast path. The
//! list belongs to one pool at a time; a destructor-carrying companion
//! (`OWNER`) flushes the lists to that pool when the thread exits or moves
//! to another pool.
#![allow(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::mem::ManuallyDrop;
use std::ptr;
use std::sync::{Arc, Weak};

use crate::sized::{Counters, Shared, lookup};

/// Most classes a pool can have.
pub(crate) const MAX_CLASSES: usize = 16;

struct Fast {
    /// Id of the pool the lists belong to; 0 for none.
    pool: Cell<u64>,
    heads: [Cell<*mut u8>; MAX_CLASSES],
    counts: [Cell<u32>; MAX_CLASSES],
    caps: [Cell<u32>; MAX_CLASSES],
    /// The counter block of this thread for `pool`, kept alive by `OWNER`.
    counters: Cell<*const Counters>,
}

struct Owner {
    id: u64,
    min_shift: u32,
    shared: Weak<Shared>,
    counters: Arc<Counters>,
}

thread_local! {
    static FAST: Fast = const {
        Fast {
            pool: Cell::new(0),
            heads: [const { Cell::new(ptr::null_mut()) }; MAX_CLASSES],
            counts: [const { Cell::new(0) }; MAX_CLASSES],
            caps: [const { Cell::new(0) }; MAX_CLASSES],
            counters: Cell::new(ptr::null()),
        }
    };
    static OWNER: RefCell<Option<Owner>> = const { RefCell::new(None) };
}

/// This thread's lists, reached without the closure `LocalKey::with` takes
/// (which the compiler does not always inline, leaving an indirect call on
/// the fast path).
#[inline(always)]
fn fast() -> &'static Fast {
    // SAFETY: `FAST` has a const initialiser and no destructor, so its
    // storage is valid for the whole life of this thread; `Fast` is `!Sync`,
    // so the reference cannot leave the thread that owns the storage.
    FAST.with(|f| unsafe { &*(f as *const Fast) })
}

impl Fast {
    fn counters(&self) -> &Counters {
        // SAFETY: `counters` is set together with `pool != 0` from an
        // `Arc<Counters>` that this thread's `OWNER` holds until it resets
        // both; callers check `pool` first.
        unsafe { &*self.counters.get() }
    }

    /// Unlinks the head of `class`'s list, if any.
    #[inline(always)]
    fn take(&self, class: usize, size: usize) -> Option<Vec<u8>> {
        let head = self.heads[class].get();
        if head.is_null() {
            return None;
        }
        // SAFETY: every pointer on a list is the start of an allocation of
        // exactly `size` bytes (align 1) from the global allocator, owned by
        // the list; `link` wrote the next pointer into its first 8 bytes
        // (`size >= 16`), unaligned.
        let next = unsafe { head.cast::<*mut u8>().read_unaligned() };
        self.heads[class].set(next);
        self.counts[class].set(self.counts[class].get() - 1);
        // SAFETY: as above; the allocation was a `Vec<u8>` of capacity
        // `size`, and a length of 0 needs no initialised element.
        Some(unsafe { Vec::from_raw_parts(head, 0, size) })
    }

    /// Links `buf` (capacity exactly `size`, at least 16) at the head.
    #[inline(always)]
    fn link(&self, class: usize, buf: Vec<u8>) {
        debug_assert!(buf.capacity() >= 16);
        let mut buf = ManuallyDrop::new(buf);
        let p = buf.as_mut_ptr();
        // SAFETY: the allocation has at least 16 bytes and is ours now
        // (`ManuallyDrop` forgets the `Vec`); `take` rebuilds it.
        unsafe { p.cast::<*mut u8>().write_unaligned(self.heads[class].get()) };
        self.heads[class].set(p);
        self.counts[class].set(self.counts[class].get() + 1);
    }
}

/// Fast path of `alloc`: a buffer of `class` from this thread's list.
#[inline(always)]
pub(crate) fn pop(pool: u64, class: usize, size: usize) -> Option<Vec<u8>> {
    let f = fast();
    if f.pool.get() != pool {
        return None;
    }
    let buf = f.take(class, size)?;
    let counters = f.counters();
    Counters::bump(&counters.reused, 1);
    Counters::bump(&counters.retained, 0u64.wrapping_sub(size as u64));
    Some(buf)
}

/// Fast path of a return: onto this thread's list if it caches for `pool`,
/// the buffer is intact and the list has room.
#[inline(always)]
pub(crate) fn push(pool: u64, class: usize, size: usize, buf: Vec<u8>) -> Result<(), Vec<u8>> {
    let f = fast();
    if f.pool.get() != pool
        || buf.capacity() != size
        || f.counts[class].get() >= f.caps[class].get()
    {
        return Err(buf);
    }
    f.link(class, buf);
    let counters = f.counters();
    Counters::bump(&counters.released, 1);
    Counters::bump(&counters.retained, size as u64);
    Ok(())
}

/// Makes this thread cache for `shared`, flushing the lists of the pool it
/// cached for before. False when the thread is exiting.
fn adopt(shared: &Arc<Shared>) -> bool {
    OWNER
        .try_with(|owner| {
            let Ok(mut owner) = owner.try_borrow_mut() else {
                return false;
            };
            if let Some(old) = owner.take() {
                drop(old); // flushes the lists to the old pool
            }
            let counters = shared.register_thread();
            let f = fast();
            for class in 0..MAX_CLASSES {
                f.heads[class].set(ptr::null_mut());
                f.counts[class].set(0);
                f.caps[class].set(shared.local_cap.get(class).copied().unwrap_or(0));
            }
            f.counters.set(Arc::as_ptr(&counters));
            f.pool.set(shared.id);
            *owner = Some(Owner {
                id: shared.id,
                min_shift: shared.min_shift,
                shared: Arc::downgrade(shared),
                counters,
            });
            true
        })
        .unwrap_or(false)
}

impl Drop for Owner {
    fn drop(&mut self) {
        let shared = self.shared.upgrade();
        let f = fast();
        if f.pool.get() == self.id {
            for class in 0..MAX_CLASSES {
                let size = 1usize << (self.min_shift as usize + class);
                while let Some(buf) = f.take(class, size) {
                    match &shared {
                        Some(shared) => shared.push_shared(class, buf, &self.counters),
                        None => drop(buf),
                    }
                }
            }
            f.pool.set(0);
            f.counters.set(ptr::null());
        }
        if let Some(shared) = shared {
            shared.retire_thread(&self.counters);
        }
    }
}

/// Slow path of `alloc`: adopt the pool, then the shared queue, then the
/// system allocator.
#[cold]
pub(crate) fn alloc_slow(shared: &Arc<Shared>, class: usize) -> Vec<u8> {
    let size = shared.class_size(class);
    if fast().pool.get() == shared.id || adopt(shared) {
        if let Some(buf) = pop(shared.id, class, size) {
            return buf;
        }
    }
    let owned = fast().pool.get() == shared.id;
    let add = |counter: fn(&Counters) -> &std::sync::atomic::AtomicU64, by: u64| {
        if owned {
            Counters::bump(counter(fast().counters()), by);
        } else {
            Counters::add(counter(&shared.retired), by);
        }
    };
    match shared.queues[class].pop() {
        Some(buf) => {
            add(|c| &c.reused, 1);
            add(|c| &c.retained, 0u64.wrapping_sub(size as u64));
            buf
        }
        None => {
            add(|c| &c.allocated, 1);
            Vec::with_capacity(size)
        }
    }
}

/// Slow path of a return: spill a full list, adopt the pool on a thread
/// that caches for none, or hand the buffer to its pool's shared queue.
#[cold]
pub(crate) fn release_slow(pool: u64, class: usize, buf: Vec<u8>) {
    let owned = fast().pool.get() == pool;
    let shared = if owned {
        OWNER
            .try_with(|o| o.borrow().as_ref().and_then(|o| o.shared.upgrade()))
            .ok()
            .flatten()
    } else {
        lookup(pool)
    };
    let Some(shared) = shared else { return }; // the pool is gone: freed
    let size = shared.class_size(class);
    if buf.capacity() != size {
        // Regrown or shrunk by its user: not a buffer of this class any more.
        Counters::add(&shared.retired.released, 1);
        Counters::add(&shared.retired.discarded, 1);
        return;
    }
    if owned {
        spill(&shared, class);
    } else if fast().pool.get() == 0 {
        adopt(&shared);
    }
    if let Err(buf) = push(pool, class, size, buf) {
        // Another pool owns this thread's cache, or the thread is exiting.
        Counters::add(&shared.retired.released, 1);
        Counters::add(&shared.retired.retained, size as u64);
        shared.push_shared(class, buf, &shared.retired);
    }
}

/// Moves half of a full list to the shared queue, so that a thread that
/// only frees (a writer, a consumer) feeds the threads that allocate.
fn spill(shared: &Shared, class: usize) {
    let size = shared.class_size(class);
    let f = fast();
    let half = f.counts[class].get() / 2 + 1;
    for _ in 0..half {
        let Some(buf) = f.take(class, size) else {
            break;
        };
        shared.push_shared(class, buf, f.counters());
    }
}
