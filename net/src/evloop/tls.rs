//! TLS on the event loop: rustls's connection state machine driven by the
//! reactor, as a [`Stream`] over the mio socket. Reads feed the socket's
//! bytes to rustls and hand out its plaintext; writes hand frames to
//! rustls and write its records; what rustls must send on its own (the
//! handshake's messages, alerts) goes out when the connection flushes.

use std::io::{self, IoSlice, Read, Write};

use mio::event::Source;
use mio::{Interest, Registry, Token};
use rustls::Connection;

use super::stream::Stream;

/// A TLS session over the byte stream `S`.
pub(crate) struct TlsStream<S> {
    io: S,
    tls: Box<Connection>,
    /// The handshake ended in the last read: what the connection queued
    /// meanwhile (rustls held it back) must be flushed now.
    opened: bool,
}

impl<S: Read + Write> TlsStream<S> {
    pub(crate) fn new(io: S, tls: impl Into<Connection>) -> Self {
        TlsStream {
            io,
            tls: Box::new(tls.into()),
            opened: false,
        }
    }

    /// Writes rustls's records; `Ok(true)` when none is left,
    /// `Ok(false)` when the socket takes no more now.
    fn write_records(&mut self) -> io::Result<bool> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.io) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n), // 0: the peer's close_notify
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            match self.tls.read_tls(&mut self.io) {
                Ok(0) => return Ok(0),
                Ok(_) => {
                    let was_handshaking = self.tls.is_handshaking();
                    if let Err(e) = self.tls.process_new_packets() {
                        // Tell the peer with an alert, if the socket takes it.
                        let _ = self.write_records();
                        return Err(crate::tls::error(e));
                    }
                    self.opened |= was_handshaking && !self.tls.is_handshaking();
                    // Answer what the input asked for at once; what the
                    // socket does not take waits for the connection's flush.
                    self.write_records()?;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // Records already made go first; while the socket holds them
        // back, no more plaintext is taken.
        if !self.write_records()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let n = self.tls.writer().write_vectored(bufs)?;
        if n == 0 && total > 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.write_records()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.write_records()? {
            true => Ok(()),
            false => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<S: Source> Source for TlsStream<S> {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.io.register(registry, token, interests)
    }
    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.io.reregister(registry, token, interests)
    }
    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.io.deregister(registry)
    }
}

impl<S: Source + Read + Write + Send + 'static> Stream for TlsStream<S> {
    fn short_read_drains(&self) -> bool {
        false
    }
    fn wants_write(&self) -> bool {
        self.opened || self.tls.wants_write()
    }
    fn flush_own(&mut self) -> io::Result<bool> {
        self.opened = false;
        self.write_records()
    }
    fn close_notify(&mut self) {
        self.tls.send_close_notify();
        let _ = self.write_records();
    }
}
