//! KCP over the loops: a server binds one UDP socket per reactor (with
//! SO_REUSEPORT when there are several, which keeps each peer on one
//! socket), each a [`KcpDriver`] over a server endpoint; a client's
//! connection is a connected UDP socket of its own, a driver with one
//! session on the client reactor that the TCP clients of the event loop
//! share, so that its timers come from the same wheel and nothing else
//! needs a thread or a runtime.

mod driver;
#[cfg(test)]
mod tests;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mio::net::UdpSocket;

use super::driver::{Ctx, Driver};
use super::{Cmd, EvServer, Loops};
use crate::conn::Attach;
use crate::kcp::{Config, Counters, KcpEndpoint, Role};
use crate::options::{ConnOptions, EvloopOptions, KcpOptions};
use crate::server::Running;
use driver::KcpDriver;

/// Socket buffers asked for (the kernel may give less): a burst of
/// datagrams from many peers must not overflow them.
const SOCKET_BUFFER: usize = 4 << 20;

fn config(kcp: &KcpOptions, conn: &ConnOptions) -> Config {
    Config {
        kcp: kcp.clone(),
        silence: conn.silence_limit(),
        close_flush: conn.close_flush_timeout,
    }
}

/// A non-blocking UDP socket bound to `addr`.
pub(crate) fn udp_socket(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// A running kcp server: the loops, and the counters of their endpoints.
pub(crate) struct KcpServer {
    inner: EvServer,
    counters: Vec<Arc<Counters>>,
}

impl Running for KcpServer {
    fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr()
    }
    fn io_stats(&self) -> crate::IoStats {
        let mut stats = self.inner.io_stats();
        for counters in &self.counters {
            stats.kcp.add(&counters.snapshot());
        }
        stats
    }
    fn stop(&self, drain: Duration) {
        self.inner.stop(drain)
    }
    fn is_own_thread(&self) -> bool {
        self.inner.is_own_thread()
    }
}

/// Binds the UDP port of `addr` on every reactor and serves.
pub(crate) fn serve(
    addr: SocketAddr,
    opts: &KcpOptions,
    conn: ConnOptions,
    attach: Attach,
) -> io::Result<KcpServer> {
    let n = opts.loop_count();
    let loops = Loops::start(n, &EvloopOptions::default(), "walle-kcp")?;
    let first = udp_socket(addr, n > 1)?;
    let local = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..n {
        sockets.push(udp_socket(local, true)?);
    }
    let conn = Arc::new(conn);
    let mut counters = Vec::with_capacity(n);
    for (socket, handle) in sockets.into_iter().zip(loops.handles()) {
        let count = Arc::new(Counters::default());
        counters.push(count.clone());
        let (config, attach, conn) = (config(opts, &conn), attach.clone(), conn.clone());
        handle.send(Cmd::Add(Box::new(move |cx: &mut Ctx<'_>| {
            let ep = KcpEndpoint::new(config, Role::Server, count, cx.now);
            let socket = UdpSocket::from_std(socket);
            let driver = KcpDriver::start(cx, socket, None, ep, attach, conn)?;
            Some(Box::new(driver) as Box<dyn Driver>)
        })));
    }
    Ok(KcpServer {
        inner: EvServer::new(local, loops, None),
        counters,
    })
}

/// Hands a client's UDP socket, connected to `peer`, to the client
/// reactor, which dials session `conv` on it: the hello goes out at once,
/// and the process is attached when the server answers.
pub(crate) fn adopt(
    socket: std::net::UdpSocket,
    peer: SocketAddr,
    conv: u32,
    opts: &KcpOptions,
    attach: Attach,
    conn: Arc<ConnOptions>,
) {
    let config = config(opts, &conn);
    let spread = opts.loop_count();
    super::next_client_loop(spread).send(Cmd::Add(Box::new(move |cx: &mut Ctx<'_>| {
        let counters = Arc::new(Counters::default());
        let ep = KcpEndpoint::new(config, Role::Client, counters, cx.now);
        let socket = UdpSocket::from_std(socket);
        let mut driver = KcpDriver::start(cx, socket, Some(peer), ep, attach, conn)?;
        driver.dial(cx, peer, conv);
        Some(Box::new(driver) as Box<dyn Driver>)
    })));
}
