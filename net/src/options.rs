//! Settings of servers, clients and backends; all loadable from a file
//! (durations in milliseconds unless a field says otherwise, 0 meaning
//! "off" where a line says so).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use walle_process::ProcessOptions;

use crate::endpoint::TransportKind;

pub(crate) mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().try_into().unwrap_or(u64::MAX))
    }
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

pub(crate) mod micros {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_micros().try_into().unwrap_or(u64::MAX))
    }
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_micros)
    }
}

/// `now + wait`, or a century from now where that is past what an
/// `Instant` holds: durations come from files, and a huge one means "not in
/// this process's life", never a panic.
pub(crate) fn later(now: Instant, wait: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(wait)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

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
#[serde(default)]
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

/// How the event loop spreads new connections over its loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    /// Each loop in turn.
    #[default]
    RoundRobin,
    /// The loop with the fewest connections.
    LeastConnections,
    /// A hash of the peer address: a client lands on the same loop.
    SourceHash,
}

/// Settings of the event-loop backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct EvloopOptions {
    /// Event loops (threads). 0: one per core.
    pub loops: usize,
    /// How the acceptor spreads connections.
    pub balance: Balance,
    /// One SO_REUSEPORT listener per loop instead of one acceptor.
    pub reuse_port: bool,
    /// Bytes read per read call. Default 64 KiB.
    pub read_chunk: usize,
    /// Events taken per poll. Default 1024.
    pub events: usize,
    /// After a turn that had events, a reactor keeps polling without
    /// sleeping for this long, yielding its core between polls, before it
    /// blocks. Under steady load the next readiness usually arrives within
    /// it, which saves a sleep and a wake-up per turn; an idle reactor
    /// sleeps once it runs out. Zero: block at once. Default 50 µs; in a
    /// file, `busy_poll_us`.
    #[serde(rename = "busy_poll_us", with = "micros")]
    pub busy_poll: Duration,
}

impl Default for EvloopOptions {
    fn default() -> Self {
        EvloopOptions {
            loops: 0,
            balance: Balance::RoundRobin,
            reuse_port: false,
            read_chunk: 64 * 1024,
            events: 1024,
            busy_poll: Duration::from_micros(50),
        }
    }
}

impl EvloopOptions {
    /// Sets the number of loops.
    pub fn loops(mut self, n: usize) -> Self {
        self.loops = n;
        self
    }
    /// Sets the balancing of new connections.
    pub fn balance(mut self, balance: Balance) -> Self {
        self.balance = balance;
        self
    }
    /// One SO_REUSEPORT listener per loop.
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }
    /// Sets how long a reactor polls without sleeping after a busy turn.
    pub fn busy_poll(mut self, d: Duration) -> Self {
        self.busy_poll = d;
        self
    }
    pub(crate) fn loop_count(&self) -> usize {
        match self.loops {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// Settings of the tokio backend.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct TcpOptions {
    /// Runtime worker threads. 0: one per core.
    pub workers: usize,
}

/// What runs a backend's connections: one of its two choices, the other
/// being its [`TransportKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Driver {
    /// The event loop's reactors on mio.
    Mio,
    /// Tasks on a tokio runtime.
    Tokio,
}

/// Which io backend runs a server or client: a one-line choice that no
/// handler notices.
///
/// Inside, a backend is two choices: a driver (the mio event loop, or
/// tokio tasks) and a transport (tcp today); both of today's backends
/// carry tcp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Backend {
    /// The gnet-style event loop on mio.
    Evloop(EvloopOptions),
    /// tokio tasks: a reader and a writer per connection.
    Tcp(TcpOptions),
}

impl Backend {
    /// The event loop with default settings.
    pub fn evloop() -> Self {
        Backend::Evloop(EvloopOptions::default())
    }
    /// The tokio backend with default settings.
    pub fn tcp() -> Self {
        Backend::Tcp(TcpOptions::default())
    }
    /// Parses `"evloop"` or `"tcp"`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "evloop" => Some(Backend::evloop()),
            "tcp" => Some(Backend::tcp()),
            _ => None,
        }
    }
    /// How the backend's transport delimits frames.
    pub(crate) fn frame_mode(&self) -> walle_packet::FrameMode {
        match self.transport() {
            TransportKind::Tcp | TransportKind::Kcp => walle_packet::FrameMode::Stream,
            TransportKind::Ws => walle_packet::FrameMode::Message,
        }
    }
    /// What runs the backend's connections.
    pub(crate) fn driver(&self) -> Driver {
        match self {
            Backend::Evloop(_) => Driver::Mio,
            Backend::Tcp(_) => Driver::Tokio,
        }
    }
    /// What carries the backend's connections.
    pub(crate) fn transport(&self) -> TransportKind {
        match self {
            Backend::Evloop(_) | Backend::Tcp(_) => TransportKind::Tcp,
        }
    }
    /// The backend's name.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Evloop(_) => "evloop",
            Backend::Tcp(_) => "tcp",
        }
    }
}

impl Default for Backend {
    fn default() -> Self {
        Backend::evloop()
    }
}

/// Settings of a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Sessions at most; connection N+1 is refused. 0: no limit.
    pub max_sessions: usize,
    /// Longest a graceful stop waits for queued writes to flush.
    #[serde(with = "millis")]
    pub drain_timeout: Duration,
    /// Per-connection settings.
    pub conn: ConnOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_sessions: 0,
            drain_timeout: Duration::from_secs(5),
            conn: ConnOptions::default(),
        }
    }
}

impl ServerOptions {
    /// Sets the accept limit.
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n;
        self
    }
    /// Sets the bound of a graceful stop's flush.
    pub fn drain_timeout(mut self, d: Duration) -> Self {
        self.drain_timeout = d;
        self
    }
    /// Sets the per-connection settings.
    pub fn conn(mut self, conn: ConnOptions) -> Self {
        self.conn = conn;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options load from a file: durations in the unit the field names,
    /// missing fields at their defaults, and back to the same text.
    #[test]
    fn options_load_from_json() {
        let backend: Backend =
            serde_json::from_str(r#"{"kind":"evloop","loops":2,"busy_poll_us":0}"#).unwrap();
        let Backend::Evloop(ev) = &backend else {
            panic!("not the event loop: {backend:?}");
        };
        assert_eq!(ev.loops, 2);
        assert!(ev.busy_poll.is_zero());
        assert_eq!(ev.read_chunk, EvloopOptions::default().read_chunk);
        let again: Backend =
            serde_json::from_str(&serde_json::to_string(&backend).unwrap()).unwrap();
        assert_eq!(again, backend);

        let conn: ConnOptions = serde_json::from_str(
            r#"{"read_timeout":1500,"send_queue_frames":8,"close_flush_timeout":250}"#,
        )
        .unwrap();
        assert_eq!(conn.read_timeout, Duration::from_millis(1500));
        assert_eq!(conn.close_flush_timeout, Duration::from_millis(250));
        assert_eq!(
            serde_json::from_str::<ConnOptions>("{}")
                .unwrap()
                .close_flush_timeout,
            Duration::from_secs(5)
        );
        assert_eq!(conn.send_queue_frames, 8);
        assert_eq!(conn.write_mode, WriteMode::Async);
    }
}
