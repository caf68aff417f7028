//! The untyped heart of a process: decode, route, answer, settle calls.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use tracing::{debug, error, trace, trace_span, warn};
use walle_codec::Code;
use walle_codec::Codec;
use walle_mempool::Pool;
use walle_packet::{Cmd, FrameMode, Head, Packet, Protocol};

use crate::dispatch::{Dispatcher, LoadLimit};
use crate::hook::{DispatchHook, FrameNext};
use crate::pending::{Pending, Wakeup};
use crate::router::{Next, Table};
use crate::{
    Clock, CloseReason, Context, Error, HandlerError, ProcessOptions, Session, Status, Transport,
};

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
    /// Requests refused by the load limit, a full dispatch queue, the bound
    /// on tokio tasks or a missing runtime.
    pub rejected: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    stray_responses: AtomicU64,
    unrouted_notifies: AtomicU64,
    rejected: AtomicU64,
}

pub(crate) struct Core {
    pub(crate) protocol: Protocol,
    /// How the transport delimits frames.
    pub(crate) mode: FrameMode,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) pool: Arc<dyn Pool>,
    pub(crate) table: Arc<Table>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) dispatcher: Arc<Dispatcher>,
    /// The load bound, if any: without one nothing is counted.
    pub(crate) load: Option<Arc<LoadLimit>>,
    pub(crate) hook: Option<Arc<dyn DispatchHook>>,
    pub(crate) session: Session,
    pub(crate) options: ProcessOptions,
    pub(crate) pending: Mutex<Pending>,
    pub(crate) closed: AtomicBool,
    pub(crate) counters: Counters,
}

impl Core {
    pub(crate) fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn runtime(&self) -> Option<tokio::runtime::Handle> {
        self.dispatcher.runtime()
    }

    /// Hands `f` the payload of `msg`, encoded into a pooled buffer if the
    /// codec cannot lend the message's own bytes.
    pub(crate) fn with_payload<C: Codec<M>, M, R>(
        &self,
        codec: &C,
        msg: &M,
        f: impl FnOnce(&[u8]) -> Result<R, Error>,
    ) -> Result<R, Error> {
        crate::process::with_payload(codec, &*self.pool, self.options.encode_buffer, msg, f)
    }

    /// Writes one packet to the transport.
    pub(crate) fn send_packet(&self, head: &Head<'_>, payload: &[u8]) -> Result<(), Error> {
        if self.closed.load(Relaxed) {
            return Err(Error::SessionClosed);
        }
        let (protocol, mode) = (&self.protocol, self.mode);
        self.transport
            .send(&mut |dst| protocol.encode_in(mode, head, payload, dst))
    }

    /// Writes an error response.
    pub(crate) fn send_error(&self, head: &Head<'_>, code: Code, desc: &str) -> Result<(), Error> {
        if self.closed.load(Relaxed) {
            return Err(Error::SessionClosed);
        }
        let (protocol, mode) = (&self.protocol, self.mode);
        self.transport
            .send(&mut |dst| protocol.encode_error_in(mode, head, code, desc, dst))
    }

    /// Writes a heartbeat.
    pub(crate) fn send_heartbeat(&self, time: Option<i64>) -> Result<(), Error> {
        if self.closed.load(Relaxed) {
            return Err(Error::SessionClosed);
        }
        let (protocol, mode) = (&self.protocol, self.mode);
        self.transport
            .send(&mut |dst| protocol.encode_heartbeat_in(mode, time, dst))
    }

    /// Entry point for one frame body: the dispatch hook if any, then
    /// [`dispatch`](Core::dispatch).
    pub(crate) fn handle_frame(self: &Arc<Self>, body: Bytes) -> Result<(), Error> {
        match &self.hook {
            Some(hook) => hook
                .on_frame(body, FrameNext::new(self.clone()))
                .map_err(Error::Hook),
            None => self.dispatch(body),
        }
    }

