//! Which io backend runs a server or client, and the settings of each.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::kcp::KcpOptions;
use super::micros;
use super::ws::WsOptions;
use crate::endpoint::TransportKind;

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
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct EvloopOptions {
    /// Event loops (threads) of a server. 0: one per core. A client's
    /// connections take turns over that many of the client reactors all
    /// clients share (one per core).
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
    /// TLS on every connection (rustls, driven by the reactor); `None`:
    /// plain TCP.
    pub tls: Option<TlsOptions>,
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
            tls: None,
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
    /// Turns TLS on.
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
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
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TcpOptions {
    /// Runtime worker threads. 0: one per core.
    pub workers: usize,
    /// TLS on every connection (rustls, on the connection's tasks);
    /// `None`: plain TCP.
    pub tls: Option<TlsOptions>,
}

/// TLS settings (rustls, ring's cryptography, TLS 1.2 and 1.3). A server
/// needs `cert` and `key`; a client needs `ca` and checks the server's
/// certificate against `server_name` (default: the endpoint's host).
///
/// ```
/// use walle_net::{Backend, TcpOptions, TlsOptions};
///
/// let server = Backend::Tcp(TcpOptions::default().tls(TlsOptions::server("cert.pem", "key.pem")));
/// let client = Backend::Tcp(TcpOptions::default().tls(TlsOptions::client("ca.pem").server_name("game.example")));
/// # let _ = (server, client);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsOptions {
    /// Server: the certificate chain, a PEM file (leaf first).
    pub cert: Option<std::path::PathBuf>,
    /// Server: the private key, a PEM file (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<std::path::PathBuf>,
    /// Client: the certificates of the authorities to trust, a PEM file.
    pub ca: Option<std::path::PathBuf>,
    /// Client: the name the server's certificate must carry; default:
    /// the endpoint's host.
    pub server_name: Option<String>,
}

impl TlsOptions {
    /// A server's settings: its certificate chain and key, PEM files.
    pub fn server(cert: impl Into<std::path::PathBuf>, key: impl Into<std::path::PathBuf>) -> Self {
        TlsOptions {
            cert: Some(cert.into()),
            key: Some(key.into()),
            ..TlsOptions::default()
        }
    }

    /// A client's settings: the authorities to trust, a PEM file.
    pub fn client(ca: impl Into<std::path::PathBuf>) -> Self {
        TlsOptions {
            ca: Some(ca.into()),
            ..TlsOptions::default()
        }
    }

    /// Sets the name the server's certificate must carry.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }
}

impl TcpOptions {
    /// Sets the runtime's worker threads (0: one per core).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Turns TLS on.
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }
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
/// tokio tasks) and a transport: `evloop` and `tcp` carry tcp, `kcp` runs
/// KCP over UDP on the event loop, `ws` runs WebSocket (over tcp) on tokio
/// tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Backend {
    /// The gnet-style event loop on mio.
    Evloop(EvloopOptions),
    /// tokio tasks: a reader and a writer per connection.
    Tcp(TcpOptions),
    /// KCP over UDP on the event loop's reactors: the same length-prefixed
    /// frames as tcp, carried as a byte stream.
    Kcp(KcpOptions),
    /// WebSocket on tokio tasks (tokio-tungstenite): one binary message
    /// per frame body, served on an upgrade path, ping/pong heartbeats.
    Ws(WsOptions),
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
    /// KCP over UDP with `options` ([`KcpOptions::default`] is `fast`).
    pub fn kcp(options: KcpOptions) -> Self {
        Backend::Kcp(options)
    }
    /// The WebSocket backend with default settings (served on `/`).
    pub fn ws() -> Self {
        Backend::Ws(WsOptions::default())
    }
    /// Parses `"evloop"`, `"tcp"`, `"kcp"` or `"ws"`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "evloop" => Some(Backend::evloop()),
            "tcp" => Some(Backend::tcp()),
            "kcp" => Some(Backend::kcp(KcpOptions::default())),
            "ws" => Some(Backend::ws()),
            _ => None,
        }
    }
    /// The backend for a protocol whose frames are at most `max_frame`
    /// bytes: the ws backend's message limit follows it unless set.
    pub(crate) fn with_max_frame(mut self, max_frame: usize) -> Self {
        if let Backend::Ws(opts) = &mut self {
            opts.max_message = opts.message_limit(max_frame);
        }
        self
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
            Backend::Evloop(_) | Backend::Kcp(_) => Driver::Mio,
            Backend::Tcp(_) | Backend::Ws(_) => Driver::Tokio,
        }
    }
    /// What carries the backend's connections.
    pub(crate) fn transport(&self) -> TransportKind {
        match self {
            Backend::Evloop(_) | Backend::Tcp(_) => TransportKind::Tcp,
            Backend::Kcp(_) => TransportKind::Kcp,
            Backend::Ws(_) => TransportKind::Ws,
        }
    }
    /// The backend's name.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Evloop(_) => "evloop",
            Backend::Tcp(_) => "tcp",
            Backend::Kcp(_) => "kcp",
            Backend::Ws(_) => "ws",
        }
    }
}

impl Default for Backend {
    fn default() -> Self {
        Backend::evloop()
    }
}
