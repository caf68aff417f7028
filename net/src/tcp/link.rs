//! What the tasks of a tokio connection need of its byte stream, and the
//! TCP stream that gives it: the reader's `read_some`, the writer's
//! non-blocking vectored writes and readiness, a shutdown. Another byte
//! stream (kcp) is another implementation of [`Link`]; a message link
//! (ws) would add its frame mode and a send of one message, for the
//! writer to use `Outbound::write_messages`.

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, IoSlice, Read};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::Registry;
use super::conn;
use crate::conn::Attach;
use crate::options::ConnOptions;

/// The byte stream under a tokio connection, shared by its reader and
/// writer tasks.
pub(crate) trait Link: Send + Sync + 'static {
    /// Waits for input and appends what arrived to `buf`; `Ok(0)` at the
    /// end of the stream. Cancel safe: dropping the future loses nothing.
    fn read_some(&self, buf: &mut BytesMut) -> impl Future<Output = io::Result<usize>> + Send;
    /// Writes what the link takes now, without waiting (`WouldBlock` when
    /// it takes nothing).
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Waits until the link may take more.
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Ends both directions at once; the link stays open until dropped.
    fn shutdown(&self);
}

/// Starts a TCP connection's tasks on the current runtime.
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
    conn::start(stream, peer, attach, opts, registry);
}

/// Bytes asked for per read; a read that returns fewer drained the socket.
const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    /// The buffer reads land in before their bytes join a connection's
    /// read buffer (as in the event loop), so that buffer grows only by
    /// what arrived.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

impl Link for TcpStream {
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
}