    /// Decodes a frame body and routes the packet. An error means the
    /// stream can no longer be trusted: the caller closes the connection.
    pub(crate) fn dispatch(self: &Arc<Self>, body: Bytes) -> Result<(), Error> {
        let packet = self.protocol.decode(body)?;
        if packet.is_heartbeat() {
            trace!(session = self.session.id(), "heartbeat");
            if self.options.echo_heartbeat {
                self.send_heartbeat(packet.heartbeat_time())?;
            }
            return Ok(());
        }
        let is_response = match packet.cmd() {
            Cmd::Response => true,
            Cmd::Request => {
                !self.protocol.wrapper().marks_responses() && self.pending().contains(packet.seq())
            }
            Cmd::Notify => false,
        };
        if is_response {
            self.settle(packet);
            return Ok(());
        }
        let load = match &self.load {
            None => None,
            Some(limit) => match limit.try_acquire() {
                Some(guard) => Some(guard),
                None => {
                    self.counters.rejected.fetch_add(1, Relaxed);
                    self.refuse(&packet, "load limit reached");
                    return Ok(());
                }
            },
        };
        let ctx = Context::new(self.clone(), packet, load);
        if let Err((mut ctx, error)) = self.dispatcher.submit(ctx, &self.table) {
            self.count_rejected();
            ctx.fail(&(Box::new(error) as HandlerError));
        }
        Ok(())
    }

    /// Counts a request refused by a bound or a missing runtime.
    pub(crate) fn count_rejected(&self) {
        self.counters.rejected.fetch_add(1, Relaxed);
    }

    /// Answers a request refused before dispatch (BEHAVIOURS 23).
    fn refuse(&self, packet: &Packet, why: &'static str) {
        if let Ok(head) = Head::response_to(packet) {
            let error = Error::Overloaded(why);
            if let Err(e) = self.send_error(&head, error.code(), &error.to_string()) {
                debug!(error = %e, "could not refuse request");
            }
        }
    }

    /// Hands a response to its pending call.
    fn settle(&self, packet: Packet) {
        let seq = packet.seq();
        let result = match packet.is_error() {
            false => Ok(packet),
            true => Err(
                match self.protocol.wrapper().decode_error(packet.payload_ref()) {
                    Ok((code, desc)) => Error::Remote {
                        code,
                        desc: desc.to_string(),
                    },
                    Err(_) => Error::Remote {
                        code: Code::INVALID_ERROR_PAYLOAD,
                        desc: "error response with an unreadable payload".to_string(),
                    },
                },
            ),
        };
        let wakeup = self.pending().complete(seq, result);
        match wakeup {
            Some(wakeup) => wakeup.into_iter().for_each(Wakeup::fire),
            None => {
                self.counters.stray_responses.fetch_add(1, Relaxed);
                debug!(
                    session = self.session.id(),
                    seq, "response without a pending call dropped"
                );
            }
        }
    }

    /// Fails the calls whose deadline has passed.
    pub(crate) fn handle_timeout(&self, now: Instant) {
        let mut wakeups = Vec::new();
        self.pending().expire(now, &mut wakeups);
        wakeups.into_iter().for_each(Wakeup::fire);
    }

    /// Closes the process for `reason`: pending calls fail, close
    /// callbacks run with the reason, the transport is asked to close.
    /// Idempotent: the first reason stays.
    pub(crate) fn close(&self, reason: CloseReason) {
        if self.closed.swap(true, Relaxed) {
            return;
        }
        let mut wakeups = Vec::new();
        self.pending().close(&mut wakeups);
        wakeups.into_iter().for_each(Wakeup::fire);
        self.session.run_close(reason);
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

/// Runs a request or notify through its route's chain and answers errors.
/// `table` is the routing table of the context's process, borrowed by the
/// caller so that the chain takes no reference count.
pub(crate) fn run_request(ctx: &mut Context, table: &Table) {
    let session = ctx.session().id();
    let _span = trace_span!("request", session, seq = ctx.packet().seq()).entered();
    let result = match table.lookup(ctx.packet()) {
        Some((route, named)) => {
            if named {
                ctx.set_named(route);
            }
            let next = Next {
                table,
                route,
                index: 0,
            };
            // A panicking handler fails its own request, not the thread
            // it runs on (a reactor or reader serving other connections).
            std::panic::catch_unwind(AssertUnwindSafe(|| next.run(ctx))).unwrap_or_else(|panic| {
                let what = panic_message(&*panic);
                error!(session, route = ?ctx.packet().route(), panic = what, "handler panicked");
                Err(Box::new(Status::new(Code::UNKNOWN, "handler panicked")) as HandlerError)
            })
        }
        None if ctx.cmd() == Cmd::Notify => {
            // BEHAVIOURS 4: a notify to nowhere is dropped, counted, logged.
            ctx.core().counters.unrouted_notifies.fetch_add(1, Relaxed);
            warn!(session, route = ?ctx.packet().route(), "notify for an unknown route dropped");
            Ok(())
        }
        None => {
            Err(Box::new(Error::NoRoute(format!("{:?}", ctx.packet().route()))) as HandlerError)
        }
    };
    if let Err(error) = result {
        ctx.fail(&error);
    }
}

/// The message a panic carried, if it was a string.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}
