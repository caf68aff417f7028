//! A process: one connection's protocol state, typed calls and dispatch.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use walle_codec::Codec;
use walle_mempool::{Pool, SizedPool};
use walle_packet::{FrameMode, Head, Metadata, Packet, Protocol, Route};

use crate::core::{Core, Counters, ProcessStats};
use crate::dispatch::{Dispatcher, LoadLimit};
use crate::pending::{Pending, Waiter};
use crate::router::Routes;
use crate::{
    Clock, CloseReason, DispatchHook, Error, ProcessOptions, Session, SystemClock, Transport,
};

/// Hands `f` the payload of `msg`: the message itself when the codec can
/// lend its bytes, else the message encoded into a buffer from `pool` (of
/// `size` bytes to start with).
pub(crate) fn with_payload<C: Codec<M>, M, R>(
    codec: &C,
    pool: &dyn Pool,
    size: usize,
    msg: &M,
    f: impl FnOnce(&[u8]) -> Result<R, Error>,
) -> Result<R, Error> {
    match codec.as_encoded(msg) {
        Some(payload) => f(payload),
        None => {
            let mut buf = pool.alloc(size);
            codec.encode(msg, buf.as_mut_vec())?;
            f(&buf)
        }
    }
}

/// Encodes a one-way packet to `route` into one whole frame, once, to be
/// written to many sessions ([`Process::send_frame`]): a broadcast. `mode`
/// is that of the sessions' transports.
pub fn encode_notify_frame<C: Codec<M>, M>(
    protocol: &Protocol,
    mode: FrameMode,
    codec: &C,
    route: Route<'_>,
    msg: &M,
) -> Result<Bytes, Error> {
    let head = Head::notify(route);
    let mut frame = Vec::new();
    with_payload(codec, &*default_pool(), 1024, msg, |payload| {
        Ok(protocol.encode_in(mode, &head, payload, &mut frame)?)
    })?;
    Ok(Bytes::from(frame))
}

/// The process-wide pool used when a builder is given none.
fn default_pool() -> Arc<dyn Pool> {
    static POOL: OnceLock<Arc<dyn Pool>> = OnceLock::new();
    POOL.get_or_init(|| Arc::new(SizedPool::new())).clone()
}

/// The system clock, shared.
fn system_clock() -> Arc<dyn Clock> {
    static CLOCK: OnceLock<Arc<dyn Clock>> = OnceLock::new();
    CLOCK.get_or_init(|| Arc::new(SystemClock)).clone()
}

/// The process-wide inline dispatcher used when a builder is given none.
fn inline_dispatcher() -> Arc<Dispatcher> {
    static INLINE: OnceLock<Arc<Dispatcher>> = OnceLock::new();
    INLINE
        .get_or_init(|| Arc::new(Dispatcher::inline()))
        .clone()
}

/// Builds a [`Process`].
pub struct ProcessBuilder<C> {
    protocol: Protocol,
    routes: Routes<C>,
    transport: Option<Arc<dyn Transport>>,
    pool: Option<Arc<dyn Pool>>,
    dispatcher: Option<Arc<Dispatcher>>,
    load: Option<Arc<LoadLimit>>,
    clock: Option<Arc<dyn Clock>>,
    hook: Option<Arc<dyn DispatchHook>>,
    session: Option<Session>,
    options: ProcessOptions,
}

