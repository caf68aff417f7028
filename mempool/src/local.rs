//! Per-thread caches: for each of a few pools, one intrusive free list per
//! size class.
//!
//! A cached buffer's first 8 bytes hold the pointer to the next cached
//! buffer of its class, as glibc's tcache does, and one buffer per class
//! waits in front of the list; popping and pushing are a
//! few loads and stores on a thread-local with no destructor, hence no lock,
//! no shared atomic and no lazy-initialisation check on the fast path.
//!
//! A thread caches for up to [`SLOTS`] pools at once (net's outbound chunk
//! pool and a process pool on one io thread, say), one slot each. A thread
//! that allocates from a pool it has no slot for takes a free slot, else
//! evicts a slot whose pool is gone, else the least recently used slot
//! (the one whose last allocation is the oldest); a free never evicts. A
//! destructor-carrying companion (`OWNERS`) flushes a slot's lists to its
//! pool when the slot is evicted or the thread exits.
#![allow(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::mem::ManuallyDrop;
use std::ptr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};

use crate::sized::{Counters, Shared, lookup};

/// Most classes a pool can have.
pub(crate) const MAX_CLASSES: usize = 16;

/// Pools one thread caches for at once.
pub(crate) const SLOTS: usize = 4;

/// One pool's lists on this thread.
struct Slot {
    /// Id of the pool the lists belong to; 0 for none.
    pool: Cell<u64>,
    /// One buffer of each class held beside its list, taken first and
    /// refilled first: an allocation that follows a free (encode, send,
    /// drop, encode again) takes it back with one load and one store, no
    /// link to follow and no count to change.
    hot: [Cell<*mut u8>; MAX_CLASSES],
    heads: [Cell<*mut u8>; MAX_CLASSES],
    /// Buffers each list may still take: its cap minus its length, one
    /// field so that a return checks one value.
    room: [Cell<u32>; MAX_CLASSES],
    /// Each list's cap: the class's local cap less the one in `hot`.
    caps: [Cell<u32>; MAX_CLASSES],
    /// The counter block of this thread for `pool`, kept alive by `OWNERS`.
    counters: Cell<*const Counters>,
    /// The thread's `clock` at the last allocation served from this slot.
    used: Cell<u64>,
}

struct Fast {
    slots: [Slot; SLOTS],
    /// Counts switches between slots, to order them by last use.
    clock: Cell<u64>,
    /// The slot the last allocation was served from: using it again does
    /// not change the order, so the fast path only compares against it.
    last: Cell<*const Slot>,
}

/// What keeps a slot's pool and counter block alive, and flushes the slot
/// when dropped.
struct Owner {
    slot: usize,
    id: u64,
    min_shift: u32,
    shared: Weak<Shared>,
    counters: Arc<Counters>,
}

impl Slot {
    const fn empty() -> Self {
        Slot {
            pool: Cell::new(0),
            hot: [const { Cell::new(ptr::null_mut()) }; MAX_CLASSES],
            heads: [const { Cell::new(ptr::null_mut()) }; MAX_CLASSES],
            room: [const { Cell::new(0) }; MAX_CLASSES],
            caps: [const { Cell::new(0) }; MAX_CLASSES],
            counters: Cell::new(ptr::null()),
            used: Cell::new(0),
        }
    }
}

thread_local! {
    static FAST: Fast = const {
        Fast {
            slots: [const { Slot::empty() }; SLOTS],
            clock: Cell::new(0),
            last: Cell::new(ptr::null()),
        }
    };
    static OWNERS: RefCell<[Option<Owner>; SLOTS]> =
        const { RefCell::new([const { None }; SLOTS]) };
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
    /// The index of the slot caching for `pool` (never 0), if any.
    #[inline(always)]
    fn index_of(&self, pool: u64) -> Option<usize> {
        self.slots.iter().position(|s| s.pool.get() == pool)
    }

    /// The slot caching for `pool` (never 0), if any; on the fast paths,
    /// where a reference (one constant address per slot) is cheaper than
    /// an index to scale.
    #[inline(always)]
    fn slot_of(&self, pool: u64) -> Option<&Slot> {
        self.slots.iter().find(|s| s.pool.get() == pool)
    }

    /// Marks `slot` as used now. The order of last use changes only when
    /// a slot other than the last one is used, so only then is a stamp
    /// taken: the order stays exact and a run of allocations from one pool
    /// pays one comparison each.
    #[inline(always)]
    fn touch(&self, slot: &Slot) {
        if !ptr::eq(self.last.get(), slot) {
            self.stamp(slot);
        }
    }

    #[inline(never)]
    fn stamp(&self, slot: &Slot) {
        let now = self.clock.get().wrapping_add(1);
        self.clock.set(now);
        slot.used.set(now);
        self.last.set(slot);
    }
}

