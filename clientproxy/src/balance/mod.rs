//! Balancers: which entry a call goes to.
//!
//! A [`Balancer`] is told the membership when it changes
//! ([`Balancer::update`]: the entry ids in a stable order) and picks an
//! entry index for each call ([`Balancer::pick`]) from an [`Entries`] view
//! that says, by index, which entries are usable now and how many calls
//! each has in flight. Built-ins: [`RoundRobin`], [`Random`],
//! [`ConsistentHash`], [`LeastOutstanding`]; [`balancer_by_name`] makes
//! one from the name a node's `bn` field carries.

mod consistent_hash;
mod least_outstanding;
mod name;
mod random;
mod round_robin;

use std::fmt;

use walle_discovery::Node;

pub use consistent_hash::ConsistentHash;
pub use least_outstanding::LeastOutstanding;
pub use name::{KNOWN_BALANCERS, balancer_by_name, balancer_for_node};
pub use random::Random;
pub use round_robin::RoundRobin;

/// Picks the entry a call goes to.
///
/// The proxy calls [`update`](Balancer::update) with the entry ids, in a
/// stable order, whenever the membership changes, and
/// [`pick`](Balancer::pick) for each call with a view of the same entries
/// by index (index `i` is `ids[i]` of the last update). `pick` takes
/// `&self` so that calls on many threads pick at once; a balancer with
/// state keeps it in atomics. `pick` runs once per call: it should not
/// allocate, lock or log.
///
/// A balancer of one's own: the usable entry with the smallest index,
/// say a primary with standbys.
///
/// ```
/// use walle_clientproxy::{Balancer, EntryState, Entries};
///
/// #[derive(Debug, Default)]
/// struct Primary;
///
/// impl Balancer for Primary {
///     fn pick(&self, _key: Option<&[u8]>, entries: &dyn Entries) -> Option<usize> {
///         (0..entries.len()).find(|&i| entries.is_usable(i))
///     }
///     fn name(&self) -> &str {
///         "primary"
///     }
/// }
///
/// let mut balancer: Box<dyn Balancer> = Box::new(Primary);
/// balancer.update(&["a", "b", "c"]);
/// let up = EntryState::usable(0);
/// let down = EntryState::unusable();
/// assert_eq!(balancer.pick(None, &[up, up, up]), Some(0));
/// assert_eq!(balancer.pick(None, &[down, up, up]), Some(1));
/// assert_eq!(balancer.pick(None, &[down, down, down]), None);
/// ```
pub trait Balancer: Send + Sync + 'static {
    /// The entry for a call with balancing key `key` (for example a user
    /// id), among the usable ones of `entries`; `None` when none is
    /// usable. An index at or past `entries.len()` is never usable.
    fn pick(&self, key: Option<&[u8]>, entries: &dyn Entries) -> Option<usize>;

    /// The membership changed: these are the entry ids, in the order of
    /// the indexes later picks see. Unchanged entries keep their ids, so a
    /// balancer keyed by id (a hash ring) keeps their share. Default: nothing
    /// to do, for balancers that only look at the [`Entries`] of a pick.
    fn update(&mut self, ids: &[&str]) {
        let _ = ids;
    }

    /// The balancer's name, for reports and logs.
    fn name(&self) -> &str {
        "custom"
    }
}

impl fmt::Debug for dyn Balancer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balancer")
            .field("name", &self.name())
            .finish()
    }
}

/// The entries a pick chooses from, by index: whether each is usable now
/// (online in discovery and healthy) and how many calls it has in flight.
///
/// The proxy implements it over its own entry table. Arrays, vectors and
/// slices of `bool` (usable flags, no load) or of [`EntryState`]
/// implement it, for tests and for balancers used on their own.
pub trait Entries {
    /// How many entries there are, usable or not.
    fn len(&self) -> usize;

    /// Whether entry `index` may take a call now. `index < len()`.
    fn is_usable(&self, index: usize) -> bool;

    /// How many calls entry `index` has in flight. Default 0.
    fn in_flight(&self, index: usize) -> usize {
        let _ = index;
        0
    }

    /// The node of entry `index` as discovery publishes it (address,
    /// network, metadata such as a weight or a zone), where the table has
    /// one; the proxy's does. Default `None`.
    fn node(&self, index: usize) -> Option<&Node> {
        let _ = index;
        None
    }

    /// How many entries are usable. The default counts them; a table
    /// that keeps the count says it at once, and balancers skip their
    /// scan when every entry is usable.
    fn usable_count(&self) -> usize {
        (0..self.len()).filter(|&i| self.is_usable(i)).count()
    }

