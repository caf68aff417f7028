//! TLS on the tokio backend: rustls's connection state machine between
//! the connection's tasks and its TCP stream. The reader feeds what the
//! socket gives to rustls and takes the plaintext; the writer hands frames
//! to rustls and writes the records it makes. Both share the one state
//! under a lock (as they share the socket), so a handshake message, an
//! alert or a key update goes out in order whichever task produced it.
//!
//! rustls is driven directly, not through tokio-rustls: a connection's
//! reader and writer work on one link by reference, which a `TlsStream`
//! split into halves would not give.

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};
use tokio::io::Interest;
use tokio::net::TcpStream;
use walle_packet::{FrameMode, Framing};
use walle_process::CloseReason;

use super::Registry;
use super::conn;
use super::link::{Link, SCRATCH, StreamInbox};
use crate::conn::{Attach, Handler};
use crate::options::ConnOptions;
use crate::outbound::Outbound;

/// A TLS connection over a TCP stream.
pub(crate) struct TlsLink {
    tcp: TcpStream,
    tls: Mutex<Connection>,
    /// Told when the reader has fed rustls: a writer waiting for the
    /// handshake to end (rustls takes no more plaintext until then) looks
    /// again.
    progress: tokio::sync::Notify,
}

/// The TCP stream as an `io::Write` that never waits.
struct Socket<'a>(&'a TcpStream);

impl Write for Socket<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// rustls's plaintext side as an `io::Write` that refuses (would block)
/// when its buffer is full.
struct Plain<'a>(&'a mut Connection);

