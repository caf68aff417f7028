//! One tokio connection over any [`Link`]: the transport, its setup and
//! its reader task, which keeps the silence, heartbeat and call timers,
//! hands frames on and closes in order (the write side is in `write`;
//! the TCP link in `link`, the WebSocket one in `crate::ws`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;
use walle_packet::{FrameMode, PacketError};
use walle_process::{CloseReason, Error, Transport};

use super::Registry;
use super::link::Link;
use super::write::{Queue, write_loop};
use crate::conn::{Attach, Handler, end, lower_deadline};
use crate::options::{ConnOptions, later};

/// A connection shared by its transport, its tasks and the server.
pub(crate) struct Conn<L> {
    /// The byte stream; the reader reads it, the writer writes it.
    pub(super) link: L,
    pub(super) queue: Mutex<Queue>,
    /// Wakes senders waiting for room.
    pub(super) room: Condvar,
    /// Wakes the writer: frames queued, a sender waiting, or closing.
    pub(super) ready: Notify,
    /// Wakes the reader: closing, or a call deadline set earlier than
    /// the ones it was told of.
    wake: Notify,
    /// The earliest call deadline the reader was woken for since its
    /// timer last fired, in nanoseconds since `epoch` (`u64::MAX`: none):
    /// a call due later needs no wake-up, since the reader looks at every
    /// call deadline again when that timer fires.
    hinted: AtomicU64,
    epoch: Instant,
    pub(super) closed: AtomicBool,
    /// Why it is closing, when this side started it (kept first).
    why: OnceLock<CloseReason>,
    pub(super) opts: Arc<ConnOptions>,
    /// Tells this connection's reader from other code on its thread.
    pub(super) id: u64,
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

impl<L: Link> Conn<L> {
    pub(super) fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A connection as its server sees it, whatever its link.
pub(crate) trait Shut: Send + Sync {
    /// Starts closing for `why` (the first reason stays): the reader stops
    /// and closes the session with it, the writer flushes (until the close
    /// flush deadline); then the link is shut.
    fn shutdown(&self, why: CloseReason);
    /// Closes at once: drops what is queued and shuts the link.
    fn abort(&self);
}

impl<L: Link> Shut for Conn<L> {
    fn shutdown(&self, why: CloseReason) {
        let _ = self.why.set(why);
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
        self.ready.notify_one();
        self.room.notify_all();
    }

    fn abort(&self) {
        self.shutdown(CloseReason::Stopped);
        self.queue().out.clear();
        self.link.shutdown();
    }
}

struct ConnTransport<L>(Arc<Conn<L>>);

impl<L: Link> Transport for ConnTransport<L> {
    fn send(
        &self,
        write: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), PacketError>,
    ) -> Result<(), Error> {
        self.0.enqueue(|out| Ok(out.encode(write)?))
    }

    fn send_frame(&self, frame: &Bytes) -> Result<(), Error> {
        self.0.enqueue(|out| {
            out.push_shared(frame.clone());
            Ok(())
        })
    }

    fn timer_hint(&self, deadline: Instant) {
        if lower_deadline(&self.0.hinted, self.0.epoch, deadline) {
            self.0.wake.notify_one();
        }
    }

    fn mode(&self) -> FrameMode {
        self.0.queue().out.mode()
    }

