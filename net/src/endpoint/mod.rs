//! What a client dials: a transport's URL (`tcp://host:port`, a bare
//! `host:port`, `ws://host:port/path`, `wss://…`, `kcp://host:port`), kept
//! as written until the dial resolves its host.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod into;

pub use into::IntoEndpoint;

/// Which transport an endpoint's URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `tcp://host:port`, or a bare `host:port`: length-prefixed frames
    /// over TCP.
    Tcp,
    /// `ws://host:port/path`: one WebSocket binary message per frame.
    Ws,
    /// `wss://host:port/path`: WebSocket over TLS.
    Wss,
    /// `kcp://host:port`: KCP over UDP.
    Kcp,
}

impl Scheme {
    /// The scheme as written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Tcp => "tcp",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
            Scheme::Kcp => "kcp",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [Scheme::Tcp, Scheme::Ws, Scheme::Wss, Scheme::Kcp]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }

    /// The transport that carries it.
    pub(crate) fn transport(self) -> TransportKind {
        match self {
            Scheme::Tcp => TransportKind::Tcp,
            Scheme::Ws | Scheme::Wss => TransportKind::Ws,
            Scheme::Kcp => TransportKind::Kcp,
        }
    }

    /// WebSocket URLs carry a path (and a query) and may leave the port
    /// out; the others name a host and a port only.
    fn is_web(self) -> bool {
        matches!(self, Scheme::Ws | Scheme::Wss)
    }

    fn default_port(self) -> Option<u16> {
        match self {
            Scheme::Ws => Some(80),
            Scheme::Wss => Some(443),
            Scheme::Tcp | Scheme::Kcp => None,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transport under a connection, one of the two choices a backend
/// makes (the other is its [`Driver`](crate::options::Driver)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransportKind {
    /// A TCP byte stream.
    Tcp,
    /// WebSocket messages (over TCP, or TLS).
    Ws,
    /// KCP over a UDP socket.
    Kcp,
}

/// What a client dials: a scheme, a host (a name or an IP address, not
/// resolved until the dial, so that a name follows its DNS records from one
/// reconnect to the next), a port and, for WebSocket, a path.
///
/// Parsed from `tcp://host:port`, a bare `host:port` (tcp),
/// `ws://host[:port]/path`, `wss://host[:port]/path` and `kcp://host:port`;
/// an IPv6 address goes in brackets (`[::1]:7000`). It prints in full, with
/// its scheme and port (a bare `host:port` prints as `tcp://host:port`),
/// and reads and writes as that string in a settings file.
///
/// ```
/// use walle_net::{Endpoint, Scheme};
///
/// let e: Endpoint = "localhost:7000".parse()?;
/// assert_eq!((e.scheme(), e.host(), e.port()), (Scheme::Tcp, "localhost", 7000));
/// assert_eq!(e.to_string(), "tcp://localhost:7000");
///
/// let ws: Endpoint = "ws://[::1]/game?v=2".parse()?;
/// assert_eq!((ws.host(), ws.port(), ws.path()), ("::1", 80, Some("/game?v=2")));
/// # Ok::<(), walle_net::EndpointError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Endpoint {
    scheme: Scheme,
    /// An IPv6 address without its brackets.
    host: String,
    port: u16,
    /// WebSocket only: at least `/`.
    path: Option<String>,
    /// The address it was made from, if any: dialled as it is, so that an
    /// IPv6 scope id (which the host text does not carry) is kept.
    addr: Option<SocketAddr>,
    /// No scheme was written (a bare `host:port`, a `(host, port)` pair, a
    /// socket address): tcp, unless the backend's transport is kcp.
    bare: bool,
}

/// Two endpoints are equal when they dial the same place: the address
/// an endpoint was made from counts only through its IPv6 scope id.
impl PartialEq for Endpoint {
    fn eq(&self, other: &Self) -> bool {
        (self.scheme, &self.host, self.port, &self.path, self.scope())
            == (
                other.scheme,
                &other.host,
                other.port,
                &other.path,
                other.scope(),
            )
    }
}

impl Eq for Endpoint {}

impl std::hash::Hash for Endpoint {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.scheme, &self.host, self.port, &self.path, self.scope()).hash(state);
    }
}

impl Endpoint {
    /// The scheme: which transport dials it.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host as written: a DNS name or an IP address (IPv6 without
    /// brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The IPv6 scope id of the address it was made from; 0 for none.
    fn scope(&self) -> u32 {
        match self.addr {
            Some(SocketAddr::V6(v6)) => v6.scope_id(),
            _ => 0,
        }
    }

