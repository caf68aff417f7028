//! The driver of a stream connection (TCP, or any non-blocking byte
//! stream mio polls): reads into the loop's scratch buffer and keeps a
//! buffer of its own only while a frame is partial, hands whole frames to
//! its process, writes its queue with vectored writes, and keeps the
//! silence, heartbeat, call and close-flush timers.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::BytesMut;
use mio::Interest;
use tracing::{debug, warn};
use walle_packet::{FrameDecoder, FrameMode};
use walle_process::{CloseReason, Transport};

use super::driver::{Ctx, Driver, MAX_READS, Op, Ready, TimerKind, Turn};
use super::transport::ConnShared;
use crate::conn::{Attach, Handler, deliver, end};
use crate::options::{ConnOptions, later};

/// A byte stream a stream connection can drive: non-blocking, polled by
/// mio, `Ok(0)` from a read at its end.
pub(crate) trait Stream: mio::event::Source + Read + Write + Send + 'static {
    /// True when a read shorter than asked means the socket is drained
    /// (a plain socket); false when it may hold more (TLS hands out one
    /// record's plaintext at a time).
    fn short_read_drains(&self) -> bool {
        true
    }
    /// True while the stream holds bytes of its own to write (TLS: a
    /// handshake message, an alert).
    fn wants_write(&self) -> bool {
        false
    }
    /// Writes those bytes, without waiting; `Ok(true)` when none is left.
    fn flush_own(&mut self) -> io::Result<bool> {
        Ok(true)
    }
    /// Tells the peer the stream ends in order (TLS: close_notify), as far
    /// as the socket takes it now.
    fn close_notify(&mut self) {}
}

impl Stream for mio::net::TcpStream {}
impl Stream for mio::net::UnixStream {}

/// Nothing came from the peer for too long (or check again later).
const SILENCE: TimerKind = TimerKind(0);
/// Time for a heartbeat.
const BEAT: TimerKind = TimerKind(1);
/// A call deadline.
const CALLS: TimerKind = TimerKind(2);
/// The close flush deadline of a connection asked to close.
const CLOSE: TimerKind = TimerKind(3);

/// One connection over a stream `S`.
pub(crate) struct StreamConn<S> {
    stream: S,
    peer: SocketAddr,
    shared: Arc<ConnShared>,
    handler: Arc<dyn Handler>,
    inbound: Option<BytesMut>,
    decoder: FrameDecoder,
    last_read: Instant,
    opts: Arc<ConnOptions>,
    /// WRITABLE interest is registered.
    writable: bool,
    /// Asked to close: flushing what is queued until the close flush
    /// deadline; what it reads is dropped.
    closing: bool,
}

impl<S: Stream> StreamConn<S> {
    /// Registers `stream` under the loop's new key and attaches its
    /// process; `None` when refused (dropping the stream closes it).
    pub(crate) fn start(
        cx: &mut Ctx<'_>,
        mut stream: S,
        peer: SocketAddr,
        attach: &Attach,
        opts: Arc<ConnOptions>,
    ) -> Option<Box<dyn Driver>> {
        // A TLS client starts with a message to send: writable at once.
        let writable = stream.wants_write();
        let interest = match writable {
            true => Interest::READABLE | Interest::WRITABLE,
            false => Interest::READABLE,
        };
        if let Err(e) = cx.registry.register(&mut stream, cx.token(), interest) {
            warn!(%peer, error = %e, "cannot register connection");
            return None;
        }
        let shared = Arc::new(ConnShared::new(
            cx.key,
            cx.handle.clone(),
            opts.send_queue_bytes,
            FrameMode::Stream,
        ));
        let transport: Arc<dyn Transport> = shared.clone();
        let Some(handler) = attach(transport, peer) else {
            shared.closed.store(true, Ordering::Release);
            let _ = cx.registry.deregister(&mut stream);
            return None;
        };
        let decoder = handler.framing().decoder();
        if let Some(limit) = opts.silence_limit() {
            cx.set_timer(later(cx.now, limit), SILENCE, 0);
        }
        if opts.ticks() {
            cx.set_timer(later(cx.now, opts.heartbeat), BEAT, 0);
        }
        cx.handle.0.conns.fetch_add(1, Ordering::Relaxed);
        Some(Box::new(StreamConn {
            stream,
            peer,
            shared,
            handler,
            inbound: None,
            decoder,
            last_read: cx.now,
            opts,
            writable,
            closing: false,
        }))
    }

