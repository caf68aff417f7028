//! One tokio connection: the transport, the reader task, the writer task.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Notify;
use tracing::{debug, info, warn};
use walle_packet::PacketError;
use walle_process::{Error, Transport};

use super::Registry;
use crate::conn::{Attach, Handler};
use crate::options::{ConnOptions, WriteMode};

#[derive(Default)]
struct Queue {
    frames: VecDeque<Bytes>,
    bytes: usize,
}

impl Queue {
    fn advance(&mut self, mut n: usize) {
        self.bytes -= n;
        while n > 0 {
            let Some(front) = self.frames.front_mut() else {
                return;
            };
            if n < front.len() {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.frames.pop_front();
        }
    }
}

/// A connection shared by its transport, its tasks and the server.
pub(crate) struct TcpConn {
    stream: OwnedWriteHalf,
    queue: Mutex<Queue>,
    room: Condvar,
    /// Wakes the writer: frames queued, or closing.
    ready: Notify,
    /// Wakes the reader: closing, or a call deadline set.
    wake: Notify,
    closed: AtomicBool,
    opts: Arc<ConnOptions>,
}

impl TcpConn {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts closing: the reader stops, the writer flushes and shuts the
    /// socket.
    pub(crate) fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
        self.ready.notify_one();
        self.room.notify_all();
    }

    fn full(&self, queue: &Queue) -> bool {
        queue.frames.len() >= self.opts.send_queue_frames.max(1)
            || queue.bytes >= self.opts.send_queue_bytes.max(1)
    }

    /// Queues a frame (async mode), or writes it at once when nothing is
    /// queued (sync mode). Ordering holds in both: every write to the
    /// socket happens under the queue lock.
    fn enqueue(&self, mut frame: Bytes) -> Result<(), Error> {
        let mut queue = self.queue();
        if self.opts.write_mode == WriteMode::Sync && queue.frames.is_empty() {
            while !frame.is_empty() {
                match self.stream.try_write(&frame) {
                    Ok(n) => frame.advance(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(Error::Io(e)),
                }
            }
            if frame.is_empty() {
                return Ok(());
            }
        } else if self.full(&queue) {
            let wait = self.opts.send_timeout;
            if wait.is_zero() {
                return Err(Error::Overloaded("send queue full"));
            }
            let deadline = Instant::now() + wait;
            while self.full(&queue) && !self.closed.load(Ordering::Acquire) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::Overloaded("send queue full"));
                }
                queue = self
                    .room
                    .wait_timeout(queue, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::SessionClosed);
            }
        }
        queue.bytes += frame.len();
        queue.frames.push_back(frame);
        drop(queue);
        self.ready.notify_one();
        Ok(())
    }
}

struct TcpTransport(Arc<TcpConn>);

impl Transport for TcpTransport {
    fn send(
        &self,
        write: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), PacketError>,
    ) -> Result<(), Error> {
        if self.0.closed.load(Ordering::Acquire) {
            return Err(Error::SessionClosed);
        }
        let mut frame = Vec::with_capacity(128);
        write(&mut frame)?;
        self.0.enqueue(Bytes::from(frame))
    }

    fn send_frame(&self, frame: &Bytes) -> Result<(), Error> {
        if self.0.closed.load(Ordering::Acquire) {
            return Err(Error::SessionClosed);
        }
        self.0.enqueue(frame.clone())
    }

    fn timer_hint(&self, _deadline: Instant) {
        self.0.wake.notify_one();
    }

    fn close(&self) {
        self.0.shutdown();
    }
}

