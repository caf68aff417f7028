//! A process: one connection's protocol state, typed calls and dispatch.

pub(crate) mod builder;
mod call;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use walle_codec::Codec;
use walle_packet::{FrameMode, Head, Packet, Protocol, Route};

use crate::close::CloseReason;
use crate::core::{Core, ProcessStats};
use crate::encode::with_payload;
use crate::error::Error;
use crate::options::CallOptions;
use crate::pending::Waiter;
use crate::router::Routes;
use crate::session::Session;

pub use builder::{ProcessBuilder, ProcessTemplate};
pub use call::CallFuture;
use call::CallState;

/// Encodes a one-way packet to `route` into one whole frame, once, to be
/// written to many sessions ([`Process::send_frame`]): a broadcast. `mode`
/// is that of the sessions' transports.
///
/// Fails with [`Error::NotSupported`] when the protocol has an encoder
/// that keeps per-connection state ([`Protocol::per_connection`]): such a
/// frame is only good on one connection, so each session encodes its own.
pub fn encode_notify_frame<C: Codec<M>, M>(
    protocol: &Protocol,
    mode: FrameMode,
    codec: &C,
    route: Route<'_>,
    msg: &M,
) -> Result<Bytes, Error> {
    if protocol.per_connection() {
        return Err(Error::NotSupported(
            "a frame shared by many sessions: an encoder of the protocol keeps per-connection state",
        ));
    }
    let head = Head::notify(route);
    let mut frame = Vec::new();
    with_payload(codec, &*builder::default_pool(), 1024, msg, |payload| {
        Ok(protocol.encode_in(mode, &head, payload, &mut frame)?)
    })?;
    Ok(Bytes::from(frame))
}

/// One connection's process: it decodes the frames the io layer hands it
/// ([`handle_frame`](Process::handle_frame)), dispatches requests to the
/// router, settles responses to its own calls, and encodes what it sends
/// into the connection's [`Transport`](crate::Transport).
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

impl<C: Clone + Send + Sync + 'static> Process<C> {
    /// Starts building a process speaking `protocol` and dispatching to
    /// `routes`.
    pub fn builder(protocol: Protocol, routes: impl Into<Routes<C>>) -> ProcessBuilder<C> {
        ProcessBuilder::new(protocol, routes.into())
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
        self.core.next_deadline()
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
        self.core.is_closed()
    }

    /// Sends a heartbeat (formats that have them), with `time` if given.
    pub fn send_heartbeat(&self, time: Option<i64>) -> Result<(), Error> {
        self.core.send_heartbeat(time)
    }

    /// Writes one already-encoded frame, such as a broadcast encoded once.
    ///
    /// Fails with [`Error::NotSupported`] when this process's protocol has
    /// an encoder that keeps per-connection state: a frame encoded
    /// elsewhere would not be of this connection's stream.
    pub fn send_frame(&self, frame: &Bytes) -> Result<(), Error> {
        if self.core.protocol().per_connection() {
            return Err(Error::NotSupported(
                "a frame encoded elsewhere: an encoder of the protocol keeps per-connection state",
            ));
        }
        self.core.send_frame(frame)
    }

    /// Encodes a one-way packet to `route` into a whole frame, once, for
    /// [`send_frame`](Process::send_frame) to many sessions.
    pub fn encode_notify<'r, M>(&self, route: impl Into<Route<'r>>, msg: &M) -> Result<Bytes, Error>
    where
        C: Codec<M>,
    {
        encode_notify_frame(
            self.core.protocol(),
            self.core.mode(),
            &self.codec,
            route.into(),
            msg,
        )
    }

    /// The session of this process.
    pub fn session(&self) -> &Session {
        self.core.session()
    }

    /// The protocol pipeline.
    pub fn protocol(&self) -> &Protocol {
        self.core.protocol()
    }

    /// Whether `self` and `other` are handles of one process (clones of
    /// each other), not two processes that happen to look alike.
    pub fn ptr_eq(&self, other: &Process<C>) -> bool {
        Arc::ptr_eq(&self.core, &other.core)
    }

    /// Calls whose outcome (a response, a timeout, the close) has arrived
    /// but whose future has not taken it yet: callers woken and about to
    /// run. An io layer may hold a write back while this is above zero
    /// (for a runtime turn or a few), since those callers' next requests
    /// would then join it. Read without a lock.
    pub fn unclaimed_answers(&self) -> usize {
        self.core.unclaimed()
    }

    /// Counters.
    pub fn stats(&self) -> ProcessStats {
        self.core.stats()
    }

    /// Sends a one-way message; the peer's handler runs, nothing comes
    /// back (BEHAVIOURS 19).
    pub fn notify<'r, M>(&self, route: impl Into<Route<'r>>, msg: &M) -> Result<(), Error>
    where
        C: Codec<M>,
    {
        let head = Head::notify(route.into());
        self.core.send_message(&self.codec, &head, msg)
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
        let started =
            self.core
                .start_call(&self.codec, route.into(), req, &options, Waiter::Future);
        let state = match started {
            Ok(seq) => CallState::Waiting(seq),
            Err((error, _)) => CallState::Failed(Some(error)),
        };
        CallFuture::new(self.core.clone(), self.codec.clone(), state)
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
            self.core
                .start_call(&self.codec, route.into(), req, &options, waiter)
        {
            callback(Err(error));
        }
    }
}

impl<C> fmt::Debug for Process<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("session", &self.core.session().id())
            .field("protocol", self.core.protocol())
            .field("stats", &self.core.stats())
            .finish()
    }
}
