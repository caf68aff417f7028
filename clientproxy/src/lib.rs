//! walle client proxy: calls to a service by name, spread over the nodes
//! discovery finds for it.
//!
//! What exists now is the sans-io core, with no networking:
//!
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
//! Still to come: the `ClientProxy` itself, which watches a discovery
//! target, connects to an entry lazily on its first pick, keeps the
//! clients of unchanged entries, drains and closes removed ones, fails a
//! call that never reached the wire over to another entry, and reports
//! per-entry state, in-flight calls, calls and failures.
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

mod balance;
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
pub use entry::{EntryStats, EntryStatus};
pub use error::Error;
pub use health::{Health, HealthOptions};
pub use options::{ProxyCallOptions, ProxyOptions};
pub use proxy::{ClientProxy, ClientProxyBuilder};