    /// The socket address this endpoint was made from, if it was made from
    /// one (then dialled as it is, without a lookup). Its IPv6 scope id is
    /// kept here only: the endpoint's text does not carry it.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// The path and query of a WebSocket endpoint (at least `/`); `None`
    /// for the other schemes.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The transport that carries it.
    pub(crate) fn transport(&self) -> TransportKind {
        self.scheme.transport()
    }

    /// An endpoint written without a scheme (a bare `host:port`, a `(host,
    /// port)` pair, a socket address) names no transport of its own: for a kcp backend it dials
    /// kcp, as `kcp://host:port`.
    pub(crate) fn for_transport(mut self, kind: TransportKind) -> Self {
        if self.bare && kind == TransportKind::Kcp {
            self.scheme = Scheme::Kcp;
        }
        self
    }

    /// A tcp endpoint of `host` (checked as the parser checks it).
    fn tcp(host: &str, port: u16) -> Result<Self, &'static str> {
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        check_host(host)?;
        Ok(Endpoint {
            scheme: Scheme::Tcp,
            host: host.to_owned(),
            port,
            path: None,
            addr: None,
            bare: true,
        })
    }

    fn parse(input: &str) -> Result<Self, &'static str> {
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("it contains a space or a control character");
        }
        let bare = !input.contains("://");
        let (scheme, rest) = match input.split_once("://") {
            Some((name, rest)) => (
                Scheme::parse(name).ok_or("unknown scheme (known: tcp, ws, wss, kcp)")?,
                rest,
            ),
            None => (Scheme::Tcp, input),
        };
        if rest.contains('#') {
            return Err("an endpoint has no fragment");
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err("user info is not supported");
        }
        let (host, port) = split_host_port(authority)?;
        check_host(host)?;
        let port = match port {
            Some(port) => parse_port(port)?,
            None => scheme
                .default_port()
                .ok_or("a port is needed (host:port)")?,
        };
        let path = match (scheme.is_web(), path) {
            (true, "") => Some("/".to_owned()),
            (true, path) if path.starts_with('?') => Some(format!("/{path}")),
            (true, path) => Some(path.to_owned()),
            (false, "") => None,
            (false, _) => return Err("only ws and wss endpoints have a path"),
        };
        Ok(Endpoint {
            scheme,
            host: host.to_owned(),
            port,
            path,
            addr: None,
            bare,
        })
    }
}

/// Splits `host:port` or `[v6]:port` (the port may be missing).
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), &'static str> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or("an unclosed '['")?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err("not an IPv6 address between '[' and ']'");
        }
        return match after {
            "" => Ok((host, None)),
            after => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err("a port after ']' follows a ':'"),
            },
        };
    }
    match authority.split_once(':') {
        Some((_, port)) if port.contains(':') => {
            Err("an IPv6 address goes in brackets: [::1]:port")
        }
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((authority, None)),
    }
}

fn parse_port(port: &str) -> Result<u16, &'static str> {
    let digits = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    match port.parse::<u16>() {
        Ok(0) => Err("port 0 cannot be dialled"),
        Ok(port) if digits => Ok(port),
        _ => Err("the port is not a number from 1 to 65535"),
    }
}

/// A DNS name (letters, digits, `-`, `_`, `.`) or an IP address.
fn check_host(host: &str) -> Result<(), &'static str> {
    if host.is_empty() {
        return Err("the host is missing");
    }
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if host.chars().all(name) {
        Ok(())
    } else {
        Err("the host is neither a DNS name nor an IP address")
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        write!(f, ":{}{}", self.port, self.path.as_deref().unwrap_or(""))
    }
}

/// Why a string is not an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid endpoint {input:?}: {reason}")]
pub struct EndpointError {
    input: String,
    reason: &'static str,
}

impl EndpointError {
    fn new(input: &str, reason: &'static str) -> Self {
        EndpointError {
            input: input.to_owned(),
            reason,
        }
    }

    /// The text that did not parse.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Endpoint::parse(s).map_err(|reason| EndpointError::new(s, reason))
    }
}

impl From<SocketAddr> for Endpoint {
    /// A tcp endpoint of that address.
    fn from(addr: SocketAddr) -> Self {
        Endpoint {
            scheme: Scheme::Tcp,
            host: addr.ip().to_string(),
            port: addr.port(),
            path: None,
            addr: Some(addr),
            bare: true,
        }
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
