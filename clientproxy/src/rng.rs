//! A small, fast, lock-free random source for balancers and jitter.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

/// The splitmix64 increment (2^64 divided by the golden ratio, odd).
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64 over an atomic state: each draw is one `fetch_add` and a
/// mix, so picks on many threads share it through `&self` without a lock.
/// Not for secrets; good enough to spread calls and jitter waits.
#[derive(Debug)]
pub(crate) struct SplitMix {
    state: AtomicU64,
}

impl SplitMix {
    /// Seeded from std's per-instance random hasher keys, so two balancers
    /// made in the same process draw different sequences.
    pub(crate) fn from_entropy() -> Self {
        Self::with_seed(RandomState::new().hash_one(0x5eed_u64))
    }

    /// A fixed sequence, for tests and reproducible runs.
    pub(crate) fn with_seed(seed: u64) -> Self {
        SplitMix {
            state: AtomicU64::new(seed),
        }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&self) -> u64 {
        let z = self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        mix64(z)
    }

    /// A number in `0..n` (`n > 0`), by multiply-shift (no division).
    pub(crate) fn below(&self, n: usize) -> usize {
        below(self.next_u64(), n)
    }
}

/// `random` scaled into `0..n` (`n > 0`) by multiply-shift.
pub(crate) fn below(random: u64, n: usize) -> usize {
    ((u128::from(random) * n as u128) >> 64) as usize
}

/// The splitmix64 / murmur3-style 64-bit finalizer: every input bit
/// affects every output bit.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_spreads() {
        let rng = SplitMix::with_seed(7);
        let mut seen = [0u32; 5];
        for _ in 0..5000 {
            seen[rng.below(5)] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_eq!(below(u64::MAX, 3), 2);
        assert_eq!(below(0, 3), 0);
    }

    #[test]
    fn seeds_give_their_own_sequences() {
        let a = SplitMix::with_seed(1);
        let b = SplitMix::with_seed(1);
        let c = SplitMix::from_entropy();
        let d = SplitMix::from_entropy();
        let (x, y) = (a.next_u64(), b.next_u64());
        assert_eq!(x, y);
        assert_ne!(c.next_u64(), d.next_u64());
    }
}
