//! walle's io layer.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![warn(clippy::unwrap_used)]

mod client;
mod conn;
mod error;
mod evloop;
mod hub;
mod options;
mod server;
mod session;
mod tcp;

pub use client::{Client, ClientBuilder, ClientOptions};
pub use error::NetError;
pub use options::{
    Backend, Balance, ConnOptions, EvloopOptions, HeartbeatMode, ServerOptions, TcpOptions,
    WriteMode,
};
pub use server::{Server, ServerBuilder, SessionHook};
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
}
