//! The data of a [`MemStore`](super::MemStore): keys with revisions, leases
//! with deadlines, and the changes each write makes. Pure: the caller
//! passes the current time in.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::{KvPair, WatchEvent};

/// The events of one revision, as the watchers receive them.
#[derive(Debug)]
pub(super) struct Change {
    pub(super) revision: u64,
    pub(super) events: Vec<WatchEvent>,
}

#[derive(Debug)]
struct Entry {
    value: Bytes,
    create_revision: u64,
    mod_revision: u64,
    lease: i64,
}

#[derive(Debug)]
struct Lease {
    owner: u64,
    ttl: Duration,
    /// `None` while the owning client is alive and refreshes it.
    expires: Option<Instant>,
    keys: BTreeSet<String>,
}

/// Keys, revisions and leases.
#[derive(Debug, Default)]
pub(super) struct State {
    revision: u64,
    kvs: BTreeMap<String, Entry>,
    leases: HashMap<i64, Lease>,
    next_lease: i64,
    /// The lease a client shares between its puts of one TTL.
    shared: HashMap<(u64, Duration), i64>,
}

impl State {
    pub(super) fn revision(&self) -> u64 {
        self.revision
    }

    pub(super) fn get(&self, key: &str) -> Option<KvPair> {
        self.kvs.get(key).map(|entry| pair(key, entry))
    }

    /// The keys starting with `prefix`, sorted.
    pub(super) fn range(&self, prefix: &str) -> Vec<KvPair> {
        self.kvs
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, entry)| pair(key, entry))
            .collect()
    }

    /// A new lease of `owner`, alive while the owner is.
    pub(super) fn grant(&mut self, owner: u64, ttl: Duration) -> i64 {
        self.next_lease += 1;
        let lease = Lease {
            owner,
            ttl,
            expires: None,
            keys: BTreeSet::new(),
        };
        self.leases.insert(self.next_lease, lease);
        self.next_lease
    }

    /// The lease `owner` attaches its puts of `ttl` to.
    pub(super) fn shared_lease(&mut self, owner: u64, ttl: Duration) -> i64 {
        if let Some(&id) = self.shared.get(&(owner, ttl)) {
            if self.leases.contains_key(&id) {
                return id;
            }
        }
        let id = self.grant(owner, ttl);
        self.shared.insert((owner, ttl), id);
        id
    }

    pub(super) fn put(&mut self, key: &str, value: Bytes, lease: i64) -> Change {
        self.revision += 1;
        let revision = self.revision;
        let previous = self.kvs.get(key).map(|e| (e.create_revision, e.lease));
        if let Some((_, old)) = previous.filter(|(_, old)| *old != lease) {
            self.detach(key, old);
        }
        if let Some(lease) = self.leases.get_mut(&lease) {
            lease.keys.insert(key.to_owned());
        }
        let entry = Entry {
            value,
            create_revision: previous.map_or(revision, |(create, _)| create),
            mod_revision: revision,
            lease,
        };
        let event = WatchEvent::Put(pair(key, &entry));
        self.kvs.insert(key.to_owned(), entry);
        Change {
            revision,
            events: vec![event],
        }
    }

    /// Deletes `keys` (those that exist) in one revision.
    pub(super) fn delete<'k>(&mut self, keys: impl IntoIterator<Item = &'k str>) -> Option<Change> {
        let mut events = Vec::new();
        for key in keys {
            if let Some(entry) = self.kvs.remove(key) {
                self.detach(key, entry.lease);
                events.push(key.to_owned());
            }
        }
        if events.is_empty() {
            return None;
        }
        self.revision += 1;
        let revision = self.revision;
        let events = events
            .into_iter()
            .map(|key| WatchEvent::Delete { key, revision })
            .collect();
        Some(Change { revision, events })
    }

    /// Removes a lease and deletes its keys.
    pub(super) fn revoke(&mut self, id: i64) -> Option<Change> {
        let lease = self.leases.remove(&id)?;
        self.shared.retain(|_, shared| *shared != id);
        let keys: Vec<String> = lease.keys.into_iter().collect();
        self.delete(keys.iter().map(String::as_str))
    }

    /// The leases of `owner`.
    pub(super) fn leases_of(&self, owner: u64) -> Vec<i64> {
        let owned = self.leases.iter().filter(|(_, lease)| lease.owner == owner);
        owned.map(|(&id, _)| id).collect()
    }

    /// `owner` stopped refreshing its leases: each expires its TTL from now.
    pub(super) fn orphan(&mut self, owner: u64, now: Instant) {
        for lease in self.leases.values_mut().filter(|l| l.owner == owner) {
            lease.expires.get_or_insert(now + lease.ttl);
        }
    }

    /// Revokes the leases whose deadline has passed, one revision each.
    pub(super) fn expire(&mut self, now: Instant) -> Vec<Change> {
        let due: Vec<i64> = self
            .leases
            .iter()
            .filter(|(_, lease)| lease.expires.is_some_and(|at| at <= now))
            .map(|(&id, _)| id)
            .collect();
        due.into_iter().filter_map(|id| self.revoke(id)).collect()
    }

    /// The earliest lease deadline.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.leases.values().filter_map(|lease| lease.expires).min()
    }

    fn detach(&mut self, key: &str, lease: i64) {
        if let Some(lease) = self.leases.get_mut(&lease) {
            lease.keys.remove(key);
        }
    }
}

