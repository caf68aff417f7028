//! The WebSocket backend, on the tokio backend's connection tasks. A
//! server accepts TCP on a runtime of its own (`tcp::serve_with`),
//! upgrades each connection on its upgrade path with tokio-tungstenite's
//! handshake (`handshake`), then runs it as a [`WsLink`](link::WsLink):
//! RFC 6455 frames read and written on the socket's byte stream (`frame`),
//! through the same reader and writer tasks, queue, timers and close order
//! as a TCP connection. A client dials TCP, upgrades, and hands the link
//! to the client's runtime the same way.
//!
//! On the wire, one binary message carries one frame body without its
//! length prefix (due's WebSocket layout), whatever the format; the close
//! codes are listed in `close`.

mod close;
mod frame;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod handshake;
mod link;
#[cfg(test)]
mod tests;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::net::TcpStream;
use tracing::{Instrument, debug, debug_span};

use crate::conn::Attach;
use crate::endpoint::{Endpoint, Scheme};
use crate::options::{ConnOptions, WsOptions};
use crate::tcp::{self, Start, TcpServer};

use link::{Role, WsLink};

/// Binds `addr` and serves WebSocket connections on `opts.path`, for a
/// protocol whose frames are at most `max_frame` bytes.
pub(crate) fn serve(
    addr: SocketAddr,
    opts: &WsOptions,
    max_frame: usize,
    conn: ConnOptions,
    attach: Attach,
) -> io::Result<TcpServer> {
    let opts = Arc::new(opts.clone());
    let workers = opts.workers;
    let max_message = opts.message_limit(max_frame);
    let start: Start = Box::new(move |stream, peer, attach, conn, registry| {
        if conn.nodelay {
            let _ = stream.set_nodelay(true);
        }
        let (opts, attach, registry) = (opts.clone(), attach.clone(), registry.clone());
        let upgrade = async move {
            let accepted = tokio::time::timeout(
                opts.handshake_timeout,
                handshake::accept(stream, opts.clone()),
            )
            .await;
            let stream = match accepted {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return debug!(%error, "upgrade refused"),
                Err(_) => return debug!(after = ?opts.handshake_timeout, "upgrade timed out"),
            };
            let link = WsLink::new(
                stream,
                Role::Server,
                max_message,
                opts.close_timeout,
                BytesMut::new(),
            );
            // Registers only while the server accepts; a stop that began
            // during the upgrade drops it.
            let started = registry.while_accepting(|| {
                tcp::start(link, peer, &attach, conn, Some(registry.clone()));
            });
            if started.is_none() {
                debug!("upgraded as the server stopped: dropped");
            }
        };
        tokio::spawn(upgrade.instrument(debug_span!("ws", %peer)));
    });
    tcp::serve_with(addr, workers, "walle-ws", conn, attach, start)
}

/// A client's connection after its upgrade, for the client's driver to
/// adopt: the socket and what was read past the server's answer.
pub(crate) struct Upgraded {
    stream: TcpStream,
    first: BytesMut,
    max_message: usize,
}

/// Dials `endpoint` and upgrades (on its path if it is a `ws://` one, on
/// the options' path if it is a plain address), for a client whose frames
/// are at most `max_frame` bytes.
pub(crate) async fn dial(
    endpoint: &Endpoint,
    opts: &WsOptions,
    max_frame: usize,
) -> io::Result<(Upgraded, SocketAddr)> {
    let stream = match endpoint.socket_addr() {
        Some(addr) => TcpStream::connect(addr).await?,
        None => TcpStream::connect((endpoint.host(), endpoint.port())).await?,
    };
    let peer = stream.peer_addr()?;
    let _ = stream.set_nodelay(true);
    let path = match endpoint.scheme() {
        Scheme::Ws => endpoint.path().unwrap_or("/"),
        _ => &opts.path, // a plain address: the backend's path on it
    };
    let upgrade = handshake::connect(stream, endpoint.host(), endpoint.port(), path, opts);
    let (stream, first) = tokio::time::timeout(opts.handshake_timeout, upgrade)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "WebSocket upgrade timed out"))??;
    let max_message = opts.message_limit(max_frame);
    Ok((
        Upgraded {
            stream,
            first,
            max_message,
        },
        peer,
    ))
}

/// Starts the tasks of a client connection the caller dialled and
/// upgraded, on the current runtime (the client's), whose tasks then
/// serve it.
pub(crate) fn adopt(
    ws: Upgraded,
    peer: SocketAddr,
    attach: &Attach,
    conn: Arc<ConnOptions>,
    opts: &WsOptions,
) {
    let _ = ws.stream.set_nodelay(conn.nodelay);
    let link = WsLink::new(
        ws.stream,
        Role::Client,
        ws.max_message,
        opts.close_timeout,
        ws.first,
    );
    tcp::start(link, peer, attach, conn, None);
}
