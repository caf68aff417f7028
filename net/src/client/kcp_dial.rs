//! The kcp dialer: a UDP socket of its own, connected to the server, with
//! a fresh random conv for every dial (as kcp-go picks one), so that a
//! reconnect is a new session to the server and never mixes with what is
//! left of the old one.
//!
//! KCP has no handshake; the dial makes one of the stream's first segment:
//! it sends the session's hello (an empty push, sn 0) until the server
//! acknowledges it, as a TCP connect sends its SYN, so that a dial to a
//! port where nothing listens fails (refused, by the ICMP the kernel
//! reports, or timed out) and goes through the client's backoff. The
//! client reactor then starts the session, whose own hello the server
//! takes as the same segment again, and attaches the process once the
//! server answers it (see `evloop::kcp`).

use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

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
            let conv = fresh_conv();
            let socket = handshake(UdpSocket::from_std(socket)?, conv)
                .await?
                .into_std()?;
            Ok(Box::new(Kcp {
                socket,
                peer,
                conv,
                opts,
            }) as Box<dyn Dialled>)
        })
    }
}

/// The hello of session `conv`: a push of nothing, sn 0, as the KCP state
/// writes it (little-endian: conv, cmd 81, frg, wnd, ts, sn, una, len).
fn hello(conv: u32) -> [u8; 24] {
    let mut segment = [0u8; 24];
    segment[..4].copy_from_slice(&conv.to_le_bytes());
    segment[4] = 81;
    segment[6..8].copy_from_slice(&128u16.to_le_bytes());
    segment
}

/// Sends the hello of `conv` until the server answers for that conv (its
/// ack), resending after 100 ms, then twice as long each time (up to 1 s);
/// the client's connect timeout bounds it. A refusal the kernel reports
/// fails it.
async fn handshake(socket: UdpSocket, conv: u32) -> io::Result<UdpSocket> {
    let hello = hello(conv);
    let mut wait = Duration::from_millis(100);
    let mut buf = [0u8; 2048];
    loop {
        socket.send(&hello).await?;
        let until = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(until, socket.recv(&mut buf)).await {
                Err(_) => break, // send it again
                Ok(Ok(n)) if n >= 24 && buf[..4] == conv.to_le_bytes() => return Ok(socket),
                Ok(Ok(_)) => {} // not of this session
                Ok(Err(e)) => return Err(e),
            }
        }
        wait = (wait * 2).min(Duration::from_secs(1));
    }
}

/// A UDP socket connected to a server that answered, for the client
/// reactor to start session `conv` on.
struct Kcp {
    socket: std::net::UdpSocket,
    peer: SocketAddr,
    conv: u32,
    opts: KcpOptions,
}

impl Dialled for Kcp {
    fn peer(&self) -> SocketAddr {
        self.peer
    }
    fn hand_over(self: Box<Self>, attach: Attach, conn: Arc<ConnOptions>) -> io::Result<()> {
        self.socket.set_nonblocking(true)?;
        evloop::kcp::adopt(self.socket, self.peer, self.conv, &self.opts, attach, conn);
        Ok(())
    }
}
