//! What the tasks of a tokio connection need of its link, and the TCP
//! stream that gives it. A link is either a byte stream ([`ByteStream`]:
//! TCP here, a Unix socket in the tests), whose frames the reader cuts
//! with the framing's decoder and the writer writes with vectored writes,
//! or a message link (WebSocket, in `ws`) that implements [`Link`] itself:
//! its own inbox of whole messages, its frame mode, its writes of one
//! message at a time (`Outbound::write_messages`), its heartbeat and its
//! close handshake.

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;

use bytes::BytesMut;
use tokio::io::Interest;
use tokio::net::TcpStream;
use walle_packet::{FrameDecoder, FrameMode, Framing};
use walle_process::CloseReason;

use super::Registry;
use super::conn;
use crate::conn::{Attach, Handler, deliver};
use crate::options::ConnOptions;
use crate::outbound::Outbound;

/// The link under a tokio connection, shared by its reader and writer
/// tasks.
pub(crate) trait Link: Send + Sync + 'static {
    /// What the reader keeps between reads: input not yet handed on.
    type Inbox: Send;
    /// An empty inbox for frames of `framing`.
    fn inbox(&self, framing: Framing) -> Self::Inbox;
    /// Waits for input and adds it to `inbox`; `Err` when the link ended
    /// (the peer's end, a socket error, input the link refuses), with why.
    /// Cancel safe: dropping the future loses nothing.
    fn read_some(
        &self,
        inbox: &mut Self::Inbox,
    ) -> impl Future<Output = Result<(), CloseReason>> + Send;
    /// Hands every complete frame body in `inbox` to `handler`; an error
    /// closes the connection.
    fn deliver(&self, inbox: &mut Self::Inbox, handler: &dyn Handler) -> Result<(), CloseReason>;
    /// How frames are delimited on this link.
    fn mode(&self) -> FrameMode;
    /// Writes what the link takes of `out` now, without waiting.
    /// `Ok(true)` when nothing is left to write (in `out` or the link's
    /// own buffer).
    fn write_out(&self, out: &mut Outbound) -> io::Result<bool>;
    /// Waits until the link may take more (a message link: until its own
    /// buffer is written out).
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// False while the link holds bytes of its own to write (a pong, a
    /// ping), which the writer then writes.
    fn flushed(&self) -> bool {
        true
    }
    /// A heartbeat tick: a link with a heartbeat of its own (a WebSocket
    /// ping) sends it. `Ok(false)` when some of it waits for the writer.
    fn beat(&self) -> io::Result<bool> {
        Ok(true)
    }
    /// After the writer is done, before the link is shut: a link's close
    /// handshake for a connection ending for `why` (a WebSocket close
    /// frame, then the peer's, bounded in time).
    fn close(&self, why: &CloseReason) -> impl Future<Output = ()> + Send {
        let _ = why;
        async {}
    }
    /// Ends both directions at once; the link stays open until dropped.
    fn shutdown(&self);
}

/// A byte stream under a tokio connection: frames behind their length
/// prefix, cut out by the framing's decoder.
pub(crate) trait ByteStream: Send + Sync + 'static {
    /// Waits for input and appends what arrived to `buf`; `Ok(0)` at the
    /// end of the stream. Cancel safe: dropping the future loses nothing.
    fn read_some(&self, buf: &mut BytesMut) -> impl Future<Output = io::Result<usize>> + Send;
    /// Writes what the stream takes now, without waiting (`WouldBlock`
    /// when it takes nothing).
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Waits until the stream may take more.
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Ends both directions at once; the stream stays open until dropped.
    fn shutdown(&self);
    /// Ends the writes only (the peer reads the end of the stream).
    fn shutdown_write(&self);
}

/// A stream's input: bytes read, and the decoder that cuts frames off
/// them.
pub(crate) struct StreamInbox {
    pub(super) buf: BytesMut,
    pub(super) decoder: FrameDecoder,
}

impl StreamInbox {
    /// Hands every complete frame to `handler`.
    pub(super) fn deliver(&mut self, handler: &dyn Handler) -> Result<(), CloseReason> {
        let handed = deliver(&mut self.decoder, &mut self.buf, handler);
        if self.buf.is_empty() && self.buf.capacity() > 64 * 1024 {
            self.buf = BytesMut::new(); // an idle connection keeps no large buffer
        }
        handed
    }
}

/// The stream as an `io::Write` that never waits.
struct Sink<'a, S>(&'a S);

