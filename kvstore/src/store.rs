use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

use crate::{Error, Lock, Result, Watch};

/// A boxed future, so that [`Store`] stays object-safe (`Arc<dyn Store>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A key, its value and its revisions, as read from a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvPair {
    /// The normalised key (`/a/b`).
    pub key: String,
    /// The value.
    pub value: Bytes,
    /// The store revision that created the key.
    pub create_revision: u64,
    /// The store revision of the last write to the key; what
    /// [`compare_and_swap`](Store::compare_and_swap) compares.
    pub mod_revision: u64,
    /// The lease the key is attached to (a put with a TTL), 0 for none.
    pub lease: i64,
}

/// A key-value store with revisions, TTLs, watches, compare-and-swap and
/// locks: the embedded [`MemStore`](crate::MemStore) or
/// `EtcdStore`.
///
/// Keys are normalised ([`normalize_key`](crate::normalize_key)); a
/// *tree* or *prefix* names the keys strictly beneath a directory
/// ([`tree_prefix`](crate::tree_prefix)).
///
/// Every store revision is a number that grows with each write; a key's
/// [`mod_revision`](KvPair::mod_revision) is the revision of its last write.
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// Writes `value` under `key` and returns the new revision.
    ///
    /// With a `ttl`, the key is attached to a lease that this store keeps
    /// alive while it is open: the key lives as long as the process that
    /// wrote it, and disappears at most `ttl` after that process stops
    /// refreshing it (BEHAVIOURS 46). Without a `ttl` the key stays until
    /// deleted (and leaves any lease it had).
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64>>;

    /// Reads `key`; [`Error::KeyNotFound`] when it does not exist.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<KvPair>>;

    /// Deletes `key`; [`Error::KeyNotFound`] when it does not exist.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>>;

    /// Every key beneath `prefix`, sorted by key; empty when there is none.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<KvPair>>>;

    /// Deletes every key beneath `prefix` (in one revision) and returns how
    /// many there were.
    fn delete_tree<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64>>;

    /// Watches one key: first a [`WatchEvent::Snapshot`](crate::WatchEvent)
    /// with its current value (or none), then every change (BEHAVIOURS 48).
    fn watch<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Watch>>;

    /// Watches the keys beneath `prefix`: first a snapshot (empty
    /// included), then every change, until the watch is dropped or the
    /// store closed (BEHAVIOURS 47).
    fn watch_tree<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Watch>>;

    /// Writes `value` under `key` only if the key is at revision
    /// `expected` (`None`: only if the key does not exist); returns the new
    /// revision, or [`Error::Conflict`] and writes nothing (BEHAVIOURS 49).
    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64>>;

    /// Deletes `key` only if it is at revision `expected`:
    /// [`Error::Conflict`] if it is at another one,
    /// [`Error::KeyNotFound`] if it does not exist.
    fn compare_and_delete<'a>(&'a self, key: &'a str, expected: u64) -> BoxFuture<'a, Result<()>>;

    /// Waits until this client holds the lock named `key`. The lock is
    /// held while its own lease (of `ttl`, kept alive by this store) lives:
    /// [`Lock::unlock`] releases it, and so does the death of this process
    /// (after at most `ttl`). Waiters are served in order of arrival.
    fn lock<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<Lock>>;

    /// Closes the store: its leases are revoked (so its TTL keys go at
    /// once), its watches end, and later operations fail with
    /// [`Error::Closed`].
    fn close(&self) -> BoxFuture<'_, Result<()>>;

    /// Whether `key` exists.
    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            match self.get(key).await {
                Ok(_) => Ok(true),
                Err(Error::KeyNotFound(_)) => Ok(false),
                Err(e) => Err(e),
            }
        })
    }
}
