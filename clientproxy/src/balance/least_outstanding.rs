//! Least-outstanding: power of two choices on calls in flight.

use super::{Balancer, Entries, nth_usable};
use crate::rng::SplitMix;

/// Two distinct usable entries at random, and the one with fewer calls in
/// flight (the first of the two on a tie). With one usable entry, that
/// one. With equal loads (all idle, say) it is random choice; under load
/// it steers calls away from slow entries without a scan of all loads.
#[derive(Debug)]
pub struct LeastOutstanding {
    rng: SplitMix,
}

impl LeastOutstanding {
    /// Seeded from the process's random hasher keys.
    pub fn new() -> Self {
        LeastOutstanding {
            rng: SplitMix::from_entropy(),
        }
    }

    /// With a fixed seed: the same seed and loads, the same picks.
    pub fn with_seed(seed: u64) -> Self {
        LeastOutstanding {
            rng: SplitMix::with_seed(seed),
        }
    }
}

impl Default for LeastOutstanding {
    fn default() -> Self {
        Self::new()
    }
}

impl Balancer for LeastOutstanding {
    fn pick(&self, _key: Option<&[u8]>, entries: &dyn Entries) -> Option<usize> {
        let usable = entries.usable_count();
        match usable {
            0 => None,
            1 => nth_usable(entries, usable, 0),
            _ => {
                let first = self.rng.below(usable);
                // A second rank among the others: skip over the first.
                let mut second = self.rng.below(usable - 1);
                if second >= first {
                    second += 1;
                }
                let a = nth_usable(entries, usable, first)?;
                let Some(b) = nth_usable(entries, usable, second) else {
                    return Some(a);
                };
                Some(if entries.in_flight(b) < entries.in_flight(a) {
                    b
                } else {
                    a
                })
            }
        }
    }

    fn name(&self) -> &str {
        "least_outstanding"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EntryState;

    #[test]
    fn prefers_the_entry_with_fewer_calls_in_flight() {
        let lo = LeastOutstanding::with_seed(3);
        // Two entries: every pick compares both, so the idle one always wins.
        let two = [EntryState::usable(10), EntryState::usable(2)];
        for _ in 0..100 {
            assert_eq!(lo.pick(None, &two), Some(1));
        }
        // Four entries, one loaded: it loses every pair it is in, so it is
        // never picked; the idle ones share the calls.
        let four = [
            EntryState::usable(0),
            EntryState::usable(50),
            EntryState::usable(0),
            EntryState::usable(0),
        ];
        let mut seen = [0u32; 4];
        for _ in 0..3000 {
            seen[lo.pick(None, &four).expect("usable")] += 1;
        }
        assert_eq!(seen[1], 0, "{seen:?}");
        assert!(
            seen.iter().enumerate().all(|(i, &n)| i == 1 || n > 700),
            "{seen:?}"
        );
    }

    #[test]
    fn skips_unusable_entries_however_idle() {
        let lo = LeastOutstanding::with_seed(9);
        let entries = [
            EntryState::unusable(),
            EntryState::usable(7),
            EntryState::unusable(),
        ];
        for _ in 0..50 {
            assert_eq!(lo.pick(None, &entries), Some(1));
        }
        let none = [EntryState::unusable(); 3];
        assert_eq!(lo.pick(None, &none), None);
    }

    #[test]
    fn ties_go_to_the_first_of_the_pair() {
        // Equal loads: the pick is the first draw's entry, so all entries
        // are picked (random choice), none favoured by index.
        let lo = LeastOutstanding::with_seed(11);
        let entries = [EntryState::usable(1); 3];
        let mut seen = [0u32; 3];
        for _ in 0..3000 {
            seen[lo.pick(None, &entries).expect("usable")] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
    }
}