impl Write for Plain<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.writer().write(buf)? {
            0 if !buf.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        match self.0.writer().write_vectored(bufs)? {
            0 if total > 0 => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TlsLink {
    fn new(tcp: TcpStream, tls: Connection) -> Self {
        TlsLink {
            tcp,
            tls: Mutex::new(tls),
            progress: tokio::sync::Notify::new(),
        }
    }

    fn tls(&self) -> MutexGuard<'_, Connection> {
        self.tls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the records rustls holds, without waiting. `Ok(true)` when
    /// none is left.
    fn write_records(tls: &mut Connection, tcp: &TcpStream) -> io::Result<bool> {
        while tls.wants_write() {
            match tls.write_tls(&mut Socket(tcp)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Feeds `input` to rustls and appends the plaintext it yields to
    /// `buf`; `Ok(false)` once the peer has closed the TLS session.
    fn take_in(
        tls: &mut Connection,
        mut input: &[u8],
        buf: &mut bytes::BytesMut,
    ) -> io::Result<bool> {
        let mut open = true;
        loop {
            if !input.is_empty() {
                tls.read_tls(&mut input)?;
            }
            let state = tls.process_new_packets().map_err(crate::tls::error)?;
            let mut plain = state.plaintext_bytes_to_read();
            while plain > 0 {
                let at = buf.len();
                buf.resize(at + plain, 0);
                let n = tls.reader().read(&mut buf[at..])?;
                buf.truncate(at + n);
                plain -= n.min(plain);
                if n == 0 {
                    break;
                }
            }
            if state.peer_has_closed() {
                open = false;
            }
            if input.is_empty() {
                return Ok(open);
            }
        }
    }
}

impl Link for TlsLink {
    type Inbox = StreamInbox;

    fn inbox(&self, framing: Framing) -> StreamInbox {
        StreamInbox {
            buf: bytes::BytesMut::new(),
            decoder: framing.decoder(),
        }
    }

    async fn read_some(&self, inbox: &mut StreamInbox) -> Result<(), CloseReason> {
        loop {
            self.tcp.readable().await.map_err(CloseReason::io)?;
            let before = inbox.buf.len();
            let attempt = self.tcp.try_io(Interest::READABLE, || {
                SCRATCH.with(|scratch| {
                    let mut scratch = scratch.borrow_mut();
                    let n = (&*socket2::SockRef::from(&self.tcp)).read(&mut scratch)?;
                    if n == 0 {
                        return Ok(None);
                    }
                    let mut tls = self.tls();
                    let open = Self::take_in(&mut tls, &scratch[..n], &mut inbox.buf)?;
                    // What the input asked for (the handshake's next
                    // flight, an alert, a key update) goes out as far as
                    // the socket takes it now; the rest is the writer's
                    // (the reader's batch end wakes it: `flushed` is false).
                    Self::write_records(&mut tls, &self.tcp)?;
                    Ok(Some(open))
                })
            });
            match attempt {
                Ok(None) => return Err(CloseReason::PeerClosed),
                Ok(Some(open)) => {
                    self.progress.notify_waiters();
                    if !open && inbox.buf.len() == before {
                        return Err(CloseReason::PeerClosed);
                    }
                    // Input arrived, plaintext or not (a handshake
                    // message): the reader's turn ends, and with it its
                    // batch, which writes what rustls now holds.
                    return Ok(());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    // A peer that speaks no TLS (plain text), a bad
                    // certificate, a broken record: told with an alert
                    // when rustls has one, then closed.
                    let _ = Self::write_records(&mut self.tls(), &self.tcp);
                    return Err(CloseReason::io(e));
                }
            }
        }
    }

    fn deliver(&self, inbox: &mut StreamInbox, handler: &dyn Handler) -> Result<(), CloseReason> {
        inbox.deliver(handler)
    }

    fn mode(&self) -> FrameMode {
        FrameMode::Stream
    }

    fn write_out(&self, out: &mut Outbound) -> io::Result<bool> {
        let mut tls = self.tls();
        loop {
            // Frames into rustls as far as its buffer takes them, then its
            // records onto the socket as far as it takes them.
            let queued = out.queued();
            let all_in = out.write_to(&mut Plain(&mut tls))?;
            if !Self::write_records(&mut tls, &self.tcp)? {
                return Ok(false);
            }
            if all_in {
                return Ok(true);
            }
            if out.queued() == queued {
                // rustls takes no plaintext (its buffer before the
                // handshake ends is full) and has nothing to send: the
                // writer waits for the reader (`writable`).
                return Ok(false);
            }
        }
    }

    /// The socket's room, or, while the handshake holds back plaintext and
    /// rustls has nothing to send, the reader's next input.
    async fn writable(&self) -> io::Result<()> {
        loop {
            let progress = self.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            {
                let tls = self.tls();
                if tls.wants_write() || !tls.is_handshaking() {
                    break;
                }
            }
            progress.await;
        }
        self.tcp.writable().await
    }

    fn flushed(&self) -> bool {
        !self.tls().wants_write()
    }

    fn shutdown(&self) {
        {
            let mut tls = self.tls();
            tls.send_close_notify();
            let _ = Self::write_records(&mut tls, &self.tcp);
        }
        let _ = socket2::SockRef::from(&self.tcp).shutdown(std::net::Shutdown::Both);
    }
}

/// Starts an accepted TLS connection's tasks on the current runtime.
pub(super) fn start_server(
    stream: TcpStream,
    config: &Arc<ServerConfig>,
    peer: SocketAddr,
    attach: &Attach,
    opts: Arc<ConnOptions>,
    registry: Option<Arc<Registry>>,
) {
    if opts.nodelay {
        let _ = stream.set_nodelay(true);
    }
    match ServerConnection::new(config.clone()) {
        Ok(tls) => conn::start(
            TlsLink::new(stream, tls.into()),
            peer,
            attach,
            opts,
            registry,
        ),
        Err(e) => {
            tracing::warn!(%peer, error = %e, "tls: cannot start a session; connection closed")
        }
    }
}

/// Starts a dialled TLS connection's tasks on the current runtime.
pub(crate) fn adopt_client(
    stream: TcpStream,
    config: &Arc<ClientConfig>,
    name: ServerName<'static>,
    peer: SocketAddr,
    attach: &Attach,
    opts: Arc<ConnOptions>,
) -> io::Result<()> {
    if opts.nodelay {
        let _ = stream.set_nodelay(true);
    }
    let tls = ClientConnection::new(config.clone(), name).map_err(crate::tls::error)?;
    conn::start(TlsLink::new(stream, tls.into()), peer, attach, opts, None);
    Ok(())
}
