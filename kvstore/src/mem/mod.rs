//! [`MemStore`]: the embedded, in-process store.

mod backend;
mod lock;
mod state;
mod watch;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::watch as signal;
use tokio::time::Instant;

use self::backend::Backend;
use crate::{BoxFuture, Error, KvPair, Lock, Result, Store, Watch, normalize_key, tree_prefix};

/// Options of a [`MemStore`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemOptions {
    /// How many revisions of changes are kept for watchers that fall
    /// behind; one further behind gets a fresh snapshot instead.
    pub watch_history: usize,
    /// Events queued per watch before the watch stops reading history.
    pub watch_buffer: usize,
}

impl Default for MemOptions {
    fn default() -> Self {
        MemOptions {
            watch_history: 16 * 1024,
            watch_buffer: 1024,
        }
    }
}

/// The in-process store, the embedded default. Keys, revisions, TTLs and
/// watches behave as etcd's do, so code tested on it behaves the same on
/// `EtcdStore`:
///
/// - every write is one revision; a delete of a tree is one revision;
/// - a put with a TTL attaches the key to a lease of this *client*; the
///   lease lives while the client does. When the last clone of the client
///   is dropped without [`close`](Store::close) (a process dying), its
///   leases expire a TTL later; `close` revokes them at once;
/// - [`client`](MemStore::client) opens another client on the same data,
///   as a second process would connect to the same etcd.
///
/// Time is tokio's clock, so tests may run it with `tokio::time::pause`.
/// Watches and the timely expiry of leases run as tasks on the current
/// tokio runtime; the other operations need no runtime.
/// Cloning a `MemStore` clones the handle of the same client.
#[derive(Clone)]
pub struct MemStore {
    client: Arc<Client>,
}

struct Client {
    id: u64,
    backend: Arc<Backend>,
    options: MemOptions,
    closed: signal::Sender<bool>,
}

static CLIENT_IDS: AtomicU64 = AtomicU64::new(1);

impl MemStore {
    /// A new, empty store with default options.
    pub fn new() -> Self {
        MemStore::with_options(MemOptions::default())
    }

    /// A new, empty store.
    pub fn with_options(options: MemOptions) -> Self {
        let backend = Arc::new(Backend::new(options.watch_history));
        MemStore::attach(backend, options)
    }

    /// Another client of the same data, with its own leases and watches.
    pub fn client(&self) -> MemStore {
        let client = &self.client;
        MemStore::attach(client.backend.clone(), client.options.clone())
    }

    fn attach(backend: Arc<Backend>, options: MemOptions) -> Self {
        let client = Client {
            id: CLIENT_IDS.fetch_add(1, Ordering::Relaxed),
            backend,
            options,
            closed: signal::Sender::new(false),
        };
        MemStore {
            client: Arc::new(client),
        }
    }

    fn open(&self) -> Result<&Client> {
        if *self.client.closed.borrow() {
            return Err(Error::Closed);
        }
        Ok(&self.client)
    }

    fn put_now(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        expected: Option<Option<u64>>,
    ) -> Result<u64> {
        let client = self.open()?;
        let key = normalize_key(key)?;
        if ttl.is_some() {
            client.backend.start_reaper();
        }
        client.backend.write(|state| {
            if let Some(expected) = expected {
                let current = state.get(&key).map(|pair| pair.mod_revision);
                if current != expected {
                    return (Err(Error::Conflict { key }), Vec::new());
                }
            }
            let lease = ttl.map_or(0, |ttl| state.shared_lease(client.id, ttl));
            let change = state.put(&key, value, lease);
            (Ok(change.revision), vec![change])
        })
    }

    fn delete_now(&self, key: &str, expected: Option<u64>) -> Result<()> {
        let client = self.open()?;
        let key = normalize_key(key)?;
        client.backend.write(|state| {
            let Some(current) = state.get(&key) else {
                return (Err(Error::KeyNotFound(key)), Vec::new());
            };
            if expected.is_some_and(|expected| expected != current.mod_revision) {
                return (Err(Error::Conflict { key }), Vec::new());
            }
            let change = state.delete([key.as_str()]);
            (Ok(()), change.into_iter().collect())
        })
    }
}

impl Default for MemStore {
    fn default() -> Self {
        MemStore::new()
    }
}

impl fmt::Debug for MemStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemStore")
            .field("client", &self.client.id)
            .field("closed", &*self.client.closed.borrow())
            .finish_non_exhaustive()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // The process is gone without closing: its leases stop being
        // refreshed and run out (BEHAVIOURS 46).
        let id = self.id;
        self.backend
            .write(|state| (state.orphan(id, Instant::now()), Vec::new()));
        self.backend.wake_reaper();
    }
}

impl Store for MemStore {
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move { self.put_now(key, value, ttl, None) })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<KvPair>> {
        Box::pin(async move {
            let client = self.open()?;
            let key = normalize_key(key)?;
            let found = client.backend.write(|state| (state.get(&key), Vec::new()));
            found.ok_or(Error::KeyNotFound(key))
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.delete_now(key, None) })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<KvPair>>> {
        Box::pin(async move {
            let client = self.open()?;
            let prefix = tree_prefix(prefix);
            Ok(client
                .backend
                .write(|state| (state.range(&prefix), Vec::new())))
        })
    }

    fn delete_tree<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let client = self.open()?;
            let prefix = tree_prefix(prefix);
            Ok(client.backend.write(|state| {
                let keys: Vec<String> = state.range(&prefix).into_iter().map(|p| p.key).collect();
                let change = state.delete(keys.iter().map(String::as_str));
                (keys.len() as u64, change.into_iter().collect())
            }))
        })
    }

    fn watch<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Watch>> {
        Box::pin(async move {
            let key = normalize_key(key)?;
            self.start_watch(watch::Filter::Key(key))
        })
    }

    fn watch_tree<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Watch>> {
        Box::pin(async move { self.start_watch(watch::Filter::Prefix(tree_prefix(prefix))) })
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move { self.put_now(key, value, ttl, Some(expected)) })
    }

    fn compare_and_delete<'a>(&'a self, key: &'a str, expected: u64) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.delete_now(key, Some(expected)) })
    }

    fn lock<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<Lock>> {
        Box::pin(self.acquire(key, ttl))
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let client = &self.client;
            if client.closed.send_replace(true) {
                return Ok(());
            }
            client.backend.write(|state| {
                let leases = state.leases_of(client.id);
                let changes = leases.into_iter().filter_map(|id| state.revoke(id));
                ((), changes.collect())
            });
            Ok(())
        })
    }
}
