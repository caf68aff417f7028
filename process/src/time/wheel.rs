//! A hashed timing wheel whose expiries are driven by the caller.

use std::time::{Duration, Instant};

use slab::Slab;

/// A handle to a scheduled timer, for [`TimerWheel::cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerKey {
    index: usize,
    id: u64,
}

struct Entry<T> {
    id: u64,
    tick: u64,
    value: T,
    prev: Option<usize>,
    next: Option<usize>,
}

/// A hashed timing wheel: O(1) insert, cancel and
/// [`next_deadline`](TimerWheel::next_deadline), expiry in time
/// proportional to the ticks passed and the timers due.
///
/// Deadlines round up to the tick, so a timer never fires early. Entries
/// live in a slab whose room is reused: steady-state insert and cancel do
/// not allocate. The slots are allocated on the first insert, so a wheel
/// that never holds a timer (a connection that never calls) costs nothing.
///
/// ```
/// use std::time::{Duration, Instant};
/// use walle_process::TimerWheel;
///
/// let start = Instant::now();
/// let mut wheel = TimerWheel::new(start, Duration::from_millis(10));
/// let a = wheel.insert(start + Duration::from_millis(25), "a");
/// wheel.insert(start + Duration::from_millis(5), "b");
/// assert_eq!(wheel.cancel(a), Some("a"));
/// let mut fired = Vec::new();
/// wheel.expire(start + Duration::from_millis(100), |v| fired.push(v));
/// assert_eq!(fired, ["b"]);
/// ```
pub struct TimerWheel<T> {
    start: Instant,
    tick: Duration,
    /// Ticks fully processed: every timer due at or before it has fired.
    done: u64,
    slots: Box<[Option<usize>]>,
    entries: Slab<Entry<T>>,
    next_id: u64,
    /// No timer is due before this tick: the earliest timer's tick, or
    /// earlier when that timer was cancelled since the last exact scan.
    /// `None` when no timer is set.
    earliest: Option<u64>,
    /// Exact scans for the earliest tick, for tests.
    scans: u64,
}

const SLOTS: usize = 512;

impl<T> TimerWheel<T> {
    /// A wheel starting at `start`, with `tick` resolution.
    pub fn new(start: Instant, tick: Duration) -> Self {
        TimerWheel {
            start,
            tick: tick.max(Duration::from_micros(1)),
            done: 0,
            slots: Box::new([]),
            entries: Slab::new(),
            next_id: 0,
            earliest: None,
            scans: 0,
        }
    }