impl<C> ProcessBuilder<C> {
    /// Where frames are written. Required.
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }
    /// The pool payloads are encoded into (default: one per process-wide).
    pub fn pool(mut self, pool: Arc<dyn Pool>) -> Self {
        self.pool = Some(pool);
        self
    }
    /// Where handlers run (default: inline).
    pub fn dispatcher(mut self, dispatcher: Arc<Dispatcher>) -> Self {
        self.dispatcher = Some(dispatcher);
        self
    }
    /// The bound on requests in flight, usually shared by a server. Without
    /// one, requests are not counted at all.
    pub fn load_limit(mut self, load: Arc<LoadLimit>) -> Self {
        self.load = Some(load);
        self
    }
    /// The clock call deadlines are read from (default: the system's).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }
    /// A hook that sees every frame before dispatch.
    pub fn hook(mut self, hook: Arc<dyn DispatchHook>) -> Self {
        self.hook = Some(hook);
        self
    }
    /// The session (default: a new one with id 0).
    pub fn session(mut self, session: Session) -> Self {
        self.session = Some(session);
        self
    }
    /// Settings.
    pub fn options(mut self, options: ProcessOptions) -> Self {
        self.options = options;
        self
    }

    /// The process; fails without a transport.
    pub fn build(self) -> Result<Process<C>, Error> {
        let transport = self
            .transport
            .ok_or(Error::NotSupported("a process needs a transport"))?;
        let clock = self.clock.unwrap_or_else(system_clock);
        let seqs = self
            .options
            .seq_range
            .bounds(self.protocol.wrapper().max_seq());
        let pending = Pending::new(seqs, clock.now(), self.options.timer_tick);
        let core = Core {
            protocol: self.protocol,
            mode: transport.mode(),
            transport,
            pool: self.pool.unwrap_or_else(default_pool),
            table: self.routes.table,
            clock,
            dispatcher: self.dispatcher.unwrap_or_else(inline_dispatcher),
            load: self.load,
            hook: self.hook,
            session: self.session.unwrap_or_else(|| Session::new(0)),
            options: self.options,
            pending: Mutex::new(pending),
            closed: AtomicBool::new(false),
            counters: Counters::default(),
        };
        Ok(Process {
            core: Arc::new(core),
            codec: self.routes.codec,
        })
    }
}

impl<C> fmt::Debug for ProcessBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessBuilder")
            .field("protocol", &self.protocol)
            .field("options", &self.options)
            .finish()
    }
}

/// One connection's process: it decodes the frames the io layer hands it
/// ([`handle_frame`](Process::handle_frame)), dispatches requests to the
/// router, settles responses to its own calls, and encodes what it sends
/// into the connection's [`Transport`].
///
/// Sans-io: it opens no socket and reads time only from the clock it was
/// given; the io layer drives [`handle_timeout`](Process::handle_timeout).
/// Cheap to clone; clones share everything.
pub struct Process<C> {
    core: Arc<Core>,
    codec: C,
}

impl<C: Clone> Clone for Process<C> {
    fn clone(&self) -> Self {
        Process {
            core: self.core.clone(),
            codec: self.codec.clone(),
        }
    }
}

/// Options of one call.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallOptions<'a> {
    /// Timeout; the process's default when `None`. A timeout the clock
    /// cannot add to now (`Duration::MAX`) means no timeout: the call ends
    /// with its response, a cancel or the session's close.
    pub timeout: Option<Duration>,
    /// Metadata sent with the request.
    pub metadata: Option<&'a Metadata>,
}