impl Slot {
    fn counters(&self) -> &Counters {
        // SAFETY: `counters` is set together with `pool != 0` from an
        // `Arc<Counters>` that this thread's `OWNERS` holds until it resets
        // both; callers reach a slot through its pool id, so `pool != 0`.
        unsafe { &*self.counters.get() }
    }

    /// Unlinks the head of `class`'s list, if any.
    #[inline(always)]
    fn take(&self, class: usize, size: usize) -> Option<Vec<u8>> {
        // Classes are below MAX_CLASSES (`SizedPoolConfig` validates them):
        // the mask only spares a bounds check.
        debug_assert!(class < MAX_CLASSES);
        let class = class & (MAX_CLASSES - 1);
        let hot = self.hot[class].get();
        if !hot.is_null() {
            self.hot[class].set(ptr::null_mut());
            // SAFETY: `hot` holds a whole allocation of `size` bytes (align
            // 1) from the global allocator, a `Vec<u8>` that `push` forgot.
            return Some(unsafe { Vec::from_raw_parts(hot, 0, size) });
        }
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
        self.room[class].set(self.room[class].get() + 1);
        // SAFETY: as above; the allocation was a `Vec<u8>` of capacity
        // `size`, and a length of 0 needs no initialised element.
        Some(unsafe { Vec::from_raw_parts(head, 0, size) })
    }

    /// Links `buf` (capacity exactly its class size, at least 16: classes
    /// are validated by `SizedPoolConfig`) at the head.
    #[inline(always)]
    fn link(&self, class: usize, buf: Vec<u8>) {
        debug_assert!(buf.capacity() >= 16 && class < MAX_CLASSES);
        let class = class & (MAX_CLASSES - 1);
        let mut buf = ManuallyDrop::new(buf);
        let p = buf.as_mut_ptr();
        // SAFETY: the allocation has at least 16 bytes and is ours now
        // (`ManuallyDrop` forgets the `Vec`); `take` rebuilds it.
        unsafe { p.cast::<*mut u8>().write_unaligned(self.heads[class].get()) };
        self.heads[class].set(p);
        self.room[class].set(self.room[class].get() - 1);
    }
}

/// Fast path of `alloc`: a buffer of `class` from this thread's list.
#[inline(always)]
pub(crate) fn pop(pool: u64, class: usize, size: usize) -> Option<Vec<u8>> {
    let f = fast();
    let slot = f.slot_of(pool)?;
    let buf = slot.take(class, size)?;
    f.touch(slot);
    Counters::bump(&slot.counters().local_reused[class & (MAX_CLASSES - 1)], 1);
    Some(buf)
}

/// Fast path of a return: onto this thread's list if it caches for `pool`,
/// the buffer is intact and the list has room.
#[inline(always)]
pub(crate) fn push(pool: u64, class: usize, size: usize, buf: Vec<u8>) -> Result<(), Vec<u8>> {
    let Some(slot) = fast().slot_of(pool) else {
        return Err(buf);
    };
    let class = class & (MAX_CLASSES - 1); // as in `take`
    if buf.capacity() != size {
        return Err(buf);
    }
    if slot.hot[class].get().is_null() {
        slot.hot[class].set(ManuallyDrop::new(buf).as_mut_ptr());
    } else if slot.room[class].get() == 0 {
        return Err(buf);
    } else {
        slot.link(class, buf);
    }
    Counters::bump(&slot.counters().local_released[class], 1);
    Ok(())
}

