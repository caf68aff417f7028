//! walle client proxy: calls to a service by name, spread over the nodes
//! discovery finds for it.
//!
//! - [`ClientProxy`]: watches a discovery target (any driver: `mem://`,
//!   `static://`, `etcd://`, a user's own), keeps a table of entries by
//!   node id, and dials an entry only when a call first picks it. It keeps
//!   the clients of unchanged entries across discovery changes, drains and
//!   closes removed ones (bounded), never picks offline entries, and fails
//!   a call that never reached the wire over to another entry
//!   ([`ProxyOptions::max_failover`]); one that reached it is retried only
//!   when marked idempotent ([`ProxyCallOptions`]). With no usable entry a
//!   call fails with [`Error::NoNode`] (at once, or after
//!   [`ProxyOptions::wait_for_node`]). [`ClientProxy::stats`] reports each
//!   entry's state, calls in flight, calls and failures.
//! - [`Balancer`]: picks the entry for a call from the usable entries
//!   (online and healthy) given an optional key; built-ins [`RoundRobin`],
//!   [`Random`], [`ConsistentHash`] (a ring with virtual nodes) and
//!   [`LeastOutstanding`] (power of two choices on calls in flight); users
//!   add their own through the trait, and [`balancer_by_name`] makes a
//!   built-in from the name a node's `bn` field carries.
//! - [`Health`]: per entry, a failed connect puts it aside for an
//!   exponential backoff with jitter ([`HealthOptions`]); a success resets
//!   it. Time and randomness are passed in.
//!
//! The balancer core on its own:
//!
//! ```
//! use std::time::Instant;
//! use walle_clientproxy::{Balancer, ConsistentHash, EntryState, Health, HealthOptions};
//!
//! let mut ring = ConsistentHash::new();
//! ring.update(&["node-a", "node-b", "node-c"]);
//!
//! // The proxy's view: node-b failed its connect and is put aside.
//! let mut health = [Health::new(); 3];
//! let now = Instant::now();
//! health[1].handle_connect_failed(now, &HealthOptions::default(), 0);
//! let entries: Vec<EntryState> = health
//!     .iter()
//!     .map(|h| EntryState { usable: h.is_healthy(now), in_flight: 0 })
//!     .collect();
//!
//! let user = 42u64.to_be_bytes();
//! let picked = ring.pick(Some(&user), &entries).expect("two usable");
//! assert_ne!(picked, 1);
//! assert_eq!(ring.pick(Some(&user), &entries), Some(picked));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![warn(clippy::unwrap_used)]

mod async_call;
mod balance;
mod builder;
mod entry;
mod error;
mod health;
mod options;
mod proxy;
mod rng;
mod table;

pub use balance::{
    Balancer, ConsistentHash, Entries, EntryState, KNOWN_BALANCERS, LeastOutstanding, Random,
    RoundRobin, balancer_by_name, balancer_for_node,
};
pub use builder::ClientProxyBuilder;
pub use entry::{EntryStats, EntryStatus};
pub use error::Error;
pub use health::{Health, HealthOptions};
pub use options::{ProxyCallOptions, ProxyOptions};
pub use proxy::ClientProxy;
