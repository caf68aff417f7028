//! How a client reaches its server: one dialer per (driver, transport)
//! pair, picked once at build by [`dialer_for`]. A dial connects (resolving
//! the endpoint's host then, so a DNS name is looked up again on every
//! reconnect); what it connected is then handed to the driver, which sets
//! the connection up and attaches its process.

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tokio::net::TcpStream;

use crate::conn::Attach;
use crate::endpoint::Scheme;
use crate::endpoint::{Endpoint, TransportKind};
use crate::options::{Backend, ConnOptions, Driver, WsOptions};
use crate::{NetError, evloop, tcp, ws};

/// A dial under way. It owns what it needs, so the client is not held
/// while it runs.
pub(super) type Dialling = Pin<Box<dyn Future<Output = io::Result<Box<dyn Dialled>>> + Send>>;

/// Connects a client to its endpoint, on the client's runtime.
pub(super) trait Dialer: Send + Sync + 'static {
    /// Connects to `endpoint`, resolving its host now; an unresolvable
    /// host is a failed dial like a refused one.
    fn dial(&self, endpoint: Endpoint) -> Dialling;
}

/// A connected transport not yet handed to its driver: dropping it
/// closes it.
pub(super) trait Dialled: Send {
    /// The address it reached.
    fn peer(&self) -> SocketAddr;
    /// Hands it to the driver, which sets the connection up and calls
    /// `attach` to build its process.
    fn hand_over(self: Box<Self>, attach: Attach, conn: Arc<ConnOptions>) -> io::Result<()>;
}

/// The dialer of `backend` for `endpoint`, or why it has none: the
/// backend names its transport, and an endpoint of another cannot be
/// dialled by it.
///
/// `on_caller`: the client runs on its caller's runtime
/// ([`caller_runtime`](super::ClientOptions::caller_runtime)), where the
/// event loop's connections are driven by tokio too.
pub(super) fn dialer_for(
    backend: &Backend,
    endpoint: &Endpoint,
    on_caller: bool,
) -> Result<Box<dyn Dialer>, NetError> {
    let unsupported = || NetError::UnsupportedScheme {
        scheme: endpoint.scheme(),
        backend: backend.name(),
    };
    if let Backend::Ws(opts) = backend {
        // A plain address (tcp) names the server; WebSocket is spoken to
        // it on the backend's path. wss (TLS under WebSocket) is not
        // supported yet: TLS runs on the evloop and tcp backends.
        return match endpoint.scheme() {
            Scheme::Ws | Scheme::Tcp => Ok(Box::new(WsDialer(Arc::new(opts.clone())))),
            _ => Err(unsupported()),
        };
    }
    if endpoint.transport() != backend.transport() {
        return Err(unsupported());
    }
    match (backend.driver(), endpoint.transport()) {
        (Driver::Mio, TransportKind::Tcp) if on_caller => match backend {
            Backend::Evloop(ev) => tokio_tcp(ev.tls.as_ref(), endpoint),
            _ => tokio_tcp(None, endpoint),
        },
        (Driver::Mio, TransportKind::Tcp) => {
            let (spread, tls) = match backend {
                Backend::Evloop(ev) => (ev.loop_count(), ev.tls.as_ref()),
                _ => (1, None),
            };
            let tls = match tls {
                Some(tls) => {
                    let (config, name) = crate::tls::client(tls, endpoint.host())?;
                    evloop::Tls::Client(config, name)
                }
                None => evloop::Tls::Plain,
            };
            Ok(Box::new(TcpDialer::<Mio>(spread, PhantomData, tls)))
        }
        (Driver::Tokio, TransportKind::Tcp) => match backend {
            Backend::Tcp(opts) => tokio_tcp(opts.tls.as_ref(), endpoint),
            _ => tokio_tcp(None, endpoint),
        },
        (Driver::Mio, TransportKind::Kcp) => match backend {
            Backend::Kcp(opts) => Ok(Box::new(super::kcp_dial::KcpDialer(opts.clone()))),
            _ => Err(unsupported()),
        },
        (_, TransportKind::Ws | TransportKind::Kcp) => Err(unsupported()),
    }
}

