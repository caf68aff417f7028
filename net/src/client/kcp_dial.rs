//! The kcp dialer: a UDP socket of its own, connected to the server, with
//! a fresh random conv for every dial (as kcp-go picks one), so that a
//! reconnect is a new session to the server and never mixes with what is
//! left of the old one. The dial is done when the socket is connected; the
//! client reactor then sends the hello and attaches the process once the
//! server answered it (see `evloop::kcp`).

use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use super::dial::{Dialer, Dialled, Dialling};
use crate::conn::Attach;
use crate::endpoint::Endpoint;
use crate::evloop;
use crate::options::{ConnOptions, KcpOptions};

/// Dials kcp with these settings.
pub(super) struct KcpDialer(pub(super) KcpOptions);

/// A random conv, never 0.
fn fresh_conv() -> u32 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::UNIX_EPOCH.elapsed().map_or(0, |d| d.as_nanos()));
    (hasher.finish() as u32).max(1)
}

impl Dialer for KcpDialer {
    /// Resolves the endpoint's host (its first address) and connects a
    /// UDP socket to it.
    fn dial(&self, endpoint: Endpoint) -> Dialling {
        let opts = self.0.clone();
        Box::pin(async move {
            let peer = match endpoint.socket_addr() {
                Some(addr) => addr,
                None => tokio::net::lookup_host((endpoint.host(), endpoint.port()))
                    .await?
                    .next()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?,
            };
            let any: SocketAddr = match peer {
                SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
                SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
            };
            let socket = evloop::kcp::udp_socket(any, false)?;
            socket.connect(peer)?;
            Ok(Box::new(Kcp {
                socket,
                peer,
                opts,
            }) as Box<dyn Dialled>)
        })
    }
}

/// A connected UDP socket, for the client reactor to dial a session on.
struct Kcp {
    socket: std::net::UdpSocket,
    peer: SocketAddr,
    opts: KcpOptions,
}

impl Dialled for Kcp {
    fn peer(&self) -> SocketAddr {
        self.peer
    }
    fn hand_over(self: Box<Self>, attach: Attach, conn: Arc<ConnOptions>) -> io::Result<()> {
        let conv = fresh_conv();
        evloop::kcp::adopt(self.socket, self.peer, conv, &self.opts, attach, conn);
        Ok(())
    }
}
