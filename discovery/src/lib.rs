//! walle service discovery: nodes registered under a service path with a
//! TTL, and watched by the callers of that service.
//!
//! - [`Node`]: id, network, address, balancer name, state, metadata; stored
//!   as JSON (`net`, `addr`, `bn`, `state`, `md`) under `/<prefix>/<id>`.
//! - [`Registration`]: register with a TTL (kept alive by the store),
//!   online, offline, deregister; a wildcard listen address is published as
//!   a reachable one ([`reachable_addr`]).
//! - [`Discovery`]: the current nodes of a service and a stream of
//!   [`Change`]s (insert, update, remove).
//! - [`Drivers`]: the target URL's scheme picks the driver —
//!   `etcd://host:port[,host:port]/prefix`, `mem:///prefix`,
//!   `static://addr1,addr2` — and users add their own ([`Driver`]).
//!
//! It is not a balancer nor a connection pool: the client proxy picks and
//! dials nodes from a [`Discovery`].
//!
//! ```
//! use std::time::Duration;
//! use walle_discovery::{Change, Drivers, Node};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let drivers = Drivers::new();
//! let mut echo = drivers.resolve("mem:///services/echo").await?;
//! assert!(echo.nodes().is_empty());
//!
//! let node = Node::new("127.0.0.1:7000").with_id("echo-1");
//! let mut registration = drivers.register("mem:///services/echo", node, Duration::from_secs(3)).await?;
//! assert!(matches!(echo.next().await, Some(Change::Insert(n)) if n.id == "echo-1"));
//!
//! registration.offline().await?;
//! assert!(matches!(echo.next().await, Some(Change::Update(n)) if !n.is_online()));
//! registration.deregister().await?;
//! assert_eq!(echo.next().await, Some(Change::Remove("echo-1".into())));
//! # Ok::<(), walle_discovery::Error>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![warn(clippy::unwrap_used)]

mod addr;
mod discovery;
mod driver;
mod error;
mod node;
mod registry;

pub use addr::reachable_addr;
pub use discovery::{Change, Discovery};
#[cfg(feature = "etcd")]
pub use driver::EtcdDriver;
pub use driver::{Driver, Drivers, MemDriver, StaticDriver, Target};
pub use error::{Error, Result};
pub use node::{Node, State};
pub use registry::{Registration, Registry, StoreRegistry};
/// The boxed future the object-safe traits ([`Driver`], [`Registry`]) return.
pub use walle_kvstore::BoxFuture;