/// The tokio driver's TCP dialer, with TLS when `tls` is set.
fn tokio_tcp(
    tls: Option<&crate::TlsOptions>,
    endpoint: &Endpoint,
) -> Result<Box<dyn Dialer>, NetError> {
    match tls {
        Some(tls) => {
            let (config, name) = crate::tls::client(tls, endpoint.host())?;
            Ok(Box::new(TlsDialer { config, name }))
        }
        None => Ok(Box::new(TcpDialer::<Tokio>(
            1,
            PhantomData,
            evloop::Tls::Plain,
        ))),
    }
}

/// Dials TCP and upgrades to WebSocket, for the tokio driver.
struct WsDialer(Arc<WsOptions>);

/// An upgraded WebSocket connection, for the tokio driver to adopt.
struct Ws {
    ws: ws::Upgraded,
    peer: SocketAddr,
    opts: Arc<WsOptions>,
}

impl Dialer for WsDialer {
    /// Connects to the endpoint's host and port and upgrades on its path;
    /// a refused upgrade (403, 404, ...) is a failed dial.
    fn dial(&self, endpoint: Endpoint) -> Dialling {
        let opts = self.0.clone();
        Box::pin(async move {
            let max = match opts.max_message {
                0 => walle_packet::DEFAULT_MAX_FRAME,
                n => n,
            };
            let (ws, peer) = ws::dial(&endpoint, &opts, max).await?;
            Ok(Box::new(Ws { ws, peer, opts }) as Box<dyn Dialled>)
        })
    }
}

impl Dialled for Ws {
    fn peer(&self) -> SocketAddr {
        self.peer
    }
    fn hand_over(self: Box<Self>, attach: Attach, conn: Arc<ConnOptions>) -> io::Result<()> {
        ws::adopt(self.ws, self.peer, &attach, conn, &self.opts);
        Ok(())
    }
}

/// The event loop: dialled with tokio, the socket then moves to a client
/// reactor.
enum Mio {}

/// tokio: the connection's tasks run on the client's runtime.
enum Tokio {}

/// Dials TCP for the driver `D`; the event loop's connections spread over
/// that many client reactors, with TLS when `tls` says (the event loop's
/// only: the tokio driver's TLS has a dialer of its own).
struct TcpDialer<D>(usize, PhantomData<D>, evloop::Tls);

/// A TCP connection, for the driver `D` to adopt.
struct Tcp<D> {
    stream: TcpStream,
    peer: SocketAddr,
    spread: usize,
    tls: evloop::Tls,
    driver: PhantomData<D>,
}

impl<D: Send + Sync + 'static> Dialer for TcpDialer<D>
where
    Tcp<D>: Dialled,
{
    /// Connects to the endpoint's host and port, trying each address the
    /// host resolves to in turn.
    fn dial(&self, endpoint: Endpoint) -> Dialling {
        let (spread, tls) = (self.0, self.2.clone());
        Box::pin(async move {
            let stream = match endpoint.socket_addr() {
                Some(addr) => TcpStream::connect(addr).await?,
                None => TcpStream::connect((endpoint.host(), endpoint.port())).await?,
            };
            let peer = stream.peer_addr()?;
            let driver = PhantomData::<D>;
            Ok(Box::new(Tcp {
                stream,
                peer,
                spread,
                tls,
                driver,
            }) as Box<dyn Dialled>)
        })
    }
}

impl Dialled for Tcp<Mio> {
    fn peer(&self) -> SocketAddr {
        self.peer
    }
    fn hand_over(self: Box<Self>, attach: Attach, conn: Arc<ConnOptions>) -> io::Result<()> {
        let stream = self.stream.into_std()?;
        stream.set_nonblocking(true)?;
        evloop::adopt(stream, self.peer, attach, conn, self.spread, &self.tls);
        Ok(())
    }
}