    fn close(&self) {
        self.0.shutdown(CloseReason::Local);
    }
}

/// Sets up a connection over `link` and spawns its tasks on the current
/// runtime.
pub(crate) fn start<L: Link>(
    link: L,
    peer: SocketAddr,
    attach: &Attach,
    opts: Arc<ConnOptions>,
    registry: Option<Arc<Registry>>,
) {
    let conn = Arc::new(Conn {
        queue: Mutex::new(Queue::new(link.mode())),
        link,
        room: Condvar::new(),
        ready: Notify::new(),
        wake: Notify::new(),
        hinted: AtomicU64::new(u64::MAX),
        epoch: Instant::now(),
        closed: AtomicBool::new(false),
        why: OnceLock::new(),
        opts,
        id: NEXT_CONN.fetch_add(1, Ordering::Relaxed),
    });
    let Some(handler) = attach(Arc::new(ConnTransport(conn.clone())), peer) else {
        conn.shutdown(CloseReason::Local);
        // Refused: a link with a close of its own says so (a WebSocket
        // close frame); the link closes when the last handle drops.
        tokio::spawn(async move {
            let refused = Error::Overloaded("connection refused");
            conn.link
                .close(&CloseReason::Refused(Arc::new(refused)))
                .await;
        });
        return;
    };
    let id = registry
        .as_ref()
        .map(|r| r.add(conn.clone(), handler.clone()));
    let (writer, callers) = (conn.clone(), handler.clone());
    let writer = tokio::spawn(async move {
        // The reader stops too, and closes the session with the reason.
        match write_loop(&writer, &*callers).await {
            Ok(()) => writer.shutdown(CloseReason::Local),
            Err(e) => writer.shutdown(CloseReason::io(e)),
        }
    });
    tokio::spawn(async move {
        let reason = read_loop(&conn, &*handler).await;
        if !matches!(reason, CloseReason::Local | CloseReason::Stopped) {
            // Not closed in order: what is queued can no longer matter.
            conn.queue().out.clear();
        }
        conn.shutdown(reason.clone());
        // The session closes (its callbacks run, it leaves the server)
        // before the peer can see the end of the stream; the writer
        // flushes meanwhile, until the close flush deadline.
        let kept = end(&peer, &*handler, reason);
        let _ = writer.await;
        // The link's own close (a WebSocket close handshake) follows what
        // was flushed.
        conn.link.close(&kept).await;
        conn.abort();
        if let (Some(registry), Some(id)) = (registry, id) {
            registry.remove(id);
        }
    });
}

async fn read_loop<L: Link>(conn: &Conn<L>, handler: &dyn Handler) -> CloseReason {
    let mut inbox = conn.link.inbox(handler.framing());
    let opts = &conn.opts;
    let silence = opts.silence_limit();
    let mut last_read = Instant::now();
    let mut next_beat = opts.ticks().then(|| later(last_read, opts.heartbeat));
    // The timer and the wake-up live across turns, so a busy connection
    // does not register and drop them on every read. The timer is set
    // lazily: when it fires early (the peer spoke since), it is set again.
    let sleep = tokio::time::sleep_until(last_read.into());
    tokio::pin!(sleep);
    let mut armed: Option<Instant> = None;
    let wake = conn.wake.notified();
    tokio::pin!(wake);
    loop {
        // A peer that never pauses must not keep this task from yielding
        // to the others on its worker.
        tokio::task::coop::consume_budget().await;
        if conn.closed.load(Ordering::Acquire) {
            return conn.why.get().cloned().unwrap_or(CloseReason::Local);
        }
        let deadlines = [
            silence.map(|s| later(last_read, s)),
            next_beat,
            handler.next_timeout(),
        ];
        let wake_at = deadlines.into_iter().flatten().min();
        if let Some(at) = wake_at {
            if armed.is_none_or(|armed| at < armed) {
                sleep.as_mut().reset(at.into());
                armed = Some(at);
            }
        }
        // Reads first; timers are also checked after every read, so a
        // connection that always has input still gets them.
        tokio::select! {
            biased;
            read = conn.link.read_some(&mut inbox) => {
                if let Err(why) = read {
                    return why;
                }
                last_read = Instant::now();
                conn.begin_batch();
                let handed = conn.link.deliver(&mut inbox, handler);
                if let Err(e) = conn.end_batch() {
                    return CloseReason::io(e);
                }
                if let Err(why) = handed {
                    return why;
                }
            }
            () = &mut sleep, if armed.is_some() => {
                armed = None;
                // A call started from now on wakes this task again; the
                // next turn reads every deadline afresh, after this store.
                conn.hinted.store(u64::MAX, Ordering::Release);
            }
            () = &mut wake => wake.set(conn.wake.notified()),
        }
        // The clock is read only when a deadline exists, and once.
        if let Some(at) = wake_at
            && let now = Instant::now()
            && at <= now
        {
            if let Some(limit) = silence {
                if now.saturating_duration_since(last_read) >= limit {
                    return CloseReason::Silent(limit);
                }
            }
            // Callbacks run here on the reader too: a send of theirs to
            // a full queue must not wait for this very task.
            conn.set_reader(true);
            if next_beat.is_some_and(|at| at <= now) {
                let _ = handler.heartbeat();
                match conn.link.beat() {
                    Ok(true) => {}
                    Ok(false) => conn.ready.notify_one(), // the writer writes the rest
                    Err(e) => {
                        conn.set_reader(false);
                        return CloseReason::io(e);
                    }
                }
                next_beat = Some(later(now, opts.heartbeat));
            }
            handler.timeout(now);
            conn.set_reader(false);
        }
    }
}
