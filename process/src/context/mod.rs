//! The per-request context handed to middleware and handlers, and the
//! forms it takes on its way to an executor ([`Job`], [`Task`]).

mod job;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tracing::debug;
use walle_codec::{Code, Codec};
use walle_packet::{Cmd, Head, MetadataView, Packet};

use crate::core::Core;
use crate::error::{Error, HandlerError, wire_error};
use crate::load::LoadGuard;
use crate::session::Session;

pub(crate) use job::BoxFuture;
pub use job::{Job, Task};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No answer yet.
    Open,
    /// Answered (or a notify, which is never answered).
    Done,
    /// Moved to another context by `defer`.
    Deferred,
}

/// One inbound request or notify on its way through middleware to its
/// handler: the packet (metadata, route, payload), the session, and the
/// means to answer.
///
/// The context holds the request's place in the load count until it is
/// dropped, however the handling ends (BEHAVIOURS 22). A request dropped
/// without an answer is answered with code 7, so no caller waits for a
/// response that will never come.
pub struct Context {
    core: Arc<Core>,
    packet: Packet,
    state: State,
    aborted: bool,
    /// One more than the index of the route the packet's uri matched by
    /// name, if it did (kept small: contexts travel through queues).
    named: Option<std::num::NonZeroU32>,
    /// One more than the index of the route the packet went to, if any:
    /// whose metrics count the answer.
    route: Option<std::num::NonZeroU32>,
    /// When the request came in (by the process's clock), for its
    /// duration; read only when the process times requests.
    started: Option<std::time::Instant>,
    _load: Option<LoadGuard>,
}

impl Context {
    pub(crate) fn new(core: Arc<Core>, packet: Packet, load: Option<LoadGuard>) -> Self {
        let state = match packet.cmd() {
            Cmd::Request => State::Open,
            _ => State::Done,
        };
        let started = core.options.request_durations.then(|| core.clock.now());
        Context {
            core,
            packet,
            state,
            aborted: false,
            named: None,
            route: None,
            started,
            _load: load,
        }
    }

    /// Records that the packet's uri matched route `index` by name.
    pub(crate) fn set_named(&mut self, index: usize) {
        self.named = u32::try_from(index + 1)
            .ok()
            .and_then(std::num::NonZeroU32::new);
    }

    /// Records that the packet went to route `index`.
    pub(crate) fn set_route(&mut self, index: usize) {
        self.route = u32::try_from(index + 1)
            .ok()
            .and_then(std::num::NonZeroU32::new);
    }

    /// Counts the answer `code` in the route's metrics.
    fn count_answer(&self, code: Code) {
        match self.route {
            Some(index) => {
                let entry = &self.core.table.entries[index.get() as usize - 1];
                let took = self
                    .started
                    .map(|at| self.core.clock.now().saturating_duration_since(at));
                crate::metrics::RouteMetrics::answered(&entry.metrics, &entry.label, code, took);
            }
            None => crate::metrics::unrouted(code),
        }
    }

