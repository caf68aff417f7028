//! An in-memory transport: two processes wired back to back, for tests,
//! examples and benchmarks that need no socket.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use bytes::BytesMut;
use walle_packet::{FrameDecoder, PacketError, Protocol};

use crate::error::Error;
use crate::process::Process;
use crate::transport::Transport;

/// The sending half of an in-memory link: a bounded outbound buffer.
#[derive(Debug)]
pub struct MemTransport {
    out: Mutex<Vec<u8>>,
    limit: usize,
    closed: AtomicBool,
}

impl MemTransport {
    /// A transport whose outbound buffer holds at most `limit` bytes
    /// before sends fail with `Overloaded`.
    pub fn new(limit: usize) -> Self {
        MemTransport {
            out: Mutex::new(Vec::new()),
            limit,
            closed: AtomicBool::new(false),
        }
    }

    /// True after close.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Relaxed)
    }

    /// Bytes waiting to be pumped.
    pub fn queued(&self) -> usize {
        self.out.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Transport for MemTransport {
    fn send(
        &self,
        write: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), PacketError>,
    ) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::SessionClosed);
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if out.len() >= self.limit {
            return Err(Error::Overloaded("outbound buffer full"));
        }
        Ok(write(&mut out)?)
    }

    fn close(&self) {
        self.closed.store(true, Relaxed);
    }
}

/// The receiving half: moves bytes out of a [`MemTransport`] and feeds
/// the frames to a process, as a socket reader would.
#[derive(Debug)]
pub struct MemPipe {
    inbound: BytesMut,
    decoder: FrameDecoder,
    swap: Vec<u8>,
}

impl MemPipe {
    /// A pipe cutting frames with `protocol`'s framing.
    pub fn new(protocol: &Protocol) -> Self {
        MemPipe {
            inbound: BytesMut::new(),
            decoder: protocol.decoder(),
            swap: Vec::new(),
        }
    }

    /// Delivers what `from` has queued to `to`; returns the frames delivered.
    /// A decode error is returned as it would close a connection.
    pub fn pump<C: Clone + Send + Sync + 'static>(
        &mut self,
        from: &MemTransport,
        to: &Process<C>,
    ) -> Result<usize, Error> {
        {
            let mut out = from.out.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::swap(&mut *out, &mut self.swap);
        }
        self.inbound.extend_from_slice(&self.swap);
        self.swap.clear();
        let mut frames = 0;
        while let Some(body) = self.decoder.decode(&mut self.inbound)? {
            to.handle_frame(body)?;
            frames += 1;
        }
        Ok(frames)
    }
}
