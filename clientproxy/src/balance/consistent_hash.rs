//! Consistent hash: a ring with virtual nodes, walked clockwise.

use super::{Balancer, Entries, RoundRobin, usable_at};
use crate::rng::mix64;

/// A key goes to the entry owning the first ring point at or after the
/// key's hash (clockwise, wrapping), and on to the next points' entries
/// while that one is unusable; so a key stays on its entry while the
/// membership is stable, and an entry that joins or leaves moves only the
/// keys of its own points (about 1/N of them).
///
/// Each entry has `replicas` points (default 160), at the hashes of
/// `"<id>#<r>"` for `r` in `0..replicas`; keys hash the same way. The hash
/// is FNV-1a 64 followed by the murmur3 `fmix64` finalizer: FNV-1a is
/// fixed by its spec, so every process (whatever its Rust version or
/// platform) builds the same ring and sends a user to the same node, which
/// std's `DefaultHasher` does not promise across releases; the finalizer
/// gives the avalanche FNV lacks on short ids that differ in their last
/// byte. Lookup is a binary search over the sorted points.
///
/// A call without a key goes round-robin over the usable entries.
#[derive(Debug)]
pub struct ConsistentHash {
    replicas: u32,
    /// (point hash, entry index), sorted by hash (then by id on a tie).
    ring: Vec<(u64, u32)>,
    keyless: RoundRobin,
}

impl ConsistentHash {
    /// The points per entry unless told otherwise.
    pub const DEFAULT_REPLICAS: u32 = 160;

    /// With [`Self::DEFAULT_REPLICAS`] points per entry.
    pub fn new() -> Self {
        Self::with_replicas(Self::DEFAULT_REPLICAS)
    }

    /// The most points per entry [`with_replicas`](Self::with_replicas)
    /// takes: a ring of many entries stays a few megabytes.
    pub const MAX_REPLICAS: u32 = 1 << 16;

    /// With `replicas` points per entry, from 1 to [`Self::MAX_REPLICAS`].
    pub fn with_replicas(replicas: u32) -> Self {
        ConsistentHash {
            replicas: replicas.clamp(1, Self::MAX_REPLICAS),
            ring: Vec::new(),
            keyless: RoundRobin::new(),
        }
    }

    /// The points per entry.
    pub fn replicas(&self) -> u32 {
        self.replicas
    }

    /// The ring position of `key` (what lookups search for).
    pub fn hash_key(key: &[u8]) -> u64 {
        mix64(Fnv1a::new().write(key).finish())
    }

    /// The ring position of point `replica` of entry `id`.
    fn hash_point(id: &str, replica: u32) -> u64 {
        let mut digits = [0u8; 10];
        let mut at = digits.len();
        let mut r = replica;
        loop {
            at -= 1;
            digits[at] = b'0' + (r % 10) as u8;
            r /= 10;
            if r == 0 {
                break;
            }
        }
        let h = Fnv1a::new()
            .write(id.as_bytes())
            .write(b"#")
            .write(&digits[at..])
            .finish();
        mix64(h)
    }
}

impl Default for ConsistentHash {
    fn default() -> Self {
        Self::new()
    }
}

impl Balancer for ConsistentHash {
    fn update(&mut self, ids: &[&str]) {
        let Ok(count) = u32::try_from(ids.len()) else {
            // Past 4 billion entries: keep the ring as it is.
            return;
        };
        let mut ring = Vec::with_capacity(ids.len().saturating_mul(self.replicas as usize));
        for (index, id) in (0..count).zip(ids) {
            ring.extend((0..self.replicas).map(|r| (Self::hash_point(id, r), index)));
        }
        // On a (rare) equal hash the smaller id comes first, so the ring
        // does not depend on the order the ids came in.
        ring.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| ids[a.1 as usize].cmp(ids[b.1 as usize]))
        });
        self.ring = ring;
    }

    fn pick(&self, key: Option<&[u8]>, entries: &dyn Entries) -> Option<usize> {
        let Some(key) = key else {
            return self.keyless.pick(None, entries);
        };
        if self.ring.is_empty() || entries.usable_count() == 0 {
            return None;
        }
        let hash = Self::hash_key(key);
        let start = self.ring.partition_point(|&(h, _)| h < hash);
        let (after, before) = self.ring.split_at(start);
        before
            .iter()
            .chain(after)
            .map(|&(_, index)| index as usize)
            .find(|&index| usable_at(entries, index))
    }

    fn name(&self) -> &str {
        "consistent_hash"
    }
}

/// FNV-1a, 64 bits (offset basis and prime from the FNV spec).
#[derive(Clone, Copy)]
struct Fnv1a(u64);

impl Fnv1a {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Fnv1a(Self::OFFSET)
    }

    fn write(mut self, bytes: &[u8]) -> Self {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(Self::PRIME);
        }
        self
    }

    fn finish(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // From the FNV spec's test suite.
        assert_eq!(Fnv1a::new().finish(), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fnv1a::new().write(b"a").finish(), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            Fnv1a::new().write(b"foobar").finish(),
            0x8594_4171_f739_67e8
        );
    }

    #[test]
    fn points_hash_the_decimal_replica_after_a_hash_sign() {
        let by_hand = mix64(Fnv1a::new().write(b"node-1#159").finish());
        assert_eq!(ConsistentHash::hash_point("node-1", 159), by_hand);
        let zero = mix64(Fnv1a::new().write(b"n#0").finish());
        assert_eq!(ConsistentHash::hash_point("n", 0), zero);
        let max = format!("n#{}", u32::MAX);
        let max = mix64(Fnv1a::new().write(max.as_bytes()).finish());
        assert_eq!(ConsistentHash::hash_point("n", u32::MAX), max);
    }

    #[test]
    fn the_ring_has_replicas_points_per_entry_sorted() {
        let mut ch = ConsistentHash::with_replicas(0);
        assert_eq!(ch.replicas(), 1);
        let big = ConsistentHash::with_replicas(u32::MAX);
        assert_eq!(big.replicas(), ConsistentHash::MAX_REPLICAS);
        ch = ConsistentHash::new();
        ch.update(&["a", "b", "c"]);
        assert_eq!(ch.ring.len(), 3 * ConsistentHash::DEFAULT_REPLICAS as usize);
        assert!(ch.ring.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn no_key_goes_round_robin_and_no_ring_picks_nothing() {
        let mut ch = ConsistentHash::new();
        let entries = [true, false, true];
        assert_eq!(ch.pick(Some(b"k"), &entries), None, "no update yet");
        ch.update(&["a", "b", "c"]);
        let picks: Vec<_> = (0..4).map(|_| ch.pick(None, &entries)).collect();
        assert_eq!(picks, [0, 2, 0, 2].map(Some));
        let none = [false; 3];
        assert_eq!(ch.pick(Some(b"k"), &none), None);
    }
}