fn pair(key: &str, entry: &Entry) -> KvPair {
    KvPair {
        key: key.to_owned(),
        value: entry.value.clone(),
        create_revision: entry.create_revision,
        mod_revision: entry.mod_revision,
        lease: entry.lease,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(state: &mut State, key: &str, lease: i64) -> u64 {
        state.put(key, Bytes::from_static(b"v"), lease).revision
    }

    #[test]
    fn revisions_grow_and_create_revision_stays() {
        let mut state = State::default();
        assert_eq!(put(&mut state, "/a", 0), 1);
        assert_eq!(put(&mut state, "/b", 0), 2);
        assert_eq!(put(&mut state, "/a", 0), 3);
        let a = state.get("/a").unwrap();
        assert_eq!((a.create_revision, a.mod_revision), (1, 3));
    }

    #[test]
    fn delete_of_many_keys_is_one_revision() {
        let mut state = State::default();
        put(&mut state, "/t/a", 0);
        put(&mut state, "/t/b", 0);
        let change = state.delete(["/t/a", "/t/b", "/t/missing"]).unwrap();
        assert_eq!(change.revision, 3);
        assert_eq!(change.events.len(), 2);
        assert!(state.delete(["/t/a"]).is_none());
        assert_eq!(state.revision(), 3);
    }

    #[test]
    fn b46_orphaned_lease_expires_after_its_ttl() {
        let mut state = State::default();
        let now = Instant::now();
        let lease = state.shared_lease(7, Duration::from_secs(2));
        put(&mut state, "/n/1", lease);
        put(&mut state, "/n/2", lease);
        assert!(
            state.expire(now + Duration::from_secs(60)).is_empty(),
            "alive owner"
        );
        state.orphan(7, now);
        assert!(state.expire(now + Duration::from_secs(1)).is_empty());
        let changes = state.expire(now + Duration::from_secs(2));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].events.len(), 2);
        assert!(state.range("/n/").is_empty());
    }

    #[test]
    fn a_key_moved_to_another_lease_leaves_the_first() {
        let mut state = State::default();
        let short = state.shared_lease(1, Duration::from_secs(1));
        let long = state.shared_lease(1, Duration::from_secs(9));
        put(&mut state, "/k", short);
        put(&mut state, "/k", long);
        assert!(
            state.revoke(short).is_none(),
            "the key no longer belongs to it"
        );
        put(&mut state, "/k", 0);
        assert!(state.revoke(long).is_none());
        assert_eq!(state.get("/k").unwrap().lease, 0);
    }
}
