//! Settings of the WebSocket backend.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::millis;

/// Settings of the WebSocket backend ([`Backend::ws`](crate::Backend::ws)),
/// for servers and clients.
///
/// Each connection runs on tokio tasks, as on the tcp backend; one binary
/// message carries one frame body (no length prefix). The buffers are a
/// TCP connection's: reads land in a per-thread buffer and a connection
/// keeps only what arrived of a message not yet whole; writes go from the
/// send queue (bounded by [`ConnOptions`](crate::ConnOptions)) with a
/// header in front of each frame, with no write buffer of the link's own
/// (a client's masked copy aside).
///
/// ```
/// use std::time::Duration;
/// use walle_net::{Backend, WsOptions};
///
/// let ws = WsOptions::default()
///     .path("/game")
///     .allow_origin("https://play.example.com")
///     .subprotocol("walle")
///     .handshake_timeout(Duration::from_secs(5));
/// let backend = Backend::Ws(ws);
/// assert_eq!(backend.name(), "ws");
///
/// // From a settings file: missing fields keep their defaults.
/// let from_file: Backend = serde_json::from_str(r#"{"kind":"ws","path":"/game"}"#)?;
/// let Backend::Ws(ws) = from_file else { unreachable!() };
/// assert_eq!((ws.path.as_str(), ws.close_timeout), ("/game", Duration::from_secs(1)));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct WsOptions {
    /// Servers: the path the upgrade is served on (the query is not
    /// compared); a request for another gets 404. Default `/`. Clients
    /// take the path from their `ws://host:port/path` endpoint.
    pub path: String,
    /// Servers: the `Origin`s a browser page may connect from, exactly as
    /// the browser sends them (`https://host[:port]`); a request from
    /// another origin gets 403. Empty (the default): any origin. A request
    /// without an `Origin` header (not from a browser) is let in: the check
    /// keeps other sites' pages out, not other programs.
    pub origins: Vec<String>,
    /// The subprotocol spoken (`Sec-WebSocket-Protocol`). Servers: when
    /// set, a client must offer it (or gets 400) and the answer names it.
    /// Clients: when set, it is offered and the server must choose it.
    pub subprotocol: Option<String>,
    /// Runtime worker threads of a server. 0: one per core.
    pub workers: usize,
    /// Largest message taken, in bytes; a longer one closes the connection
    /// with 1009 as soon as its header says so, before it is buffered. 0
    /// (the default): the protocol's maximum frame size, which also caps
    /// any other value.
    pub max_message: usize,
    /// How long a connection may take to complete its upgrade. Default
    /// 10 s.
    #[serde(with = "millis")]
    pub handshake_timeout: Duration,
    /// How long a closing side waits for the peer's close frame after
    /// sending its own, before it drops the connection. Default 1 s.
    #[serde(with = "millis")]
    pub close_timeout: Duration,
}

impl Default for WsOptions {
    fn default() -> Self {
        WsOptions {
            path: "/".to_owned(),
            origins: Vec::new(),
            subprotocol: None,
            workers: 0,
            max_message: 0,
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(1),
        }
    }
}

impl WsOptions {
    /// Sets the upgrade path of a server.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }
    /// Adds an origin a browser page may connect from.
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }
    /// Sets the subprotocol.
    pub fn subprotocol(mut self, name: impl Into<String>) -> Self {
        self.subprotocol = Some(name.into());
        self
    }
    /// Sets the runtime worker threads of a server.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }
    /// Sets the largest message taken (0: the protocol's maximum frame).
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }
    /// Sets how long an upgrade may take.
    pub fn handshake_timeout(mut self, d: Duration) -> Self {
        self.handshake_timeout = d;
        self
    }
    /// Sets how long a close waits for the peer's close frame.
    pub fn close_timeout(mut self, d: Duration) -> Self {
        self.close_timeout = d;
        self
    }

    /// The largest message taken, for a protocol whose frames are at most
    /// `max_frame` bytes.
    pub(crate) fn message_limit(&self, max_frame: usize) -> usize {
        match self.max_message {
            0 => max_frame,
            n => n.min(max_frame),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Backend;

    #[test]
    fn the_message_limit_follows_the_protocol_unless_set_lower() {
        let ws = WsOptions::default();
        assert_eq!(ws.message_limit(1 << 20), 1 << 20);
        assert_eq!(ws.clone().max_message(4096).message_limit(1 << 20), 4096);
        assert_eq!(ws.max_message(8 << 20).message_limit(1 << 20), 1 << 20);
        let Backend::Ws(fitted) = Backend::ws().with_max_frame(64 * 1024) else {
            unreachable!()
        };
        assert_eq!(fitted.max_message, 64 * 1024);
    }

    #[test]
    fn options_round_trip_through_a_file() {
        let ws = WsOptions::default()
            .path("/game")
            .allow_origin("https://a.example")
            .subprotocol("walle")
            .close_timeout(Duration::from_millis(250));
        let text = serde_json::to_string(&Backend::Ws(ws.clone())).unwrap();
        assert!(text.contains(r#""close_timeout":250"#), "{text}");
        let again: Backend = serde_json::from_str(&text).unwrap();
        assert_eq!(again, Backend::Ws(ws));
        assert_eq!(Backend::parse("ws"), Some(Backend::ws()));
    }
}
