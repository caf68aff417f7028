//! Socket setup both backends share.

use std::io;
use std::net::SocketAddr;

/// Connections the kernel keeps waiting for an accept (the standard
/// library's 128 drops SYNs under a burst of connects, which then wait a
/// second for a retransmission).
const BACKLOG: i32 = 1024;

/// A non-blocking TCP listener on `addr` with SO_REUSEADDR, and
/// SO_REUSEPORT when asked (one listener per event loop).
pub(crate) fn tcp_listener(
    addr: SocketAddr,
    reuse_port: bool,
) -> io::Result<std::net::TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
