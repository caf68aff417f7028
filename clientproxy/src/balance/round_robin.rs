//! Round-robin: each usable entry in turn.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Balancer, Entries, nth_usable};

/// Cycles over the usable entries: with `u` usable, pick `n` goes to the
/// `(n mod u)`-th of them, so every usable entry gets its turn and an
/// unusable one gives its turns to no entry in particular. One atomic add
/// per pick, plus the scan for the `n`-th usable entry (none when the
/// table says every entry is usable through
/// [`Entries::usable_count`]).
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    /// Starting at the first usable entry.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Balancer for RoundRobin {
    fn pick(&self, _key: Option<&[u8]>, entries: &dyn Entries) -> Option<usize> {
        let usable = entries.usable_count();
        if usable == 0 {
            return None;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        nth_usable(entries, usable, turn % usable)
    }

    fn name(&self) -> &str {
        "round_robin"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BEHAVIOURS 56: round-robin cycles over the usable entries only.
    #[test]
    fn cycles_over_usable_entries_only() {
        let rr = RoundRobin::new();
        let all = [true, true, true];
        let picks: Vec<_> = (0..6).map(|_| rr.pick(None, &all)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2].map(Some));

        let rr = RoundRobin::new();
        let some = [true, false, true, false, true];
        let picks: Vec<_> = (0..6).map(|_| rr.pick(Some(b"key"), &some)).collect();
        assert_eq!(picks, [0, 2, 4, 0, 2, 4].map(Some));
    }

    /// BEHAVIOURS 56: with no usable entry there is no pick.
    #[test]
    fn none_usable_is_no_pick() {
        let rr = RoundRobin::new();
        let none = [false, false];
        assert_eq!(rr.pick(None, &none), None);
        let empty: [bool; 0] = [];
        assert_eq!(rr.pick(None, &empty), None);
        // And the next usable one is picked once there is one again.
        let one = [false, true];
        assert_eq!(rr.pick(None, &one), Some(1));
    }
}
