//! Random: any usable entry, uniformly.

use super::{Balancer, Entries, nth_usable};
use crate::rng::SplitMix;

/// A uniformly random usable entry, from a splitmix64 generator of the
/// balancer's own (seeded per balancer; one atomic add per pick).
#[derive(Debug)]
pub struct Random {
    rng: SplitMix,
}

impl Random {
    /// Seeded from the process's random hasher keys.
    pub fn new() -> Self {
        Random {
            rng: SplitMix::from_entropy(),
        }
    }

    /// With a fixed seed: the same seed, the same picks.
    pub fn with_seed(seed: u64) -> Self {
        Random {
            rng: SplitMix::with_seed(seed),
        }
    }
}

impl Default for Random {
    fn default() -> Self {
        Self::new()
    }
}

impl Balancer for Random {
    fn pick(&self, _key: Option<&[u8]>, entries: &dyn Entries) -> Option<usize> {
        let usable = entries.usable_count();
        if usable == 0 {
            return None;
        }
        nth_usable(entries, usable, self.rng.below(usable))
    }

    fn name(&self) -> &str {
        "random"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_only_usable_entries_and_covers_them_all() {
        let random = Random::new();
        let entries = [true, false, true, true, false, true];
        let mut seen = [0u32; 6];
        for _ in 0..4000 {
            seen[random.pick(None, &entries).expect("a usable entry")] += 1;
        }
        assert_eq!((seen[1], seen[4]), (0, 0), "{seen:?}");
        // Each of the 4 usable ones gets about 1000.
        for i in [0, 2, 3, 5] {
            assert!((800..1200).contains(&seen[i]), "{seen:?}");
        }
        let none = [false; 3];
        assert_eq!(random.pick(None, &none), None);
    }

    #[test]
    fn a_seed_fixes_the_picks() {
        let entries = [true; 7];
        let (a, b) = (Random::with_seed(42), Random::with_seed(42));
        let pa: Vec<_> = (0..20).map(|_| a.pick(None, &entries)).collect();
        let pb: Vec<_> = (0..20).map(|_| b.pick(None, &entries)).collect();
        assert_eq!(pa, pb);
    }
}
