//! Settings of one connection, shared by servers and clients.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use walle_process::ProcessOptions;

use super::millis;

/// How heartbeats flow, when an interval is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeartbeatMode {
    /// The server sends a heartbeat every interval.
    #[default]
    ServerTick,
    /// The server answers each heartbeat the client sends.
    Echo,
}

/// How sends reach the socket (the tokio backend; the event loop always
/// queues and writes from its loop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteMode {
    /// Frames go through a bounded queue to a writer task that batches
    /// them into vectored writes.
    #[default]
    Async,
    /// The sender writes to the socket itself, under a lock; what the
    /// socket does not take at once goes to the writer task. The bytes on
    /// the wire are the same as in `Async`.
    Sync,
}

/// Settings of a connection, shared by servers and clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ConnOptions {
    /// Close a connection silent this long (no inbound byte). 0: never.
    #[serde(with = "millis")]
    pub read_timeout: Duration,
    /// Heartbeat interval. 0: no heartbeats. Needs a format with heartbeat
    /// packets (`due`); with others only the silence limit applies.
    #[serde(with = "millis")]
    pub heartbeat: Duration,
    /// Who sends heartbeats.
    pub heartbeat_mode: HeartbeatMode,
    /// A peer silent for more than this many heartbeat intervals is dropped.
    pub heartbeat_misses: u32,
    /// Bound of queued outbound bytes per connection; a send beyond it
    /// fails with `Overloaded`. Default 4 MiB.
    pub send_queue_bytes: usize,
    /// Bound of queued outbound frames per connection (tokio backend),
    /// counted from when its queue was last empty; a send beyond it fails
    /// with `Overloaded`. Default 1024.
    pub send_queue_frames: usize,
    /// How long a send from a plain thread may wait for room in a full
    /// queue (tokio backend), while the writer drains it. 0: fail at once.
    /// A send from a thread that runs tokio tasks (any handler on this
    /// backend, async code of one's own) never blocks that thread: it
    /// fails with `Overloaded` at once, as the writers it would wait for
    /// may need that very thread.
    #[serde(with = "millis")]
    pub send_timeout: Duration,
    /// How long a close keeps flushing what is queued, on every backend;
    /// what is still queued then is dropped and the socket released, so a
    /// peer that stops reading cannot pin a closing connection and its
    /// memory. 0: one write attempt, then drop the rest. Default 5 s.
    #[serde(with = "millis")]
    pub close_flush_timeout: Duration,
    /// Async or sync writes (tokio backend).
    pub write_mode: WriteMode,
    /// TCP_NODELAY. Default on.
    pub nodelay: bool,
    /// The process layer's settings.
    pub process: ProcessOptions,
    /// Set for client connections: they tick heartbeats in echo mode.
    #[serde(skip)]
    pub(crate) client: bool,
}

impl Default for ConnOptions {
    fn default() -> Self {
        ConnOptions {
            read_timeout: Duration::ZERO,
            heartbeat: Duration::ZERO,
            heartbeat_mode: HeartbeatMode::ServerTick,
            heartbeat_misses: 3,
            send_queue_bytes: 4 << 20,
            send_queue_frames: 1024,
            send_timeout: Duration::ZERO,
            close_flush_timeout: Duration::from_secs(5),
            write_mode: WriteMode::Async,
            nodelay: true,
            process: ProcessOptions::default(),
            client: false,
        }
    }
}

impl ConnOptions {
    /// Sets the silence limit.
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.read_timeout = d;
        self
    }
    /// Sets the heartbeat interval and mode.
    pub fn heartbeat(mut self, every: Duration, mode: HeartbeatMode) -> Self {
        self.heartbeat = every;
        self.heartbeat_mode = mode;
        self
    }
    /// Sets the bound of queued outbound bytes.
    pub fn send_queue_bytes(mut self, bytes: usize) -> Self {
        self.send_queue_bytes = bytes;
        self
    }
    /// Sets the bound of queued outbound frames (tokio backend).
    pub fn send_queue_frames(mut self, frames: usize) -> Self {
        self.send_queue_frames = frames;
        self
    }
    /// Sets how long a send waits for room.
    pub fn send_timeout(mut self, d: Duration) -> Self {
        self.send_timeout = d;
        self
    }
    /// Sets how long a close flushes what is queued before dropping it.
    pub fn close_flush_timeout(mut self, d: Duration) -> Self {
        self.close_flush_timeout = d;
        self
    }
    /// Sets the write mode (tokio backend).
    pub fn write_mode(mut self, mode: WriteMode) -> Self {
        self.write_mode = mode;
        self
    }
    /// Sets the process settings.
    pub fn process(mut self, process: ProcessOptions) -> Self {
        self.process = process;
        self
    }

    /// Whether this side sends heartbeats on a timer: servers in
    /// server-tick mode, clients in echo mode.
    pub(crate) fn ticks(&self) -> bool {
        !self.heartbeat.is_zero()
            && (self.heartbeat_mode == HeartbeatMode::ServerTick) != self.client
    }

    /// The silence after which a connection is dropped, if any: the read
    /// timeout, or the heartbeat allowance when heartbeats are on.
    pub(crate) fn silence_limit(&self) -> Option<Duration> {
        let beats = (!self.heartbeat.is_zero())
            .then(|| self.heartbeat.saturating_mul(self.heartbeat_misses.max(1)));
        let read = (!self.read_timeout.is_zero()).then_some(self.read_timeout);
        match (beats, read) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