impl<S: ByteStream> Write for Sink<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write_vectored(&[IoSlice::new(buf)])
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S: ByteStream> Link for S {
    type Inbox = StreamInbox;

    fn inbox(&self, framing: Framing) -> StreamInbox {
        StreamInbox {
            buf: BytesMut::new(),
            decoder: framing.decoder(),
        }
    }

    async fn read_some(&self, inbox: &mut StreamInbox) -> Result<(), CloseReason> {
        match ByteStream::read_some(self, &mut inbox.buf).await {
            Ok(0) => Err(CloseReason::PeerClosed),
            Ok(_) => Ok(()),
            Err(e) => Err(CloseReason::io(e)),
        }
    }

    fn deliver(&self, inbox: &mut StreamInbox, handler: &dyn Handler) -> Result<(), CloseReason> {
        inbox.deliver(handler)
    }

    fn mode(&self) -> FrameMode {
        FrameMode::Stream
    }

    fn write_out(&self, out: &mut Outbound) -> io::Result<bool> {
        out.write_to(&mut Sink(self))
    }

    async fn writable(&self) -> io::Result<()> {
        ByteStream::writable(self).await
    }

    fn shutdown(&self) {
        ByteStream::shutdown(self)
    }
}

/// Starts a TCP connection's tasks on the current runtime; a client's
/// reads as [`ClientStream`] says.
pub(super) fn start_tcp(
    stream: TcpStream,
    peer: SocketAddr,
    attach: &Attach,
    opts: Arc<ConnOptions>,
    registry: Option<Arc<Registry>>,
) {
    if opts.nodelay {
        let _ = stream.set_nodelay(true);
    }
    match opts.client {
        false => conn::start(stream, peer, attach, opts, registry),
        true => conn::start(ClientStream(stream), peer, attach, opts, registry),
    }
}

/// A client's TCP stream: it reads as a server's does, but input that
/// finds it waiting is read one runtime turn later.
///
/// A client's callers send a burst of calls on a connection when one read
/// of their answers wakes them, and the server answers each read of its
/// own with one write. Should the answers to one burst come in two
/// segments, reading the first at once would wake only its callers, whose
/// calls would go out (and come back) as a segment of their own: the
/// split, once made, would stay for good, and cost both sides a read and
/// a write per part. A turn's wait lets the rest of the burst's answers
/// arrive (a read then takes them all), so bursts join up again.
/// Input that is already there when the read loop asks is read at once.
pub(super) struct ClientStream(TcpStream);

impl ByteStream for ClientStream {
    async fn read_some(&self, buf: &mut BytesMut) -> io::Result<usize> {
        let ready = std::future::poll_fn(|cx| Poll::Ready(self.0.poll_read_ready(cx).is_ready()));
        if !ready.await {
            self.0.readable().await?;
            tokio::task::yield_now().await;
        }
        ByteStream::read_some(&self.0, buf).await
    }

    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    async fn writable(&self) -> io::Result<()> {
        self.0.writable().await
    }

    fn shutdown(&self) {
        ByteStream::shutdown(&self.0)
    }

    fn shutdown_write(&self) {
        ByteStream::shutdown_write(&self.0)
    }
}

/// Bytes asked for per read; a read that returns fewer drained the socket.
pub(super) const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    /// The buffer reads land in before their bytes join a connection's
    /// read buffer (as in the event loop), so that buffer grows only by
    /// what arrived.
    pub(super) static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

impl ByteStream for TcpStream {
    /// A short read drained the socket, so its readiness is cleared then
    /// and there instead of by one more read that would only say
    /// WouldBlock (tokio keeps any readiness that arrived in between).
    /// Data is read only inside the non-blocking attempt: dropping the
    /// future loses nothing. Readiness checks spend none of tokio's
    /// cooperative budget; the read loop spends it.
    async fn read_some(&self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            self.readable().await?;
            let mut got = None;
            let attempt = self.try_io(Interest::READABLE, || {
                SCRATCH.with(|scratch| {
                    let mut scratch = scratch.borrow_mut();
                    let n = (&*socket2::SockRef::from(self)).read(&mut scratch)?;
                    buf.extend_from_slice(&scratch[..n]);
                    got = Some(n);
                    match n {
                        0 => Ok(0),
                        n if n < scratch.len() => Err(io::ErrorKind::WouldBlock.into()),
                        n => Ok(n),
                    }
                })
            });
            match (got, attempt) {
                (Some(n), _) | (None, Ok(n)) => return Ok(n),
                (None, Err(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                (None, Err(e)) => return Err(e),
            }
        }
    }

    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        TcpStream::try_write_vectored(self, bufs)
    }

    async fn writable(&self) -> io::Result<()> {
        TcpStream::writable(self).await
    }

    fn shutdown(&self) {
        let _ = socket2::SockRef::from(self).shutdown(std::net::Shutdown::Both);
    }

    fn shutdown_write(&self) {
        let _ = socket2::SockRef::from(self).shutdown(std::net::Shutdown::Write);
    }
}
