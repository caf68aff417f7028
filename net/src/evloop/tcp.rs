//! The TCP drivers: a connection is a [`StreamConn`] over a mio
//! `TcpStream`; a listener (SO_REUSEPORT mode: one per loop) accepts into
//! its own loop.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use mio::Interest;
use mio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};
use walle_process::CloseReason;

use super::driver::{Ctx, Driver, Op, Ready, Start, TimerKind, Turn};
use super::stream::StreamConn;
use crate::conn::Attach;
use crate::options::ConnOptions;

/// A non-blocking listener with SO_REUSEADDR (and SO_REUSEPORT when asked).
pub(crate) fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// A connected socket, started as a connection of the loop it is sent to.
pub(crate) fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    attach: Attach,
    opts: Arc<ConnOptions>,
) -> Start {
    Box::new(move |cx: &mut Ctx<'_>| {
        if opts.nodelay {
            let _ = stream.set_nodelay(true);
        }
        StreamConn::start(cx, stream, peer, &attach, opts)
    })
}

/// A listener accepting into the loop it is sent to.
pub(crate) fn listener(listener: TcpListener, attach: Attach, opts: Arc<ConnOptions>) -> Start {
    Box::new(move |cx: &mut Ctx<'_>| {
        let mut listener = listener;
        if let Err(e) = cx
            .registry
            .register(&mut listener, cx.token(), Interest::READABLE)
        {
            warn!(error = %e, "cannot listen on the reactor");
            return None;
        }
        Some(Box::new(Listener {
            listener,
            attach,
            opts,
        }))
    })
}

struct Listener {
    listener: TcpListener,
    attach: Attach,
    opts: Arc<ConnOptions>,
}

impl Driver for Listener {
    fn ready(&mut self, cx: &mut Ctx<'_>, _ready: Ready) -> Turn {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    let (attach, opts) = (self.attach.clone(), self.opts.clone());
                    cx.add(connection(stream, peer, attach, opts));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!(error = %e, "accept failed");
                    return Ok(());
                }
            }
        }
    }

    fn timer(&mut self, _cx: &mut Ctx<'_>, _kind: TimerKind, _sub: u64) -> Turn {
        Ok(())
    }

    fn command(&mut self, _cx: &mut Ctx<'_>, _op: Op, _sub: u64) -> Turn {
        Ok(())
    }

    /// A stopping loop accepts no more.
    fn stop(&mut self, _cx: &mut Ctx<'_>) -> Turn {
        Err(CloseReason::Stopped)
    }

    fn closed(mut self: Box<Self>, cx: &mut Ctx<'_>, _reason: CloseReason) {
        let _ = cx.registry.deregister(&mut self.listener);
    }
}
