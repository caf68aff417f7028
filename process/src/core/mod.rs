//! The untyped heart of a process: decode, route, answer, settle calls.
//!
//! The modules of this crate import one way: each imports only modules
//! listed before it.
//!
//! ```text
//! leaves:  error, options, time, load, panic, close, transport, encode, session
//!          pending
//!          context (Context, and the Job and Task it travels as)
//!          router
//!          dispatch (the Dispatch trait, Inline)
//!          core
//!          hook
//! on top:  process, mem
//! ```
//!
//! except for two loops, which are callbacks by nature:
//!
//! - context -> core: the core makes each request's [`Context`] and runs
//!   its chain; the context answers, spawns and runs through the core of
//!   its process (its transport, routing table and dispatcher).
//! - core -> hook: the core hands each frame to the [`DispatchHook`],
//!   whose [`FrameNext`] hands it back to the core.
//!
//! [`DispatchHook`]: crate::DispatchHook
//! [`FrameNext`]: crate::FrameNext

mod calls;
mod inbound;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use walle_codec::{Code, Codec};
use walle_mempool::Pool;
use walle_packet::{FrameMode, Head, Protocol};

use crate::close::CloseReason;
use crate::context::{Context, Job, Task};
use crate::dispatch::Dispatch;
use crate::encode::with_payload;
use crate::error::{Error, HandlerError};
use crate::hook::DispatchHook;
use crate::load::LoadLimit;
use crate::metrics::ProcessMetrics;
use crate::options::ProcessOptions;
use crate::pending::{Pending, Wakeup};
use crate::router::Table;
use crate::session::Session;
use crate::time::Clock;
use crate::transport::Transport;

/// Counters of one process, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessStats {
    /// Calls waiting for an answer.
    pub pending_calls: usize,
    /// Call timers set.
    pub timers: usize,
    /// Responses that matched no pending call (late, duplicate): dropped.
    pub stray_responses: u64,
    /// Notifies to a route with no handler: dropped.
    pub unrouted_notifies: u64,
    /// Requests refused by the load limit or by the dispatcher (a full
    /// queue, a bound on tasks, no executor).
    pub rejected: u64,
}

#[derive(Default)]
struct Counters {
    stray_responses: AtomicU64,
    unrouted_notifies: AtomicU64,
    rejected: AtomicU64,
}

/// What the processes built from one builder or template share: the
/// same for every session of a server, so each process keeps one pointer
/// to it instead of a copy.
pub(crate) struct Common {
    pub(crate) protocol: Protocol,
    pub(crate) pool: Arc<dyn Pool>,
    pub(crate) table: Arc<Table>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) dispatcher: Arc<dyn Dispatch>,
    /// The dispatcher only runs jobs at once on the caller's thread
    /// ([`Dispatch::runs_inline`]): requests run here, without a job.
    pub(crate) inline: bool,
    /// The load bound, if any: without one nothing is counted.
    pub(crate) load: Option<Arc<LoadLimit>>,
    pub(crate) hook: Option<Arc<dyn DispatchHook>>,
    pub(crate) options: ProcessOptions,
    pub(crate) metrics: ProcessMetrics,
}

/// What a core is made of; the builder fills in the defaults.
pub(crate) struct Parts {
    pub(crate) common: Arc<Common>,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) session: Session,
    pub(crate) span: tracing::Span,
}

pub(crate) struct Core {
    common: Arc<Common>,
    /// How the transport delimits frames.
    mode: FrameMode,
    /// This connection's own pipeline, when an encoder keeps state per
    /// connection ([`Protocol::for_connection`]); else the shared one.
    /// Boxed: most connections have none, and idle ones are many.
    own_protocol: Option<Box<Protocol>>,
    transport: Arc<dyn Transport>,
    session: Session,
    /// The connection's span (session, peer, backend), entered while the
    /// process works for it: requests' spans and logs nest under it.
    /// Boxed, and `None` when no subscriber wants it: idle connections
    /// are many.
    span: Option<Box<tracing::Span>>,
    pending: Mutex<Pending>,
    /// [`Pending::unclaimed`], as of the table's last unlock: read without
    /// its lock (by the io layer's writer, [`Core::unclaimed`]).
    unclaimed: AtomicU32,
    closed: AtomicBool,
    counters: Counters,
}

