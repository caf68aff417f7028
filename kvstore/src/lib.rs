//! The walle key-value store: what service discovery and locks stand on.
//!
//! - [`Store`]: put (with an optional TTL), get, delete, exists, list,
//!   delete-tree, watch and watch-tree (an initial snapshot, then every
//!   change, with revision numbers), compare-and-swap, compare-and-delete,
//!   locks held while a lease lives, close. Object-safe: `Arc<dyn Store>`.
//! - [`MemStore`]: in-process, the embedded default. Revisions, TTLs and
//!   watches behave as etcd's do.
//! - [`EtcdStore`] (feature `etcd`, off by default: etcd-client
//!   needs `protoc` to build): a real etcd through
//!   etcd-client. TTL puts share a lease per TTL, kept alive at a third of
//!   it; a lost lease is granted again and its keys put back; watches resume
//!   from the last revision they delivered after a lost connection.
//! - `testing::Etcd` (feature `etcd-harness`): starts a throwaway etcd on
//!   free loopback ports for tests and benchmarks.
//!
//! It is not a cache, not a configuration system, and not a discovery
//! layer: nodes and services are `walle-discovery`'s.
//!
//! ```
//! use bytes::Bytes;
//! use walle_kvstore::{MemStore, Store, WatchEvent};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let store = MemStore::new();
//! let mut watch = store.watch_tree("/services/echo").await?;
//! assert!(matches!(watch.next().await, Some(WatchEvent::Snapshot { ref pairs, .. }) if pairs.is_empty()));
//!
//! store.put("services/echo/n1", Bytes::from_static(b"10.0.0.5:7000"), None).await?;
//! let pair = store.get("/services/echo/n1/").await?; // one key, however it is spelled
//! assert_eq!(pair.value, "10.0.0.5:7000");
//! assert!(matches!(watch.next().await, Some(WatchEvent::Put(p)) if p.key == "/services/echo/n1"));
//! # Ok::<(), walle_kvstore::Error>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![warn(clippy::unwrap_used)]

mod error;
#[cfg(feature = "etcd")]
mod etcd;
mod key;
mod lock;
mod mem;
mod store;
#[cfg(feature = "etcd-harness")]
pub mod testing;
mod watch;

pub use error::{Error, Result};
#[cfg(feature = "etcd")]
pub use etcd::{EtcdBuilder, EtcdOptions, EtcdStore};
pub use key::{normalize_key, tree_prefix};
pub use lock::Lock;
pub use mem::{MemOptions, MemStore};
pub use store::{BoxFuture, KvPair, Store};
pub use watch::{Watch, WatchEvent};