/// Gives `shared` a slot on this thread: a free one, else (with `evict`)
/// the slot of a pool that is gone, else the least recently used one,
/// whose lists are flushed to their pool. `None` when no slot may be taken
/// or the thread is exiting.
fn adopt(shared: &Arc<Shared>, evict: bool) -> Option<usize> {
    OWNERS
        .try_with(|owners| {
            let mut owners = owners.try_borrow_mut().ok()?;
            let f = fast();
            let free = owners.iter().position(Option::is_none);
            let index = match free {
                Some(index) => index,
                None if !evict => return None,
                None => owners
                    .iter()
                    .position(|o| o.as_ref().is_some_and(|o| o.shared.strong_count() == 0))
                    .or_else(|| (0..SLOTS).min_by_key(|&i| f.slots[i].used.get()))?,
            };
            drop(owners[index].take()); // flushes the evicted pool's lists
            let counters = shared.register_thread();
            let slot = &f.slots[index];
            for class in 0..MAX_CLASSES {
                slot.hot[class].set(ptr::null_mut());
                slot.heads[class].set(ptr::null_mut());
                // One of the class's buffers waits in `hot`, beside the list.
                let cap = shared.local_cap.get(class).copied().unwrap_or(0);
                let cap = cap.saturating_sub(1);
                slot.caps[class].set(cap);
                slot.room[class].set(cap);
            }
            slot.counters.set(Arc::as_ptr(&counters));
            slot.pool.set(shared.id);
            f.stamp(slot);
            owners[index] = Some(Owner {
                slot: index,
                id: shared.id,
                min_shift: shared.min_shift,
                shared: Arc::downgrade(shared),
                counters,
            });
            Some(index)
        })
        .ok()
        .flatten()
}

impl Drop for Owner {
    fn drop(&mut self) {
        let shared = self.shared.upgrade();
        let slot = &fast().slots[self.slot];
        if slot.pool.get() == self.id {
            for class in 0..MAX_CLASSES {
                let size = 1usize << (self.min_shift as usize + class);
                while let Some(buf) = slot.take(class, size) {
                    match &shared {
                        Some(shared) => shared.push_shared(class, buf, &self.counters),
                        None => drop(buf),
                    }
                }
            }
            slot.pool.set(0);
            slot.counters.set(ptr::null());
            slot.used.set(0);
            let f = fast();
            if ptr::eq(f.last.get(), slot) {
                f.last.set(ptr::null());
            }
        }
        if let Some(shared) = shared {
            shared.retire_thread(&self.counters);
        }
    }
}

/// Slow path of `alloc`: a slot for the pool (taking one if need be), then
/// the shared queue, then the system allocator.
#[cold]
pub(crate) fn alloc_slow(shared: &Arc<Shared>, class: usize) -> Vec<u8> {
    let size = shared.class_size(class);
    let f = fast();
    let index = f.index_of(shared.id).or_else(|| adopt(shared, true));
    let add = |counter: fn(&Counters) -> &AtomicU64, by: u64| match index {
        Some(index) => Counters::bump(counter(f.slots[index].counters()), by),
        None => Counters::add(counter(&shared.retired), by),
    };
    if let Some(index) = index {
        f.touch(&f.slots[index]);
    }
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

/// Slow path of a return: spill a full list, take a free slot for a pool
/// this thread has none for, or hand the buffer to its pool's shared queue.
#[cold]
pub(crate) fn release_slow(pool: u64, class: usize, buf: Vec<u8>) {
    let f = fast();
    let index = f.index_of(pool);
    let shared = match index {
        Some(index) => OWNERS
            .try_with(|owners| {
                let owners = owners.try_borrow().ok()?;
                owners[index].as_ref()?.shared.upgrade()
            })
            .ok()
            .flatten(),
        None => lookup(pool),
    };
    let Some(shared) = shared else { return }; // the pool is gone: freed
    let size = shared.class_size(class);
    if buf.capacity() != size {
        // Regrown or shrunk by its user: not a buffer of this class any more.
        Counters::add(&shared.retired.released, 1);
        Counters::add(&shared.retired.discarded, 1);
        return;
    }
    match index {
        Some(index) => spill(&shared, &f.slots[index], class),
        None => {
            adopt(&shared, false);
        }
    }
    if let Err(buf) = push(pool, class, size, buf) {
        // Every slot caches for another pool, or the thread is exiting.
        Counters::add(&shared.retired.released, 1);
        Counters::add(&shared.retired.retained, size as u64);
        shared.push_shared(class, buf, &shared.retired);
    }
}

/// Moves half of a full list to the shared queue, so that a thread that
/// only frees (a writer, a consumer) feeds the threads that allocate.
fn spill(shared: &Shared, slot: &Slot, class: usize) {
    let size = shared.class_size(class);
    let len = slot.caps[class].get() - slot.room[class].get();
    let half = len / 2 + 1;
    for _ in 0..half {
        let Some(buf) = slot.take(class, size) else {
            break;
        };
        shared.push_shared(class, buf, slot.counters());
    }
}

#[cfg(test)]
mod tests;