/// The pending-call table, locked; on unlock it leaves its count of
/// unclaimed outcomes where [`Core::unclaimed`] reads it.
pub(crate) struct PendingGuard<'a> {
    table: MutexGuard<'a, Pending>,
    unclaimed: &'a AtomicU32,
}

impl std::ops::Deref for PendingGuard<'_> {
    type Target = Pending;
    fn deref(&self) -> &Pending {
        &self.table
    }
}

impl std::ops::DerefMut for PendingGuard<'_> {
    fn deref_mut(&mut self) -> &mut Pending {
        &mut self.table
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let count = u32::try_from(self.table.unclaimed()).unwrap_or(u32::MAX);
        self.unclaimed.store(count, Relaxed);
    }
}

impl std::ops::Deref for Core {
    type Target = Common;

    /// The shared parts read as the process's own (`self.pool`, ...); the
    /// pipeline is read through [`Core::protocol`], which may be the
    /// connection's own.
    fn deref(&self) -> &Common {
        &self.common
    }
}

impl Core {
    pub(crate) fn new(parts: Parts) -> Self {
        let common = parts.common;
        let seqs = common
            .options
            .seq_range
            .bounds(common.protocol.wrapper().max_seq());
        let pending = Pending::new(seqs, common.clock.now(), common.options.timer_tick);
        Core {
            mode: parts.transport.mode(),
            own_protocol: common.protocol.for_connection().map(Box::new),
            transport: parts.transport,
            session: parts.session,
            span: (!parts.span.is_none()).then(|| Box::new(parts.span)),
            common,
            pending: Mutex::new(pending),
            unclaimed: AtomicU32::new(0),
            closed: AtomicBool::new(false),
            counters: Counters::default(),
        }
    }