impl<C: Clone + Send + Sync + 'static> Process<C> {
    /// Starts building a process speaking `protocol` and dispatching to
    /// `routes`.
    pub fn builder(protocol: Protocol, routes: impl Into<Routes<C>>) -> ProcessBuilder<C> {
        ProcessBuilder {
            protocol,
            routes: routes.into(),
            transport: None,
            pool: None,
            dispatcher: None,
            load: None,
            clock: None,
            hook: None,
            session: None,
            options: ProcessOptions::default(),
        }
    }

    /// Handles one frame body cut by the framing. An error (malformed
    /// packet, or a dispatch hook's refusal) means the connection should
    /// be closed; nothing else is affected.
    pub fn handle_frame(&self, body: Bytes) -> Result<(), Error> {
        self.core.handle_frame(body)
    }

    /// Fails the calls whose deadline is at or before `now` (BEHAVIOURS 13).
    pub fn handle_timeout(&self, now: Instant) {
        self.core.handle_timeout(now)
    }

    /// When to call [`handle_timeout`](Process::handle_timeout) next, in
    /// O(1): the earliest call deadline, or a little earlier after the
    /// call holding it was answered (that wakeup then fails nothing, and
    /// the next answer is exact). `None` when no call waits.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.pending().next_deadline()
    }

    /// Closes: pending calls fail with `SessionClosed` at once, close
    /// callbacks run once (with [`CloseReason::Local`]), later sends fail
    /// (BEHAVIOURS 15, 30, 31).
    pub fn close(&self) {
        self.core.close(CloseReason::Local)
    }

    /// [`close`](Process::close) for `reason`: what the io layer calls when
    /// the connection ends, so that close callbacks learn why. The first
    /// close's reason is the one kept.
    pub fn close_with(&self, reason: CloseReason) {
        self.core.close(reason)
    }

    /// True after [`close`](Process::close).
    pub fn is_closed(&self) -> bool {
        self.core.closed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends a heartbeat (formats that have them), with `time` if given.
    pub fn send_heartbeat(&self, time: Option<i64>) -> Result<(), Error> {
        self.core.send_heartbeat(time)
    }

    /// Writes one already-encoded frame, such as a broadcast encoded once.
    pub fn send_frame(&self, frame: &Bytes) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::SessionClosed);
        }
        self.core.transport.send_frame(frame)
    }

    /// Encodes a one-way packet to `route` into a whole frame, once, for
    /// [`send_frame`](Process::send_frame) to many sessions.
    pub fn encode_notify<'r, M>(&self, route: impl Into<Route<'r>>, msg: &M) -> Result<Bytes, Error>
    where
        C: Codec<M>,
    {
        encode_notify_frame(
            &self.core.protocol,
            self.core.mode,
            &self.codec,
            route.into(),
            msg,
        )
    }

    /// The session of this process.
    pub fn session(&self) -> &Session {
        &self.core.session
    }

    /// The protocol pipeline.
    pub fn protocol(&self) -> &Protocol {
        &self.core.protocol
    }

    /// Counters.
    pub fn stats(&self) -> ProcessStats {
        self.core.stats()
    }

    /// Encodes `msg` (without a copy when the codec allows) and writes the
    /// packet `head`.
    fn send<M>(&self, head: &Head<'_>, msg: &M) -> Result<(), Error>
    where
        C: Codec<M>,
    {
        self.core.with_payload(&self.codec, msg, |payload| {
            self.core.send_packet(head, payload)
        })
    }

    /// Sends a one-way message; the peer's handler runs, nothing comes
    /// back (BEHAVIOURS 19).
    pub fn notify<'r, M>(&self, route: impl Into<Route<'r>>, msg: &M) -> Result<(), Error>
    where
        C: Codec<M>,
    {
        self.send(&Head::notify(route.into()), msg)
    }

    /// Sends a request and returns a future of its response. The request
    /// is written before this returns; the future settles with the
    /// response, `Timeout`, or `SessionClosed`. Dropping it cancels the
    /// call (BEHAVIOURS 14).
    pub fn call<'r, Req, Resp>(&self, route: impl Into<Route<'r>>, req: &Req) -> CallFuture<C, Resp>
    where
        C: Codec<Req> + Codec<Resp>,
    {
        self.call_with(route, req, CallOptions::default())
    }

    /// [`call`](Process::call) with a timeout and metadata.
    pub fn call_with<'r, Req, Resp>(
        &self,
        route: impl Into<Route<'r>>,
        req: &Req,
        options: CallOptions<'_>,
    ) -> CallFuture<C, Resp>
    where
        C: Codec<Req> + Codec<Resp>,
    {
        let state = match self.start(route.into(), req, options, Waiter::Future) {
            Ok(seq) => CallState::Waiting(seq),
            Err((error, _)) => CallState::Failed(Some(error)),
        };
        CallFuture {
            core: self.core.clone(),
            codec: self.codec.clone(),
            state,
            _resp: PhantomData,
        }
    }

    /// Sends a request; `callback` runs exactly once, with the response,
    /// `Timeout` or `SessionClosed`, never under an internal lock, so it
    /// may issue calls itself (BEHAVIOURS 17, 18). A request that cannot be
    /// written runs the callback at once with the error.
    pub fn async_call<'r, Req, Resp, F>(
        &self,
        route: impl Into<Route<'r>>,
        req: &Req,
        options: CallOptions<'_>,
        callback: F,
    ) where
        C: Codec<Req> + Codec<Resp>,
        Resp: 'static,
        F: FnOnce(Result<Resp, Error>) + Send + 'static,
    {
        let codec = self.codec.clone();
        let decode = move |result: Result<Packet, Error>| {
            callback(
                result
                    .and_then(|p| Codec::<Resp>::decode(&codec, p.payload()).map_err(Error::from)),
            )
        };
        let waiter = Waiter::Callback(Box::new(decode));
        if let Err((error, Waiter::Callback(callback))) =
            self.start(route.into(), req, options, waiter)
        {
            callback(Err(error));
        }
    }

    /// Registers a pending call and writes its request. On failure, the
    /// entry is gone again (BEHAVIOURS 16) and the waiter comes back.
    fn start<Req>(
        &self,
        route: Route<'_>,
        req: &Req,
        options: CallOptions<'_>,
        waiter: Waiter,
    ) -> Result<u64, (Error, Waiter)>
    where
        C: Codec<Req>,
    {
        let timeout = options.timeout.unwrap_or(self.core.options.call_timeout);
        // A timeout past what the clock can represent (`Duration::MAX`)
        // means none: the call ends with its answer, a cancel or the close.
        let deadline = self.core.clock.now().checked_add(timeout);
        let seq = self.core.pending().begin(deadline, waiter)?;
        let mut head = Head::request(route, seq);
        head.metadata = options.metadata;
        match self.send(&head, req) {
            Ok(()) => {
                if let Some(deadline) = deadline {
                    self.core.transport.timer_hint(deadline);
                }
                Ok(seq)
            }
            Err(error) => {
                let callback = self.core.pending().cancel(seq);
                Err((error, callback.map_or(Waiter::Future, Waiter::Callback)))
            }
        }
    }
}