    /// Whether there are no entries at all.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for dyn Entries + '_ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries((0..self.len()).map(|i| (self.is_usable(i), self.in_flight(i))))
            .finish()
    }
}

/// One entry as a plain value: usable or not, and its calls in flight.
/// Arrays, vectors and slices of them are [`Entries`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EntryState {
    /// Online and healthy.
    pub usable: bool,
    /// Calls in flight.
    pub in_flight: usize,
}

impl EntryState {
    /// A usable entry with `in_flight` calls in flight.
    pub const fn usable(in_flight: usize) -> Self {
        EntryState {
            usable: true,
            in_flight,
        }
    }

    /// An entry that takes no call now.
    pub const fn unusable() -> Self {
        EntryState {
            usable: false,
            in_flight: 0,
        }
    }
}

/// `Entries` for a sequence of plain values (`[T; N]`, `Vec<T>`, `&[T]`,
/// for `T` of `bool` or [`EntryState`]).
macro_rules! plain_entries {
    ($($t:ty),*) => {$(
        impl<const N: usize> Entries for [$t; N] {
            fn len(&self) -> usize {
                N
            }
            fn is_usable(&self, index: usize) -> bool {
                self.get(index).is_some_and(PlainEntry::usable)
            }
            fn in_flight(&self, index: usize) -> usize {
                self.get(index).map_or(0, PlainEntry::in_flight)
            }
        }
        impl Entries for Vec<$t> {
            fn len(&self) -> usize {
                <[$t]>::len(self)
            }
            fn is_usable(&self, index: usize) -> bool {
                self.get(index).is_some_and(PlainEntry::usable)
            }
            fn in_flight(&self, index: usize) -> usize {
                self.get(index).map_or(0, PlainEntry::in_flight)
            }
        }
        impl Entries for &[$t] {
            fn len(&self) -> usize {
                <[$t]>::len(self)
            }
            fn is_usable(&self, index: usize) -> bool {
                self.get(index).is_some_and(PlainEntry::usable)
            }
            fn in_flight(&self, index: usize) -> usize {
                self.get(index).map_or(0, PlainEntry::in_flight)
            }
        }
    )*};
}

trait PlainEntry {
    fn usable(&self) -> bool;
    fn in_flight(&self) -> usize;
}

impl PlainEntry for bool {
    fn usable(&self) -> bool {
        *self
    }
    fn in_flight(&self) -> usize {
        0
    }
}

impl PlainEntry for EntryState {
    fn usable(&self) -> bool {
        self.usable
    }
    fn in_flight(&self) -> usize {
        self.in_flight
    }
}

plain_entries!(bool, EntryState);

/// Whether `index` names a usable entry (an index past the end does not).
fn usable_at(entries: &dyn Entries, index: usize) -> bool {
    index < entries.len() && entries.is_usable(index)
}

/// The index of the `rank`-th usable entry (`rank < usable`, where
/// `usable` is `entries.usable_count()`): at once when all are usable, by
/// a scan otherwise. A view whose flags changed between the count and the
/// scan (a table updated by other threads) gets its first usable entry
/// rather than no pick.
fn nth_usable(entries: &dyn Entries, usable: usize, rank: usize) -> Option<usize> {
    let len = entries.len();
    if usable == len && rank < len && entries.is_usable(rank) {
        return Some(rank);
    }
    (0..len)
        .filter(|&i| entries.is_usable(i))
        .nth(rank)
        .or_else(|| (0..len).find(|&i| entries.is_usable(i)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_usable_skips_the_unusable() {
        let entries = [false, true, false, true, true];
        assert_eq!(nth_usable(&entries, 3, 0), Some(1));
        assert_eq!(nth_usable(&entries, 3, 1), Some(3));
        assert_eq!(nth_usable(&entries, 3, 2), Some(4));
        let all = [true, true];
        assert_eq!(nth_usable(&all, 2, 1), Some(1));
        // A count that is stale (more usable then than now): the first
        // usable entry, or none when none is left.
        assert_eq!(nth_usable(&entries, 4, 3), Some(1));
        assert_eq!(nth_usable(&[false, false], 2, 1), None);
        assert_eq!(nth_usable(&all, 2, 2), Some(0));
    }

    #[test]
    fn entry_views_answer_by_index() {
        let entries = [EntryState::usable(3), EntryState::unusable()];
        assert_eq!((entries.usable_count(), entries.in_flight(0)), (1, 3));
        assert!(!usable_at(&entries, 1) && !usable_at(&entries, 2));
        assert!(!Entries::is_empty(&entries));
        let dbg = format!("{:?}", &entries as &dyn Entries);
        assert_eq!(dbg, "[(true, 3), (false, 0)]");
    }
}