    fn tick_of(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.start).as_nanos();
        let tick = self.tick.as_nanos();
        u64::try_from(nanos.div_ceil(tick)).unwrap_or(u64::MAX)
    }

    fn tick_floor(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.start).as_nanos();
        u64::try_from(nanos / self.tick.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Schedules `value` to fire at `deadline` (or at the next expiry, if
    /// that is already past).
    pub fn insert(&mut self, deadline: Instant, value: T) -> TimerKey {
        if self.slots.is_empty() {
            self.slots = vec![None; SLOTS].into_boxed_slice();
        }
        let tick = self.tick_of(deadline).max(self.done + 1);
        let slot = (tick % SLOTS as u64) as usize;
        let id = self.next_id;
        self.next_id += 1;
        let head = self.slots[slot];
        let index = self.entries.insert(Entry {
            id,
            tick,
            value,
            prev: None,
            next: head,
        });
        if let Some(head) = head {
            self.entries[head].prev = Some(index);
        }
        self.slots[slot] = Some(index);
        self.earliest = Some(self.earliest.map_or(tick, |e| e.min(tick)));
        TimerKey { index, id }
    }

    fn unlink(&mut self, index: usize) -> T {
        let entry = self.entries.remove(index);
        match entry.prev {
            Some(prev) => self.entries[prev].next = entry.next,
            None => self.slots[(entry.tick % SLOTS as u64) as usize] = entry.next,
        }
        if let Some(next) = entry.next {
            self.entries[next].prev = entry.prev;
        }
        // The bound stays as it is (possibly early) unless nothing is left.
        if self.entries.is_empty() {
            self.earliest = None;
        }
        entry.value
    }

    /// Cancels a timer, returning its value if it had not fired.
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        match self.entries.get(key.index) {
            Some(entry) if entry.id == key.id => Some(self.unlink(key.index)),
            _ => None,
        }
    }

    /// Fires, in no particular order, every timer due at or before `now`.
    pub fn expire(&mut self, now: Instant, mut fire: impl FnMut(T)) {
        let target = self.tick_floor(now);
        if target <= self.done {
            return;
        }
        if self.entries.is_empty() {
            self.done = target;
            self.earliest = None;
            return;
        }
        // Past a full turn every slot is visited once.
        let first = self.done + 1;
        let last = target.min(self.done + SLOTS as u64);
        for tick in first..=last {
            let mut cursor = self.slots[(tick % SLOTS as u64) as usize];
            while let Some(index) = cursor {
                cursor = self.entries[index].next;
                if self.entries[index].tick <= target {
                    fire(self.unlink(index));
                }
            }
        }
        self.done = target;
        // Everything due by `target` fired: a bound at or before it is
        // stale, and the exact earliest tick is worth one scan now (at most
        // once per expiry that reaches the bound, never per query).
        if self.earliest.is_some_and(|e| e <= target) {
            self.earliest = self.scan_earliest();
        }
    }

    /// The exact earliest tick of the timers set, in time linear in the
    /// slots up to it (bounded by one turn of the wheel).
    fn scan_earliest(&mut self) -> Option<u64> {
        if self.entries.is_empty() {
            return None;
        }
        self.scans += 1;
        let mut best: Option<u64> = None;
        for offset in 1..=SLOTS as u64 {
            let tick = self.done + offset;
            let mut cursor = self.slots[(tick % SLOTS as u64) as usize];
            while let Some(index) = cursor {
                let entry = &self.entries[index];
                best = Some(best.map_or(entry.tick, |b| b.min(entry.tick)));
                cursor = entry.next;
            }
            // Entries in the slots still ahead are due at `tick` or later.
            if best.is_some_and(|b| b <= tick) {
                break;
            }
        }
        best
    }

    /// When the io layer should next call [`expire`](TimerWheel::expire),
    /// in O(1): the earliest deadline of the timers set, or `None`.
    ///
    /// Never later than the earliest deadline. After the earliest timer is
    /// cancelled it may still be that timer's deadline: an `expire` then
    /// fires nothing and makes the next answer exact. So a wheel whose
    /// timers are mostly cancelled (calls answered before their timeout)
    /// costs one early wakeup per timeout period, not a scan per query.
    pub fn next_deadline(&self) -> Option<Instant> {
        let tick = self.earliest?;
        let nanos = u64::try_from(self.tick.as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_mul(tick);
        Some(self.start + Duration::from_nanos(nanos))
    }

    /// Timers set.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no timer is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<T> std::fmt::Debug for TimerWheel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerWheel")
            .field("tick", &self.tick)
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_never_fire_early_and_all_fire_eventually() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut wheel = TimerWheel::new(start, ms(1));
        let deadlines = [3u64, 1, 700, 512, 513, 1025, 2];
        for d in deadlines {
            wheel.insert(start + ms(d), d);
        }
        let mut fired = Vec::new();
        for now in 0..1100u64 {
            wheel.expire(start + ms(now), |d| {
                assert!(d <= now, "{d} fired at {now}");
                fired.push(d)
            });
        }
        fired.sort();
        let mut want = deadlines.to_vec();
        want.sort();
        assert_eq!(fired, want);
        assert!(wheel.is_empty());
    }

    #[test]
    fn big_jumps_and_cancel_after_reuse() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut wheel = TimerWheel::new(start, ms(1));
        let a = wheel.insert(start + ms(10), 'a');
        assert_eq!(wheel.next_deadline(), Some(start + ms(10)));
        let mut fired = Vec::new();
        wheel.expire(start + ms(5000), |v| fired.push(v));
        assert_eq!(fired, ['a']);
        let b = wheel.insert(start + ms(6000), 'b'); // may reuse a's slab room
        assert_eq!(wheel.cancel(a), None, "a stale key cancels nothing");
        assert_eq!(wheel.next_deadline(), Some(start + ms(6000)));
        assert_eq!(wheel.cancel(b), Some('b'));
        assert_eq!(wheel.next_deadline(), None);
    }

    /// Queries never scan: insert, cancel and `next_deadline` keep a
    /// bound, and only an expiry that reaches it computes the exact one.
    #[test]
    fn next_deadline_is_kept_not_scanned() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut wheel = TimerWheel::new(start, ms(1));
        // Calls answered in order before their 5 s timeout, as usual.
        let mut keys = std::collections::VecDeque::new();
        for i in 0..1000u64 {
            keys.push_back(wheel.insert(start + ms(5000 + i), i));
            if keys.len() > 10 {
                let key = keys.pop_front().expect("a key");
                wheel.cancel(key);
            }
            let next = wheel.next_deadline().expect("timers are set");
            assert!(next <= start + ms(5000 + i - (keys.len() as u64 - 1)));
        }
        assert_eq!(wheel.scans, 0, "a query scanned the wheel");
    }

    /// Cancelling the earliest timer leaves an early deadline; the expiry
    /// at it fires nothing and makes the deadline exact again.
    #[test]
    fn cancelled_earliest_gives_one_early_wakeup_then_the_exact_deadline() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut wheel = TimerWheel::new(start, ms(1));
        let a = wheel.insert(start + ms(10), 'a');
        wheel.insert(start + ms(700), 'b'); // more than a turn ahead
        wheel.insert(start + ms(30), 'c');
        assert_eq!(wheel.next_deadline(), Some(start + ms(10)));
        wheel.cancel(a);
        let early = wheel.next_deadline().expect("set");
        assert!(early <= start + ms(30));
        let mut fired = Vec::new();
        wheel.expire(early, |v| fired.push(v));
        assert!(fired.is_empty(), "{fired:?}");
        assert_eq!(wheel.next_deadline(), Some(start + ms(30)));
        wheel.expire(start + ms(30), |v| fired.push(v));
        assert_eq!(fired, ['c']);
        assert_eq!(wheel.next_deadline(), Some(start + ms(700)));
    }

    /// Against a plain list: the deadline is never later than the earliest
    /// timer, no timer fires early, and the deadline is exact right after
    /// an expiry that reached it.
    #[test]
    fn next_deadline_bounds_the_earliest_timer() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut wheel = TimerWheel::new(start, ms(1));
        let mut model: Vec<(TimerKey, u64)> = Vec::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut now = 0u64;
        for _ in 0..20_000 {
            match rand(4) {
                0 | 1 => {
                    let at = now + 1 + rand(1500);
                    model.push((wheel.insert(start + ms(at), at), at));
                }
                2 if !model.is_empty() => {
                    let (key, at) = model.swap_remove(rand(model.len() as u64) as usize);
                    assert_eq!(wheel.cancel(key), Some(at));
                }
                _ => {
                    now += rand(40);
                    let reached = wheel.next_deadline().is_some_and(|d| d <= start + ms(now));
                    let mut fired = Vec::new();
                    wheel.expire(start + ms(now), |at| fired.push(at));
                    assert!(fired.iter().all(|&at| at <= now), "fired early");
                    let due = model.iter().filter(|(_, at)| *at <= now).count();
                    assert_eq!(fired.len(), due);
                    model.retain(|(_, at)| *at > now);
                    let exact = model.iter().map(|(_, at)| start + ms(*at)).min();
                    if reached {
                        assert_eq!(wheel.next_deadline(), exact, "exact after expire");
                    }
                }
            }
            let earliest = model.iter().map(|(_, at)| start + ms(*at)).min();
            match (wheel.next_deadline(), earliest) {
                (None, None) => {}
                (Some(next), Some(earliest)) => assert!(next <= earliest),
                other => panic!("{other:?}"),
            }
        }
    }
}