impl Dialled for Tcp<Tokio> {
    fn peer(&self) -> SocketAddr {
        self.peer
    }
    fn hand_over(self: Box<Self>, attach: Attach, conn: Arc<ConnOptions>) -> io::Result<()> {
        tcp::adopt(self.stream, self.peer, &attach, conn);
        Ok(())
    }
}

/// Dials TCP and speaks TLS over it, for the tokio driver.
struct TlsDialer {
    config: Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
}

/// A TCP connection to be adopted with a TLS client session.
struct TlsTcp {
    stream: TcpStream,
    peer: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
}

impl Dialer for TlsDialer {
    fn dial(&self, endpoint: Endpoint) -> Dialling {
        let (config, name) = (self.config.clone(), self.name.clone());
        Box::pin(async move {
            let stream = TcpStream::connect((endpoint.host(), endpoint.port())).await?;
            let peer = stream.peer_addr()?;
            Ok(Box::new(TlsTcp {
                stream,
                peer,
                config,
                name,
            }) as Box<dyn Dialled>)
        })
    }
}

impl Dialled for TlsTcp {
    fn peer(&self) -> SocketAddr {
        self.peer
    }
    fn hand_over(self: Box<Self>, attach: Attach, conn: Arc<ConnOptions>) -> io::Result<()> {
        tcp::tls::adopt_client(
            self.stream,
            &self.config,
            self.name,
            self.peer,
            &attach,
            conn,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(backend: &Backend, endpoint: &str) -> String {
        let endpoint: Endpoint = endpoint.parse().expect("an endpoint");
        match dialer_for(backend, &endpoint, false) {
            Ok(_) => panic!("{} dials {endpoint}", backend.name()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn kcp_dials_kcp_only() {
        let kcp = Backend::kcp(crate::KcpOptions::default());
        let endpoint: Endpoint = "kcp://127.0.0.1:1".parse().expect("an endpoint");
        assert!(dialer_for(&kcp, &endpoint, false).is_ok());
        for scheme in ["tcp", "ws"] {
            assert_eq!(
                error(&kcp, &format!("{scheme}://h:1")),
                format!("the kcp backend cannot dial {scheme}:// endpoints")
            );
        }
    }

    #[test]
    fn the_ws_backend_dials_ws_and_plain_addresses() {
        let ws = Backend::ws();
        let dialled = [
            "ws://127.0.0.1:1/",
            "ws://localhost:1/game?v=1",
            "ws://[::1]:1",
            "127.0.0.1:1",
            "tcp://localhost:1",
        ];
        for endpoint in dialled {
            let endpoint: Endpoint = endpoint.parse().expect("an endpoint");
            assert!(dialer_for(&ws, &endpoint, false).is_ok(), "{endpoint}");
        }
        for (endpoint, scheme) in [("wss://h/", "wss"), ("kcp://h:1", "kcp")] {
            assert_eq!(
                error(&ws, endpoint),
                format!("the ws backend cannot dial {scheme}:// endpoints")
            );
        }
    }

    #[test]
    fn todays_backends_dial_tcp_only() {
        for backend in [Backend::evloop(), Backend::tcp()] {
            for endpoint in ["tcp://127.0.0.1:1", "localhost:1", "[::1]:1"] {
                let endpoint: Endpoint = endpoint.parse().expect("an endpoint");
                assert!(dialer_for(&backend, &endpoint, false).is_ok(), "{endpoint}");
            }
            let name = backend.name();
            for scheme in ["ws", "wss", "kcp"] {
                assert_eq!(
                    error(&backend, &format!("{scheme}://h:1")),
                    format!("the {name} backend cannot dial {scheme}:// endpoints")
                );
            }
        }
    }
}
