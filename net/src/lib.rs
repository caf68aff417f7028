//! walle's io layer: servers, clients and sessions over TCP, KCP or
//! WebSocket, on one of the backends chosen by a value, with no handler
//! change.
//!
//! - [`Backend::evloop`]: gnet-style reactors on mio, N loops (one per core
//!   by default), an acceptor balancing connections (round-robin, least
//!   connections, source hash) or one SO_REUSEPORT listener per loop, reads
//!   into loop buffers held only while a frame is partial, vectored writes
//!   from a bounded pooled queue, cross-thread sends through an inbox and a
//!   waker, silence/heartbeat/call timers from a timer wheel per loop.
//! - [`Backend::tcp`]: tokio, a reader and a writer task per connection, a
//!   bounded send queue (error when full, or a bounded wait) and a sync
//!   write mode putting the same bytes on the wire.
//! - [`Backend::kcp`]: KCP over UDP on the event loop's reactors, for
//!   lossy mobile links: a sans-io session table per UDP socket (sessions
//!   keyed by peer address and conv, each a `kcp` crate state updated when
//!   its `check()` says, from the loop's timer wheel), carrying the same
//!   length-prefixed frames as tcp as one byte stream, so any KCP that
//!   follows skywind3000's ikcp talks to it. Bad datagrams are dropped and
//!   counted ([`KcpStats`] in [`IoStats`]); a session table bound, a
//!   new-session rate and a short life for sessions that proved nothing
//!   hold against floods; a dead link closes its session
//!   ([`KcpOptions`]).
//! - [`Backend::ws`]: WebSocket (tokio-tungstenite) on the tcp backend's
//!   connection tasks, for browser and H5 clients: one binary message per
//!   frame body without the length prefix, in every format; an upgrade
//!   path, allowed origins and a subprotocol ([`WsOptions`]); a text
//!   message closes with 1003, a message over the maximum with 1009 before
//!   it is buffered; heartbeats are pings; a stop or close sends a close
//!   frame and waits (bounded) for the peer's.
//!
//! [`Server`] adds sessions ([`SessionHandle`]: push, call, close, values,
//! close callbacks from any thread), broadcast encoded once, multicast,
//! user binding (a re-bind kicks the old session), an accept limit, a
//! new-session hook and a graceful stop. [`Client`] dials an [`Endpoint`]
//! (`tcp://host:port`, a bare `host:port`, a socket address; the host is
//! resolved at each dial, so a DNS name follows its records) eagerly or
//! lazily (asynchronously: [`ClientBuilder::connect`]), reconnects as
//! configured with a capped, jittered backoff, fails pending calls at once
//! on disconnect, routes what the server pushes, and closes when its last
//! handle drops; [`ClientState`] tells what it is doing and
//! [`Client::last_close_reason`] how its latest connection ended.
//! A kcp client dials `kcp://host:port` (or an endpoint written without a
//! scheme) from a UDP socket of its own, with a fresh random conv at each
//! dial. The ws backend dials `ws://host:port/path`, or a plain address on
//! its options' path. `wss://` (TLS) endpoints parse, but a client of a
//! backend that cannot dial an endpoint's scheme fails at build
//! ([`NetError::UnsupportedScheme`]).
//!
//! [`Dispatcher`] runs handlers where a [`Strategy`] says (inline, a worker
//! pool, per-key workers, tokio tasks): the executors behind the process
//! layer's `Dispatch` trait, which own the threads and runtimes the process
//! layer does not.
//!
//! Not here: the wire formats and routing (see `walle-packet`,
//! `walle-process`), TLS.
//!
//! ```
//! use bytes::Bytes;
//! use walle_codec::RawCodec;
//! use walle_net::{Backend, Client, Server};
//! use walle_process::{Context, Router};
//!
//! let mut router = Router::new(RawCodec);
//! router.route("echo", |_: &mut Context, req: Bytes| Ok(req))?;
//! let server = Server::builder(router).backend(Backend::evloop()).bind("127.0.0.1:0")?;
//!
//! let client = Client::builder(server.local_addr(), Router::new(RawCodec))
//!     .backend(Backend::tcp()) // either side picks its own backend
//!     .build()?;
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! let answer: Bytes = runtime.block_on(client.call("echo", &Bytes::from_static(b"hi")))?;
//! assert_eq!(answer, Bytes::from_static(b"hi"));
//! server.stop();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![warn(clippy::unwrap_used)]

mod client;
mod conn;
mod dispatch;
mod endpoint;
mod error;
mod evloop;
mod hub;
mod kcp;
/// The kcp datagram path for a fuzzer (feature `fuzzing`): not an API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use kcp::fuzzing as kcp_fuzzing;
/// The ws frame path for a fuzzer (feature `fuzzing`): not an API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use ws::fuzzing as ws_fuzzing;
mod options;
mod outbound;
mod server;
mod session;
mod socket;
mod tcp;
#[cfg(test)]
mod testing;
mod tls;
mod ws;

pub use client::{Client, ClientBuilder, ClientOptions, ClientState};
pub use dispatch::{
    DEFAULT_MAX_TASKS, DEFAULT_QUEUE, DispatchOptions, Dispatcher, KeyFn, Strategy,
};
pub use endpoint::{Endpoint, EndpointError, IntoEndpoint, Scheme};
pub use error::NetError;
pub use kcp::KcpStats;
pub use options::{
    Backend, Balance, ConnOptions, EvloopOptions, HeartbeatMode, KcpOptions, ServerOptions,
    TcpOptions, TlsOptions, WriteMode, WsOptions,
};
pub use server::{Server, ServerBuilder, SessionHook};

/// Sets the gauges of the pools walle's io layer and processes use by
/// default (labels `pool = "outbound"` and `pool = "process"`; see
/// [`walle_process::record_pool_metrics`]). Call it where metrics are
/// gathered, every few seconds or before each scrape.
pub fn record_pool_metrics() {
    walle_process::record_pool_metrics("outbound", &**outbound::chunk_pool());
    walle_process::record_pool_metrics("process", &*walle_process::default_pool());
}
pub use session::{SessionHandle, UserId};

/// Counters of an io backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IoStats {
    /// Open connections.
    pub connections: usize,
    /// Read buffers held by connections: one per connection with a partial
    /// frame; an idle connection holds none.
    pub read_buffers_held: usize,
    /// Bytes of idle read buffers kept for reuse (bounded per loop).
    pub spare_read_bytes: usize,
    /// The kcp backend's session tables and dropped datagrams.
    pub kcp: KcpStats,
}
