//! What a WebSocket link needs of the socket under it, beyond tokio's
//! async reads and writes: a raw read for the lingering close, and a
//! shutdown. TCP here; a Unix socket in the tests.

use std::io;
use std::net::Shutdown;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite};

/// The socket under a WebSocket.
pub(crate) trait WsSocket: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static {
    /// Ready to read (or at its end).
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Reads what is there without waiting.
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Shuts one direction or both; the socket stays open until dropped.
    fn shutdown(&self, how: Shutdown);
}

impl WsSocket for tokio::net::TcpStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::net::TcpStream::poll_read_ready(self, cx)
    }
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        tokio::net::TcpStream::try_read(self, buf)
    }
    fn shutdown(&self, how: Shutdown) {
        let _ = socket2::SockRef::from(self).shutdown(how);
    }
}

#[cfg(test)]
impl WsSocket for tokio::net::UnixStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::net::UnixStream::poll_read_ready(self, cx)
    }
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        tokio::net::UnixStream::try_read(self, buf)
    }
    fn shutdown(&self, how: Shutdown) {
        let _ = socket2::SockRef::from(self).shutdown(how);
    }
}
