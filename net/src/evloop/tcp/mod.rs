//! TCP over the loops: a connection is a [`StreamConn`] over a mio
//! `TcpStream`; a server either binds one SO_REUSEPORT listener per loop,
//! each a driver accepting into its own loop, or runs one acceptor thread
//! (`acceptor`) spreading connections over the loops; a client connection
//! is adopted by the client loop.

mod acceptor;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use mio::Interest;
use mio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};
use walle_process::CloseReason;

use super::driver::{Ctx, Driver, Op, Ready, Start, TimerKind, Turn};
use super::stream::StreamConn;
use super::tls::TlsStream;
use super::{Cmd, EvServer, Loops};
use crate::conn::Attach;
use crate::options::{ConnOptions, EvloopOptions};
use crate::socket::tcp_listener;
use rustls::Connection;

/// Binds `addr` and starts the reactors and the acceptor (or, with
/// `reuse_port`, one listener per reactor).
pub(crate) fn serve(
    addr: SocketAddr,
    opts: &EvloopOptions,
    conn: ConnOptions,
    attach: Attach,
) -> io::Result<EvServer> {
    let tls = match &opts.tls {
        Some(tls) => Tls::Server(crate::tls::server_config(tls)?),
        None => Tls::Plain,
    };
    let loops = Loops::start(opts.loop_count(), opts, "walle-evloop")?;
    let conn = Arc::new(conn);
    if opts.reuse_port {
        let first = bind(addr, true)?;
        let local = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..loops.handles().len() {
            listeners.push(bind(local, true)?);
        }
        for (l, handle) in listeners.into_iter().zip(loops.handles()) {
            handle.send(Cmd::Add(listener(
                l,
                attach.clone(),
                conn.clone(),
                tls.clone(),
            )));
        }
        return Ok(EvServer::new(local, loops, None));
    }
    let acceptor = acceptor::Acceptor::start(
        addr,
        opts.balance,
        loops.handles().to_vec(),
        attach,
        conn,
        tls,
    )?;
    Ok(EvServer::new(
        acceptor.local_addr(),
        loops,
        Some(Box::new(acceptor)),
    ))
}

/// Hands a client connection the caller dialled (non-blocking) to a
/// client reactor, one of the first `spread` in turn.
pub(crate) fn adopt(
    stream: std::net::TcpStream,
    peer: SocketAddr,
    attach: Attach,
    conn: Arc<ConnOptions>,
    spread: usize,
    tls: &Tls,
) {
    let stream = TcpStream::from_std(stream);
    let start = connection(stream, peer, attach, conn, tls);
    super::next_client_loop(spread).send(Cmd::Add(start));
}

/// Whether a connection speaks TLS, and as which side.
#[derive(Clone)]
pub(crate) enum Tls {
    Plain,
    Server(Arc<rustls::ServerConfig>),
    Client(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    ),
}

/// A non-blocking mio listener (see [`tcp_listener`]).
fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    tcp_listener(addr, reuse_port).map(TcpListener::from_std)
}

/// A connected socket, started as a connection of the loop it is sent to.
pub(crate) fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    attach: Attach,
    opts: Arc<ConnOptions>,
    tls: &Tls,
) -> Start {
    let tls = tls.clone();
    Box::new(move |cx: &mut Ctx<'_>| {
        if opts.nodelay {
            let _ = stream.set_nodelay(true);
        }
        let session = match tls {
            Tls::Plain => return StreamConn::start(cx, stream, peer, &attach, opts),
            Tls::Server(config) => rustls::ServerConnection::new(config).map(Connection::from),
            Tls::Client(config, name) => {
                rustls::ClientConnection::new(config, name).map(Connection::from)
            }
        };
        match session {
            Ok(session) => {
                StreamConn::start(cx, TlsStream::new(stream, session), peer, &attach, opts)
            }
            Err(e) => {
                warn!(%peer, error = %e, "tls: cannot start a session; connection closed");
                None
            }
        }
    })
}

/// A listener accepting into the loop it is sent to.
fn listener(listener: TcpListener, attach: Attach, opts: Arc<ConnOptions>, tls: Tls) -> Start {
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
            tls,
        }))
    })
}

struct Listener {
    listener: TcpListener,
    attach: Attach,
    opts: Arc<ConnOptions>,
    tls: Tls,
}

impl Driver for Listener {
    fn ready(&mut self, cx: &mut Ctx<'_>, _ready: Ready) -> Turn {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    let (attach, opts) = (self.attach.clone(), self.opts.clone());
                    cx.add(connection(stream, peer, attach, opts, &self.tls));
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
