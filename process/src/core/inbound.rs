//! Inbound frames: the dispatch hook, decoding, the load limit, and the
//! route chain a request runs through wherever its dispatcher runs it.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use tracing::{debug, error, trace, trace_span, warn};
use walle_codec::Code;
use walle_packet::{Cmd, Head, Packet};

use super::Core;
use crate::context::{BoxFuture, Context};
use crate::error::{Error, HandlerError, Status};
use crate::hook::FrameNext;
use crate::panic::panic_message;
use crate::router::{Handler, Next};

impl Core {
    /// Entry point for one frame body: the dispatch hook if any, then
    /// [`dispatch`](Core::dispatch).
    pub(crate) fn handle_frame(self: &Arc<Self>, body: Bytes) -> Result<(), Error> {
        let _span = self.span().enter();
        self.metrics.frame_in(body.len());
        match &self.hook {
            // An error of the rest of dispatch that the hook passed on
            // (`next.run(frame)?`) keeps its kind; the hook's own is `Hook`.
            Some(hook) => hook
                .on_frame(body, FrameNext::new(self.clone()))
                .map_err(|error| match error.downcast::<Error>() {
                    Ok(error) => *error,
                    Err(error) => Error::Hook(error),
                }),
            None => self.dispatch(body),
        }
    }

    /// Decodes a frame body and routes the packet. An error means the
    /// stream can no longer be trusted: the caller closes the connection.
    pub(crate) fn dispatch(self: &Arc<Self>, body: Bytes) -> Result<(), Error> {
        let packet = self.protocol().decode(body)?;
        if packet.is_heartbeat() {
            trace!(session = self.session.id(), "heartbeat");
            // A failed echo (a full queue, a closing session) is not the
            // peer's fault: the silence limit deals with a dead link.
            if self.options.echo_heartbeat {
                if let Err(error) = self.send_heartbeat(packet.heartbeat_time()) {
                    debug!(session = self.session.id(), %error, "heartbeat echo not sent");
                }
            }
            return Ok(());
        }
        let is_response = match packet.cmd() {
            Cmd::Response => true,
            Cmd::Request => {
                !self.protocol().wrapper().marks_responses()
                    && self.pending().contains(packet.seq())
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
                    self.count_rejected();
                    self.refuse(&packet, "load limit reached");
                    return Ok(());
                }
            },
        };
        self.submit(Context::new(self.clone(), packet, load));
        Ok(())
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

    /// Runs a request or notify through its route's chain and answers
    /// errors. A panicking handler fails its own request, not the thread
    /// it runs on (a reactor or reader serving other connections).
    pub(crate) fn run(&self, ctx: &mut Context) {
        let session = self.session.id();
        let _span = trace_span!("request", session, seq = ctx.packet().seq(), route = ?ctx.packet().route()).entered();
        let result = match self.table.lookup(ctx.packet()) {
            Some((route, named)) => {
                if named {
                    ctx.set_named(route);
                }
                ctx.set_route(route);
                let next = Next::start(&self.table, route);
                std::panic::catch_unwind(AssertUnwindSafe(|| next.run(ctx))).unwrap_or_else(
                    |panic| {
                        let what = panic_message(&*panic);
                        error!(session, route = ?ctx.packet().route(), panic = what, "handler panicked");
                        Err(Box::new(Status::new(Code::UNKNOWN, "handler panicked")) as HandlerError)
                    },
                )
            }
            None if ctx.cmd() == Cmd::Notify => {
                // BEHAVIOURS 4: a notify to nowhere is dropped, counted, logged.
                self.counters.unrouted_notifies.fetch_add(1, Relaxed);
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

    /// The future of route `route`'s async handler, started with `ctx`.
    pub(crate) fn handler_future(&self, route: usize, ctx: Context) -> BoxFuture {
        match self.table.handler(route) {
            Handler::Async(handler) => handler(ctx),
            // Tasks are made for async routes only: were one made for a
            // sync route, its request is answered with code 7 (on drop).
            Handler::Sync(_) => {
                drop(ctx);
                Box::pin(std::future::ready(()))
            }
        }
    }
}
