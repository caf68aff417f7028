//! Session handles: a connection's process, usable from any thread.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;
use walle_codec::Codec;
use walle_packet::Route;
use walle_process::{CallFuture, CallOptions, CloseReason, Error, Process, Session};

/// A cheap, cloneable handle to one connection, usable from any thread:
/// push and notify, call the peer, close, read and write session values,
/// register close callbacks.
pub struct SessionHandle<C> {
    pub(crate) process: Process<C>,
    pub(crate) peer: SocketAddr,
}

impl<C: Clone> Clone for SessionHandle<C> {
    fn clone(&self) -> Self {
        SessionHandle {
            process: self.process.clone(),
            peer: self.peer,
        }
    }
}

/// The user a session is bound to, stored in its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserId(pub u64);

impl<C: Clone + Send + Sync + 'static> SessionHandle<C> {
    /// The session id, unique within its server.
    pub fn id(&self) -> u64 {
        self.process.session().id()
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The session's values and close callbacks.
    pub fn session(&self) -> &Session {
        self.process.session()
    }

    /// The user bound to this session, if any.
    pub fn user(&self) -> Option<u64> {
        self.session().get::<UserId>().map(|u| u.0)
    }

    /// The process behind the session.
    pub fn process(&self) -> &Process<C> {
        &self.process
    }

    /// Sends a one-way message (a push, from a server).
    pub fn notify<'r, M>(&self, route: impl Into<Route<'r>>, msg: &M) -> Result<(), Error>
    where
        C: Codec<M>,
    {
        self.process.notify(route, msg)
    }

    /// Calls the peer.
    pub fn call<'r, Req, Resp>(&self, route: impl Into<Route<'r>>, req: &Req) -> CallFuture<C, Resp>
    where
        C: Codec<Req> + Codec<Resp>,
    {
        self.process.call(route, req)
    }

    /// Calls the peer with options.
    pub fn call_with<'r, Req, Resp>(
        &self,
        route: impl Into<Route<'r>>,
        req: &Req,
        options: CallOptions<'_>,
    ) -> CallFuture<C, Resp>
    where
        C: Codec<Req> + Codec<Resp>,
    {
        self.process.call_with(route, req, options)
    }

    /// Writes an already-encoded frame.
    pub fn send_frame(&self, frame: &Bytes) -> Result<(), Error> {
        self.process.send_frame(frame)
    }

    /// Closes the session: pending calls fail, close callbacks run once,
    /// the socket is released.
    pub fn close(&self) {
        self.process.close()
    }

    /// Closes the session for `reason` (the hub kicking a session whose
    /// user bound elsewhere).
    pub(crate) fn close_for(&self, reason: CloseReason) {
        self.process.close_with(reason)
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.process.is_closed()
    }

    /// Runs `f` once when the session closes, with the reason.
    pub fn on_close(&self, f: impl FnOnce(&CloseReason) + Send + 'static) {
        self.session().on_close(f)
    }
}

impl<C> fmt::Debug for SessionHandle<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionHandle")
            .field("process", &self.process)
            .finish()
    }
}
