//! The write side of a tokio connection: its bounded queue, the senders
//! that fill it (waiting for room up to the send timeout), the reader's
//! batches, and the writer task that drains it.

use std::cell::Cell;
use std::io;
use std::sync::MutexGuard;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tracing::debug;
use walle_packet::FrameMode;
use walle_process::Error;

use super::conn::Conn;
use super::link::Link;
use crate::conn::Handler;
use crate::options::{WriteMode, later};
use crate::outbound::Outbound;

/// What waits to be written.
pub(super) struct Queue {
    pub(super) out: Outbound,
    /// The reader task is handing a batch of frames to the handler and
    /// writes what they queue once it is done, so sends of that handler
    /// need not wake the writer task meanwhile.
    reading: bool,
    /// Senders waiting for room (`send_timeout`).
    waiting: usize,
}

impl Queue {
    /// An empty queue of frames delimited as `mode` says.
    pub(super) fn new(mode: FrameMode) -> Queue {
        Queue {
            out: Outbound::new(mode),
            reading: false,
            waiting: 0,
        }
    }
}

thread_local! {
    /// The id of the connection whose reader is handing frames or timer
    /// events to its handler on this thread; 0 when none is.
    static READING: Cell<u64> = const { Cell::new(0) };
}

impl<L: Link> Conn<L> {
    /// True on this connection's reader, while it runs handler code.
    fn is_own_reader(&self) -> bool {
        READING.with(Cell::get) == self.id
    }

    /// Marks this thread as running handler code for this connection's
    /// reader (timer events, outside a batch), or no longer.
    pub(super) fn set_reader(&self, on: bool) {
        READING.with(|r| r.set(if on { self.id } else { 0 }));
    }

    fn full(&self, queue: &Queue) -> bool {
        queue.out.frames() >= self.opts.send_queue_frames.max(1)
            || queue.out.queued() >= self.opts.send_queue_bytes.max(1)
    }

    /// Writes what the socket takes now, under the queue lock (so every
    /// write keeps the queue's order). `Ok(true)` when nothing is left.
    fn write_now(&self, queue: &mut Queue) -> io::Result<bool> {
        let done = self.link.write_out(&mut queue.out);
        if queue.waiting > 0 {
            self.room.notify_all();
        }
        done
    }

    /// Queues a frame that `add` appends. In sync mode a frame that finds
    /// the queue empty is written at once by the caller.
    pub(super) fn enqueue(
        &self,
        add: impl FnOnce(&mut Outbound) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::SessionClosed);
        }
        let mut queue = self.queue();
        if self.full(&queue) {
            queue = self.wait_for_room(queue)?;
        }
        let was_empty = queue.out.is_empty();
        add(&mut queue.out)?;
        if was_empty && self.opts.write_mode == WriteMode::Sync {
            match self.write_now(&mut queue) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => {
                    drop(queue);
                    self.ready.notify_one(); // the writer meets the error and shuts down
                    return Err(Error::Io(e));
                }
            }
        }
        // Who writes it: during a batch, the reader once it is handed on,
        // for what its own handler queued; the writer for anyone else's
        // (it may not be awake). Otherwise the writer, awake already
        // unless the queue was empty.
        let wake = if queue.reading {
            !self.is_own_reader()
        } else {
            was_empty
        };
        drop(queue);
        if wake {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Waits for room in a full queue, up to the send timeout, with the
    /// writer woken to drain it. Only on a plain thread: this connection's
    /// own reader (an inline handler) would wait for itself, since what it
    /// queued is written once it returns; and any thread that runs tokio
    /// tasks (a worker of this backend running another connection's
    /// handler, a user's runtime) must not block, or the writers it waits
    /// for may never run. Those fail at once instead.
    fn wait_for_room<'a>(
        &'a self,
        mut queue: MutexGuard<'a, Queue>,
    ) -> Result<MutexGuard<'a, Queue>, Error> {
        let wait = self.opts.send_timeout;
        if wait.is_zero() || self.is_own_reader() || tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Overloaded("send queue full"));
        }
        let deadline = later(Instant::now(), wait);
        queue.waiting += 1;
        // The writer may be idle while the reader is in a batch; it
        // writes under the queue lock, so the order stays the same.
        self.ready.notify_one();
        while self.full(&queue) && !self.closed.load(Ordering::Acquire) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            queue = self
                .room
                .wait_timeout(queue, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        queue.waiting -= 1;
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::SessionClosed);
        }
        if self.full(&queue) {
            return Err(Error::Overloaded("send queue full"));
        }
        Ok(queue)
    }

    /// The reader is about to hand frames to the handler.
    pub(super) fn begin_batch(&self) {
        self.queue().reading = true;
        READING.with(|r| r.set(self.id));
    }

    /// The reader handed its frames on: writes what they queued, and
    /// leaves to the writer task only what the socket does not take now.
    pub(super) fn end_batch(&self) -> io::Result<()> {
        READING.with(|r| r.set(0));
        let mut queue = self.queue();
        queue.reading = false;
        if queue.out.is_empty() && self.link.flushed() {
            return Ok(());
        }
        if !self.write_now(&mut queue)? {
            drop(queue);
            self.ready.notify_one();
        }
        Ok(())
    }
}