    fn pending(&self) -> PendingGuard<'_> {
        PendingGuard {
            table: self.pending.lock().unwrap_or_else(|e| e.into_inner()),
            unclaimed: &self.unclaimed,
        }
    }

    /// Calls settled whose future has not yet taken the outcome: callers
    /// woken, about to run (and, most of them, to send again).
    pub(crate) fn unclaimed(&self) -> usize {
        self.unclaimed.load(Relaxed) as usize
    }

    /// The connection's span.
    pub(crate) fn span(&self) -> &tracing::Span {
        static NONE: std::sync::LazyLock<tracing::Span> =
            std::sync::LazyLock::new(tracing::Span::none);
        self.span.as_deref().unwrap_or(&NONE)
    }

    /// The protocol pipeline.
    pub(crate) fn protocol(&self) -> &Protocol {
        self.own_protocol
            .as_deref()
            .unwrap_or(&self.common.protocol)
    }

    /// How the transport delimits frames.
    pub(crate) fn mode(&self) -> FrameMode {
        self.mode
    }

    /// The session of this process.
    pub(crate) fn session(&self) -> &Session {
        &self.session
    }

    /// The name of route `index`.
    pub(crate) fn route_name(&self, index: usize) -> &str {
        self.table.name(index)
    }

    /// True after [`close`](Core::close).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Relaxed)
    }

    /// Hands `f` the payload of `msg`, encoded into a pooled buffer if the
    /// codec cannot lend the message's own bytes.
    pub(crate) fn with_payload<C: Codec<M>, M, R>(
        &self,
        codec: &C,
        msg: &M,
        f: impl FnOnce(&[u8]) -> Result<R, Error>,
    ) -> Result<R, Error> {
        with_payload(codec, &*self.pool, self.options.encode_buffer, msg, f)
    }

    /// Encodes `msg` (without a copy when the codec allows) and writes the
    /// packet `head`.
    pub(crate) fn send_message<C: Codec<M>, M>(
        &self,
        codec: &C,
        head: &Head<'_>,
        msg: &M,
    ) -> Result<(), Error> {
        self.with_payload(codec, msg, |payload| self.send_packet(head, payload))
    }

    /// Writes one packet to the transport.
    pub(crate) fn send_packet(&self, head: &Head<'_>, payload: &[u8]) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::SessionClosed);
        }
        let (protocol, mode) = (self.protocol(), self.mode);
        self.write(&mut |dst| protocol.encode_in(mode, head, payload, dst))
    }

    /// Appends what `encode` writes to the transport, counting the bytes
    /// (or the refusal of a full queue).
    fn write(
        &self,
        encode: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), walle_packet::PacketError>,
    ) -> Result<(), Error> {
        let mut bytes = 0;
        let result = self.transport.send(&mut |dst| {
            let before = dst.len();
            let encoded = encode(dst);
            bytes = dst.len().saturating_sub(before);
            encoded
        });
        self.metrics.frame_out(bytes, &result);
        result
    }

    /// Writes an error response.
    pub(crate) fn send_error(&self, head: &Head<'_>, code: Code, desc: &str) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::SessionClosed);
        }
        let (protocol, mode) = (self.protocol(), self.mode);
        self.write(&mut |dst| protocol.encode_error_in(mode, head, code, desc, dst))
    }

    /// Writes a heartbeat.
    pub(crate) fn send_heartbeat(&self, time: Option<i64>) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::SessionClosed);
        }
        let (protocol, mode) = (self.protocol(), self.mode);
        self.write(&mut |dst| protocol.encode_heartbeat_in(mode, time, dst))
    }

    /// Writes one already-encoded frame.
    pub(crate) fn send_frame(&self, frame: &Bytes) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::SessionClosed);
        }
        let result = self.transport.send_frame(frame);
        self.metrics.frame_out(frame.len(), &result);
        result
    }

    /// Hands a request to the dispatcher; a refused one is answered with
    /// the refusal.
    fn submit(&self, mut ctx: Context) {
        if self.inline {
            // What an inline dispatcher's `submit` does, without the job
            // or the second reference to the process that running one
            // takes (the context holds one already; this is the same).
            self.run(&mut ctx);
            return;
        }
        if let Err((job, error)) = self.dispatcher.submit(Job::new(ctx)) {
            self.count_rejected();
            job.into_context().fail(&(Box::new(error) as HandlerError));
        }
    }

    /// Hands async work to the dispatcher's executor.
    // The error path is a refusal, cold: the task travels back by value.
    #[allow(clippy::result_large_err)]
    pub(crate) fn spawn(&self, task: Task) -> Result<(), (Task, Error)> {
        self.dispatcher.spawn(task)
    }

    /// Counts a request refused by a bound or by the dispatcher.
    pub(crate) fn count_rejected(&self) {
        self.counters.rejected.fetch_add(1, Relaxed);
    }

    /// Closes the process for `reason`: pending calls fail, close
    /// callbacks run with the reason, the transport is asked to close.
    /// Idempotent: the first reason stays.
    pub(crate) fn close(&self, reason: CloseReason) {
        // Kept before the process counts as closed: whoever finds it closed
        // (an io layer logging how the connection ended) finds why too.
        self.session.record(reason);
        if self.closed.swap(true, Relaxed) {
            return;
        }
        let mut wakeups = Vec::new();
        self.pending().close(&mut wakeups, &self.metrics);
        wakeups.into_iter().for_each(Wakeup::fire);
        self.session.run_close();
        self.transport.close();
    }

    pub(crate) fn stats(&self) -> ProcessStats {
        let (pending_calls, timers) = self.pending().counts();
        ProcessStats {
            pending_calls,
            timers,
            stray_responses: self.counters.stray_responses.load(Relaxed),
            unrouted_notifies: self.counters.unrouted_notifies.load(Relaxed),
            rejected: self.counters.rejected.load(Relaxed),
        }
    }
}