    /// Reads what the stream has. `to_end`: read until it says WouldBlock
    /// or ends even after a short read.
    fn read(&mut self, cx: &mut Ctx<'_>, to_end: bool) -> Turn {
        let mut reads = 0;
        let end = loop {
            if reads == MAX_READS {
                cx.read_again();
                break Ok(());
            }
            match self.stream.read(cx.scratch) {
                Ok(0) => break Err(CloseReason::PeerClosed),
                Ok(_) if self.closing => reads += 1, // for a closed session
                Ok(n) => {
                    reads += 1;
                    self.last_read = cx.now;
                    let buf = self.inbound.get_or_insert_with(|| cx.hold_buffer());
                    buf.extend_from_slice(&cx.scratch[..n]);
                    if let Err(reason) = deliver(&mut self.decoder, buf, &*self.handler) {
                        break Err(reason);
                    }
                    if n < cx.scratch.len() && !to_end && self.stream.short_read_drains() {
                        // A short read drained the socket: data arriving
                        // later raises a new edge, so the read that would
                        // only say WouldBlock is skipped.
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(CloseReason::io(e)),
            }
        };
        // An idle connection holds no read buffer.
        if self.inbound.as_ref().is_some_and(BytesMut::is_empty) {
            if let Some(buf) = self.inbound.take() {
                cx.release_buffer(buf);
            }
        }
        end
    }

    /// Writes what is queued; WRITABLE interest while the stream takes no
    /// more. Ends the connection once all is written if it is closing or
    /// the loop is stopping.
    fn flush(&mut self, cx: &mut Ctx<'_>) -> Turn {
        let written = match self.shared.out().write_to(&mut self.stream) {
            Ok(true) => self.stream.flush_own(),
            other => other,
        };
        let interest = match written {
            Ok(true) if self.closing => {
                self.stream.close_notify();
                return Err(CloseReason::Local);
            }
            Ok(true) if cx.stopping => {
                self.stream.close_notify();
                return Err(CloseReason::Stopped);
            }
            Ok(true) if self.writable => Interest::READABLE,
            Ok(true) => return Ok(()),
            Ok(false) if self.writable => return Ok(()),
            Ok(false) => Interest::READABLE | Interest::WRITABLE,
            Err(e) => return Err(CloseReason::io(e)),
        };
        self.writable = !self.writable;
        let _ = cx
            .registry
            .reregister(&mut self.stream, cx.token(), interest);
        Ok(())
    }

    /// An asked close: what is queued is flushed until the close flush
    /// deadline, then the rest is dropped (and the connection closed).
    fn close_asked(&mut self, cx: &mut Ctx<'_>) -> Turn {
        if self.closing {
            return Ok(());
        }
        self.closing = true;
        self.flush(cx)?; // ends it at once when all is written
        let wait = self.opts.close_flush_timeout;
        if wait.is_zero() {
            return Err(CloseReason::Local);
        }
        cx.set_timer(later(cx.now, wait), CLOSE, 0);
        Ok(())
    }
}

impl<S: Stream> Driver for StreamConn<S> {
    fn ready(&mut self, cx: &mut Ctx<'_>, ready: Ready) -> Turn {
        let mut answered = false;
        if ready.readable || ready.drain {
            // The handler's answers to what this turn reads are written
            // once it is read, below: its sends need not queue a flush
            // command on the reactor's inbox (a lock, and a command turn).
            // A flush command already queued stays queued, and clears the
            // flag when it runs.
            let queued = self.shared.flush_queued.load(Ordering::Acquire);
            if !queued {
                self.shared.flush_queued.store(true, Ordering::Release);
            }
            let read = self.read(cx, ready.drain);
            if !queued {
                // Before the flush: a send that comes after it queues a
                // flush of its own.
                self.shared.flush_queued.store(false, Ordering::SeqCst);
            }
            read?;
            answered = true;
        }
        // What reading asked the stream to answer (a TLS handshake
        // message) and the socket did not take yet.
        if answered || ready.writable || self.stream.wants_write() {
            self.flush(cx)?;
        }
        Ok(())
    }

    fn timer(&mut self, cx: &mut Ctx<'_>, kind: TimerKind, _sub: u64) -> Turn {
        match kind {
            SILENCE => {
                let Some(limit) = self.opts.silence_limit() else {
                    return Ok(());
                };
                if cx.now.saturating_duration_since(self.last_read) >= limit {
                    return Err(CloseReason::Silent(limit));
                }
                cx.set_timer(later(self.last_read, limit), SILENCE, 0);
            }
            BEAT => {
                let _ = self.handler.heartbeat();
                cx.set_timer(later(cx.now, self.opts.heartbeat), BEAT, 0);
            }
            CLOSE => {
                debug!(
                    peer = %self.peer,
                    dropped = self.shared.out().queued(),
                    "close flush deadline passed: dropping what is queued"
                );
                return Err(CloseReason::Local);
            }
            CALLS => {
                self.shared.disarm();
                self.handler.timeout(cx.now);
                if let Some(next) = self.handler.next_timeout() {
                    self.shared.arm(next);
                }
            }
            TimerKind(_) => {}
        }
        Ok(())
    }

    fn command(&mut self, cx: &mut Ctx<'_>, op: Op, _sub: u64) -> Turn {
        match op {
            Op::Flush => {
                self.shared.flush_queued.store(false, Ordering::Release);
                self.flush(cx)
            }
            Op::Close => self.close_asked(cx),
            Op::Arm => {
                if let Some(deadline) = self.shared.armed() {
                    cx.set_timer(deadline, CALLS, 0);
                }
                Ok(())
            }
        }
    }

    fn stop(&mut self, cx: &mut Ctx<'_>) -> Turn {
        self.flush(cx)
    }

    fn closed(mut self: Box<Self>, cx: &mut Ctx<'_>, reason: CloseReason) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.out().clear();
        let _ = cx.registry.deregister(&mut self.stream);
        cx.handle.0.conns.fetch_sub(1, Ordering::Relaxed);
        end(&self.peer, &*self.handler, reason);
        if let Some(buf) = self.inbound.take() {
            cx.release_buffer(buf);
        }
    }
}