/// The writer task: writes what the senders and the reader left queued, batched into
/// vectored writes (BEHAVIOURS 28), until the connection closes and the
/// queue is empty — or, once closing, until the close flush deadline,
/// when what is left is dropped.
pub(super) async fn write_loop<L: Link>(conn: &Conn<L>, callers: &dyn Handler) -> io::Result<()> {
    let mut flush_by: Option<Instant> = None;
    loop {
        let closing = conn.closed.load(Ordering::Acquire);
        if closing && flush_by.is_none() {
            flush_by = Some(later(Instant::now(), conn.opts.close_flush_timeout));
        }
        let written = {
            let mut queue = conn.queue();
            if queue.out.is_empty() && conn.link.flushed() {
                None
            } else {
                Some(conn.write_now(&mut queue)?)
            }
        };
        match (written, flush_by) {
            (Some(true), _) => {}
            (Some(false), Some(by)) => {
                let writable = tokio::time::timeout_at(by.into(), conn.link.writable());
                if let Ok(ready) = writable.await {
                    ready?;
                } else {
                    let mut queue = conn.queue();
                    debug!(
                        dropped = queue.out.queued(),
                        "close flush deadline passed: dropping what is queued"
                    );
                    queue.out.clear();
                    return Ok(());
                }
            }
            // Closing, or a sender waiting for room, ends the wait too.
            (Some(false), None) => tokio::select! {
                ready = conn.link.writable() => ready?,
                () = conn.ready.notified() => {}
            },
            (None, _) if closing => return Ok(()),
            (None, _) => {
                conn.ready.notified().await;
                gather(conn, callers).await;
            }
        }
    }
}

/// Waits, before a write, for the callers that are about to send.
///
/// Woken by a sender, tokio runs the writer next, before the rest of the
/// run queue. Yielding once lets the tasks already queued queue their
/// frames too. But the callers that one read of their answers woke may
/// be spread far down that queue: tokio runs the last one woken first
/// (its LIFO slot), the others when their turn comes. Writing after the
/// first would split the burst of their calls into two writes, and the
/// peer's answers into two segments, and so for good: each half then
/// comes back and goes out on its own, at a read and a write per half on
/// both sides. So the writer yields while some of this connection's
/// callers have an outcome they have not taken yet (they are about to
/// run and, most of them, to call again), for up to [`GATHER_TURNS`]
/// turns of the runtime or until [`GATHER_BYTES`] are queued; a lone
/// sender, with no such caller, waits one turn, as any sender did.
async fn gather<L: Link>(conn: &Conn<L>, callers: &dyn Handler) {
    tokio::task::yield_now().await;
    for _ in 0..GATHER_TURNS {
        if callers.unclaimed_answers() == 0 || conn.queue().out.queued() >= GATHER_BYTES {
            return;
        }
        tokio::task::yield_now().await;
    }
}

/// The most runtime turns a write waits for callers about to send. A
/// turn is as long as the runtime takes to poll its next few dozen tasks
/// (tokio looks for io and deferred tasks every 61 polls), or one look
/// for io when it has nothing else to run; a connection with 16 calls in
/// flight among 4,096 on one worker needs about 70 for its burst.
const GATHER_TURNS: usize = 128;
/// A queue this large is written without waiting for more.
const GATHER_BYTES: usize = 64 * 1024;