impl<C> fmt::Debug for Process<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("session", &self.core.session.id())
            .field("protocol", &self.core.protocol)
            .field("stats", &self.core.stats())
            .finish()
    }
}

enum CallState {
    Waiting(u64),
    Failed(Option<Error>),
    Finished,
}

/// The response of a [`Process::call`].
#[must_use = "a call is cancelled when its future is dropped"]
pub struct CallFuture<C, Resp> {
    core: Arc<Core>,
    codec: C,
    state: CallState,
    _resp: PhantomData<fn() -> Resp>,
}

impl<C, Resp> CallFuture<C, Resp> {
    /// The sequence id of the request, while it is pending.
    pub fn seq(&self) -> Option<u64> {
        match self.state {
            CallState::Waiting(seq) => Some(seq),
            _ => None,
        }
    }
}

impl<C: Codec<Resp> + Unpin, Resp> Future for CallFuture<C, Resp> {
    type Output = Result<Resp, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let result = match &mut this.state {
            CallState::Waiting(seq) => match this.core.pending().poll(*seq, cx.waker()) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => result,
            },
            CallState::Failed(error) => Err(error.take().unwrap_or(Error::SessionClosed)),
            CallState::Finished => Err(Error::SessionClosed),
        };
        this.state = CallState::Finished;
        Poll::Ready(
            result.and_then(|packet| this.codec.decode(packet.payload()).map_err(Error::from)),
        )
    }
}

impl<C, Resp> Drop for CallFuture<C, Resp> {
    fn drop(&mut self) {
        if let CallState::Waiting(seq) = self.state {
            let callback = self.core.pending().cancel(seq);
            drop(callback);
        }
    }
}

impl<C, Resp> fmt::Debug for CallFuture<C, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallFuture")
            .field("seq", &self.seq())
            .finish()
    }
}