/// Sets up a connection and spawns its tasks on the current runtime.
pub(crate) fn start(
    stream: TcpStream,
    peer: SocketAddr,
    attach: &Attach,
    opts: Arc<ConnOptions>,
    registry: Option<Arc<Registry>>,
) {
    if opts.nodelay {
        let _ = stream.set_nodelay(true);
    }
    let (read_half, write_half) = stream.into_split();
    let conn = Arc::new(TcpConn {
        stream: write_half,
        queue: Mutex::new(Queue::default()),
        room: Condvar::new(),
        ready: Notify::new(),
        wake: Notify::new(),
        closed: AtomicBool::new(false),
        opts,
    });
    let Some(handler) = attach(Arc::new(TcpTransport(conn.clone())), peer) else {
        conn.shutdown();
        return; // refused: the socket closes when the last handle drops
    };
    let id = registry.as_ref().map(|r| r.add(conn.clone()));
    let writer = conn.clone();
    let unregister = registry.clone();
    tokio::spawn(async move {
        if let Err(e) = write_loop(&writer).await {
            debug!(error = %e, "write failed");
        }
        writer.shutdown();
        let _ = socket2::SockRef::from(writer.stream.as_ref()).shutdown(std::net::Shutdown::Both);
        if let (Some(registry), Some(id)) = (unregister, id) {
            registry.remove(id);
        }
    });
    tokio::spawn(async move {
        let reason = read_loop(&conn, read_half, &*handler).await;
        let session = handler.id();
        match &reason {
            Closing::Eof | Closing::Asked => debug!(%peer, session, "connection closed"),
            Closing::Io(e) => info!(%peer, session, error = %e, "connection closed: socket error"),
            Closing::Bad(why) => {
                warn!(%peer, session, reason = %why, "connection closed: bad input")
            }
            Closing::Silent(limit) => {
                info!(%peer, session, ?limit, "connection closed: peer silent too long")
            }
        }
        if !matches!(reason, Closing::Asked) {
            // Not closed by us: what is queued can no longer matter.
            let mut queue = conn.queue();
            queue.frames.clear();
            queue.bytes = 0;
        }
        conn.shutdown();
        handler.closed();
    });
}

enum Closing {
    Eof,
    Asked,
    Io(io::Error),
    Bad(String),
    Silent(Duration),
}

async fn read_loop(conn: &TcpConn, mut stream: OwnedReadHalf, handler: &dyn Handler) -> Closing {
    let mut buf = BytesMut::new();
    let mut decoder = handler.framing().decoder();
    let opts = &conn.opts;
    let silence = opts.silence_limit();
    let mut last_read = Instant::now();
    let mut next_beat = opts.ticks().then(|| last_read + opts.heartbeat);
    loop {
        if conn.closed.load(Ordering::Acquire) {
            return Closing::Asked;
        }
        let deadlines = [
            silence.map(|s| last_read + s),
            next_beat,
            handler.next_timeout(),
        ];
        let wake_at = deadlines.into_iter().flatten().min();
        let sleep = async {
            match wake_at {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        buf.reserve(8 * 1024);
        tokio::select! {
            read = stream.read_buf(&mut buf) => {
                match read {
                    Ok(0) => return Closing::Eof,
                    Ok(_) => {
                        last_read = Instant::now();
                        loop {
                            match decoder.decode(&mut buf) {
                                Ok(Some(body)) => {
                                    if let Err(e) = handler.frame(body) {
                                        return Closing::Bad(e.to_string());
                                    }
                                }
                                Ok(None) => break,
                                Err(e) => return Closing::Bad(e.to_string()),
                            }
                        }
                    }
                    Err(e) => return Closing::Io(e),
                }
                if buf.is_empty() && buf.capacity() > 64 * 1024 {
                    buf = BytesMut::new(); // an idle connection keeps no large buffer
                }
            }
            _ = sleep => {
                let now = Instant::now();
                if let Some(limit) = silence {
                    if now.saturating_duration_since(last_read) >= limit {
                        return Closing::Silent(limit);
                    }
                }
                if next_beat.is_some_and(|at| at <= now) {
                    let _ = handler.heartbeat();
                    next_beat = Some(now + opts.heartbeat);
                }
                handler.timeout(now);
            }
            _ = conn.wake.notified() => {}
        }
    }
}

/// Writes queued frames, batched into vectored writes (BEHAVIOURS 28),
/// until the connection closes and the queue is empty.
async fn write_loop(conn: &TcpConn) -> io::Result<()> {
    loop {
        let progress = {
            let mut queue = conn.queue();
            if queue.frames.is_empty() {
                None
            } else {
                let mut slices = [IoSlice::new(&[]); 64];
                let n = queue.frames.len().min(64);
                for (slot, frame) in slices.iter_mut().zip(queue.frames.iter()) {
                    *slot = IoSlice::new(frame);
                }
                match conn.stream.try_write_vectored(&slices[..n]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(written) => {
                        queue.advance(written);
                        conn.room.notify_all();
                        Some(true)
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Some(false),
                    Err(e) => return Err(e),
                }
            }
        };
        match progress {
            Some(true) => {}
            Some(false) => conn.stream.writable().await?,
            None if conn.closed.load(Ordering::Acquire) => return Ok(()),
            None => conn.ready.notified().await,
        }
    }
}