    /// The head of this request's response. The uri comes from the route
    /// table when the request matched a name, so it is not checked as
    /// UTF-8 a second time.
    fn response_head(&self) -> Result<Head<'_>, walle_packet::PacketError> {
        match self.named {
            Some(index) => {
                let name = self.core.route_name(index.get() as usize - 1);
                Head::response_with_uri(&self.packet, name)
            }
            None => Head::response_to(&self.packet),
        }
    }

    /// The packet being handled.
    pub fn packet(&self) -> &Packet {
        &self.packet
    }

    /// Request or notify.
    pub fn cmd(&self) -> Cmd {
        self.packet.cmd()
    }

    /// The request's metadata (BEHAVIOURS 9).
    pub fn metadata(&self) -> MetadataView<'_> {
        self.packet.metadata()
    }

    /// The session the packet came in on; its values are shared by every
    /// request of the session (BEHAVIOURS 9).
    pub fn session(&self) -> &Session {
        self.core.session()
    }

    /// True while a request is waiting for its answer.
    pub fn awaits_response(&self) -> bool {
        self.state == State::Open
    }

    /// True once [`abort`](Context::abort) was called.
    pub fn is_aborted(&self) -> bool {
        self.aborted
    }

    /// True for the shell left behind by [`defer`](Context::defer).
    pub fn is_deferred(&self) -> bool {
        self.state == State::Deferred
    }

    /// Answers the request with `msg`, encoded by `codec`. Answering a
    /// notify, or answering twice, fails with code 7.
    pub fn respond<C: Codec<M>, M>(&mut self, codec: &C, msg: &M) -> Result<(), Error> {
        self.check_open()?;
        let head = self.response_head()?;
        let core = &self.core;
        core.with_payload(codec, msg, |payload| core.send_packet(&head, payload))?;
        self.state = State::Done;
        self.count_answer(Code::OK);
        Ok(())
    }

    /// Answers the request with an error.
    pub fn respond_error(&mut self, code: Code, desc: &str) -> Result<(), Error> {
        self.check_open()?;
        let head = self.response_head()?;
        let sent = self.core.send_error(&head, code, desc);
        self.state = State::Done;
        self.count_answer(code);
        sent
    }

    fn check_open(&self) -> Result<(), Error> {
        match self.state {
            State::Open => Ok(()),
            _ => Err(
                walle_packet::PacketError::Unexpected("no request awaits an answer here").into(),
            ),
        }
    }

    /// Stops the chain: handlers and middleware not yet run are skipped,
    /// and a request is answered with `error` (its code kept when it is a
    /// [`Status`](crate::Status)). The load count is released as usual
    /// (BEHAVIOURS 8).
    pub fn abort(&mut self, error: impl Into<HandlerError>) {
        self.aborted = true;
        self.fail(&error.into());
    }

    /// Answers with the wire form of `error` if a request still awaits an
    /// answer; logs a failed notify.
    pub(crate) fn fail(&mut self, error: &HandlerError) {
        let (code, desc) = wire_error(error);
        if self.state == State::Open {
            if let Err(e) = self.respond_error(code, &desc) {
                debug!(error = %e, "could not send error response");
            }
        } else if self.packet.cmd() == Cmd::Notify {
            debug!(route = ?self.packet.route(), %code, %desc, "notify handler failed");
        }
    }

    /// Moves the request out of this context into the returned one, to
    /// finish elsewhere (another thread, an async task). This context is
    /// left as a shell: the chain stops here and nothing is answered from
    /// it; the returned context answers.
    pub fn defer(&mut self) -> Context {
        let taken = Context {
            core: self.core.clone(),
            packet: self.packet.clone(),
            state: self.state,
            aborted: self.aborted,
            named: self.named,
            route: self.route,
            started: self.started,
            _load: self._load.take(),
        };
        self.state = State::Deferred;
        taken
    }

    /// Runs `future`, work a handler starts and does not wait for, on the
    /// executor of this process's dispatcher
    /// ([`Dispatch::spawn`](crate::Dispatch::spawn)). Fails with
    /// [`Error::NoRuntime`] when the dispatcher has no executor
    /// ([`Inline`](crate::Inline) has none), or with its own refusal (such
    /// as a bound on tasks in flight); the future is then dropped unpolled.
    pub fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) -> Result<(), Error> {
        let task = Task::future(Box::pin(future));
        self.core.spawn(task).map_err(|(_, error)| error)
    }

    /// Hands the async handler of route `route` this request, to run on
    /// the dispatcher's executor. On refusal the request comes back here
    /// (so that it is answered with the refusal's code) and the error is
    /// returned.
    pub(crate) fn spawn_handler(&mut self, route: usize) -> Result<(), HandlerError> {
        let task = Task::handler(self.defer(), route);
        match self.core.spawn(task) {
            Ok(()) => Ok(()),
            Err((task, error)) => {
                self.core.count_rejected();
                if let Some(ctx) = task.into_context() {
                    *self = ctx;
                }
                Err(Box::new(error))
            }
        }
    }

    /// Runs the request through its route's chain; a request still
    /// unanswered when this returns is answered with code 7 (on drop).
    pub(crate) fn run(mut self) {
        // The chain borrows the process while it owns the context.
        let core = self.core.clone();
        core.run(&mut self);
    }

    /// The future of route `route`'s async handler for this request.
    pub(crate) fn into_handler_future(self, route: usize) -> BoxFuture {
        let core = self.core.clone();
        core.handler_future(route, self)
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        if self.state == State::Open {
            if let Ok(head) = self.response_head() {
                let desc = "request dropped without an answer";
                let _ = self.core.send_error(&head, Code::UNEXPECTED, desc);
                self.count_answer(Code::UNEXPECTED);
            }
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("session", &self.core.session().id())
            .field("packet", &self.packet)
            .field("state", &self.state)
            .field("aborted", &self.aborted)
            .finish()
    }
}
