//! What a backend connection needs from the layers above it, and the
//! bookkeeping both backends share.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use std::panic::AssertUnwindSafe;

use bytes::{Bytes, BytesMut};
use tracing::{debug, info, warn};
use walle_mempool::Pool;
use walle_packet::{FrameDecoder, PacketError, Protocol};
use walle_process::{
    CloseReason, Dispatch, Error, LoadLimit, Process, ProcessOptions, ProcessTemplate, Routes,
    SeqRange, Session, Transport,
};

use crate::dispatch::shared_inline;
use crate::options::{Backend, Driver};

/// The process side of a connection, as a backend drives it. Implemented
/// by every [`Process`]; backends stay free of the codec type.
pub(crate) trait Handler: Send + Sync {
    /// One frame body arrived. An error closes the connection.
    fn frame(&self, body: Bytes) -> Result<(), Error>;
    /// Time passed: expire calls due by `now`.
    fn timeout(&self, now: Instant);
    /// The next call deadline.
    fn next_timeout(&self) -> Option<Instant>;
    /// Time to send a heartbeat.
    fn heartbeat(&self) -> Result<(), Error>;
    /// The connection is gone for `reason`: fail calls, run close
    /// callbacks.
    fn closed(&self, reason: CloseReason);
    /// The reason the session closed with, once closed (a close of the
    /// process's own comes first and wins over the io layer's).
    fn close_reason(&self) -> Option<CloseReason>;
    /// The session id, for logs.
    fn id(&self) -> u64;
    /// How frames are cut from the stream.
    fn framing(&self) -> walle_packet::Framing;
    /// Outcomes of this side's calls that their callers have yet to take
    /// ([`Process::unclaimed_answers`]).
    fn unclaimed_answers(&self) -> usize {
        0
    }
}

impl<C: Clone + Send + Sync + 'static> Handler for Process<C> {
    fn frame(&self, body: Bytes) -> Result<(), Error> {
        self.handle_frame(body)
    }
    fn timeout(&self, now: Instant) {
        self.handle_timeout(now)
    }
    fn next_timeout(&self) -> Option<Instant> {
        self.poll_timeout()
    }
    fn heartbeat(&self) -> Result<(), Error> {
        self.send_heartbeat(None)
    }
    fn closed(&self, reason: CloseReason) {
        self.close_with(reason)
    }
    fn close_reason(&self) -> Option<CloseReason> {
        self.session().close_reason()
    }
    fn id(&self) -> u64 {
        self.session().id()
    }
    fn framing(&self) -> walle_packet::Framing {
        *self.protocol().framing()
    }
    fn unclaimed_answers(&self) -> usize {
        Process::unclaimed_answers(self)
    }
}

/// Lowers the earliest call deadline kept in `slot`, as nanoseconds since
/// `epoch` (`u64::MAX`: none), to `deadline`; true when it did, and the
/// connection's timer must then be told. A connection's io side keeps
/// the mark so that a call due after one it knows of wakes nothing; it
/// resets the mark to `u64::MAX` when that timer fires.
pub(crate) fn lower_deadline(slot: &AtomicU64, epoch: Instant, deadline: Instant) -> bool {
    let since = deadline.saturating_duration_since(epoch);
    let nanos = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX - 1);
    let mut current = slot.load(Ordering::Acquire);
    while nanos < current {
        match slot.compare_exchange_weak(current, nanos, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return true,
            Err(now) => current = now,
        }
    }
    false
}

/// Cuts the complete frames out of a connection's read buffer and hands
/// them to its handler. An error means the connection must close: bad
/// input, a refusal, or a dispatch hook's panic, which leaves this
/// connection's state in doubt but not the thread's other connections (a
/// route handler's panic only fails its request; a call callback's is
/// contained where it runs).
pub(crate) fn deliver(
    decoder: &mut FrameDecoder,
    buf: &mut BytesMut,
    handler: &dyn Handler,
) -> Result<(), CloseReason> {
    let bad = |e: PacketError| CloseReason::input(e.into());
    while let Some(body) = decoder.decode(buf).map_err(bad)? {
        hand(body, handler)?;
    }
    Ok(())
}

/// Hands one frame body to a connection's handler, as [`deliver`] does
/// for each frame it cuts: a transport whose messages are frames (ws)
/// hands each message here.
pub(crate) fn hand(body: Bytes, handler: &dyn Handler) -> Result<(), CloseReason> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| handler.frame(body))) {
        Ok(handled) => handled.map_err(CloseReason::input),
        Err(_) => Err(CloseReason::Panicked),
    }
}

/// Ends a connection's session for `reason` and logs how it ended: the
/// reason the session kept, which is the process's own when it was closed
/// first (a kick, a local close), so the log says what the close callbacks
/// were told. Every backend ends its connections here. Returns that reason.
pub(crate) fn end(
    peer: &dyn std::fmt::Display,
    handler: &dyn Handler,
    reason: CloseReason,
) -> CloseReason {
    handler.closed(reason.clone());
    let kept = handler.close_reason().unwrap_or(reason);
    log_close(peer, handler.id(), &kept);
    kept
}

/// Logs the end of a connection, the same way on every backend: orderly
/// ends at debug, faults of the link at info, the peer's bad input at warn.
pub(crate) fn log_close(peer: &dyn std::fmt::Display, session: u64, reason: &CloseReason) {
    let kind = reason.name();
    match reason {
        CloseReason::Malformed(_) | CloseReason::Refused(_) | CloseReason::Panicked => {
            warn!(%peer, session, kind, %reason, "connection closed")
        }
        reason if reason.is_fault() => info!(%peer, session, kind, %reason, "connection closed"),
        reason => debug!(%peer, session, kind, %reason, "connection closed"),
    }
}

/// Turns a fresh connection's transport into its handler, or refuses the
/// connection (`None`: the backend closes it at once).
pub(crate) type Attach =
    Arc<dyn Fn(Arc<dyn Transport>, SocketAddr) -> Option<Arc<dyn Handler>> + Send + Sync>;

/// What the process of every connection is built from, for servers and
/// clients alike.
pub(crate) struct ProcessParts<C> {
    pub(crate) protocol: Protocol,
    pub(crate) routes: Routes<C>,
    pub(crate) pool: Option<Arc<dyn Pool>>,
    /// Where handlers run; `None`: net's inline [`Dispatcher`], which
    /// also runs async handlers on the tokio runtime current, if any.
    ///
    /// [`Dispatcher`]: crate::Dispatcher
    pub(crate) dispatcher: Option<Arc<dyn Dispatch>>,
    pub(crate) load: Option<Arc<LoadLimit>>,
    /// What the processes built share, for the options they were built
    /// with last (the same for every connection of a server or client).
    pub(crate) template: Mutex<Option<(ProcessOptions, ProcessTemplate<C>)>>,
}

/// Which end of a connection a process is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Server,
    Client,
}

impl<C: Clone + Send + Sync + 'static> ProcessParts<C> {
    /// Fails when no connection's process could work on `backend`: a
    /// dispatcher that cannot work from a thread with no runtime
    /// ([`Dispatch::check`]: a `Strategy::Tokio` one with no runtime to
    /// spawn on), on the event loop (its reactor threads have none; the
    /// tcp backend's workers are one). Servers and clients check at build,
    /// so the mistake is said once and not per request.
    pub(crate) fn check(&self, backend: &Backend) -> Result<(), Error> {
        match (&self.dispatcher, backend.driver()) {
            (Some(dispatcher), Driver::Mio) => dispatcher.check(),
            _ => Ok(()),
        }
    }

    /// The process of one connection writing to `transport`, on `side`.
    ///
    /// On a format that does not mark responses (`due`), a `seq_range` left
    /// at `All` becomes `Upper` for servers and `Lower` for clients, so
    /// that a peer's request never carries the seq of one of our calls.
    pub(crate) fn build(
        &self,
        transport: Arc<dyn Transport>,
        session: Session,
        mut options: ProcessOptions,
        side: Side,
        span: tracing::Span,
    ) -> Option<Process<C>> {
        if !self.protocol.wrapper().marks_responses() && options.seq_range == SeqRange::All {
            options.seq_range = match side {
                Side::Server => SeqRange::Upper,
                Side::Client => SeqRange::Lower,
            };
        }
        let mut template = self.template.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(&*template, Some((built, _)) if *built == options) {
            // The pipeline knows its end of the connection: an encoder
            // with per-connection state then refuses frames of its own side.
            let role = match side {
                Side::Server => walle_packet::Role::Server,
                Side::Client => walle_packet::Role::Client,
            };
            let protocol = self.protocol.clone().with_role(role);
            let mut builder =
                Process::builder(protocol, self.routes.clone()).options(options.clone());
            if let Some(pool) = &self.pool {
                builder = builder.pool(pool.clone());
            }
            let dispatcher = self.dispatcher.clone().unwrap_or_else(shared_inline);
            builder = builder.dispatcher(dispatcher);
            if let Some(load) = &self.load {
                builder = builder.load_limit(load.clone());
            }
            *template = Some((options, builder.template()));
        }
        template
            .as_ref()
            .map(|(_, template)| template.spawn_in(transport, session, span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use walle_codec::RawCodec;
    use walle_packet::WalleFormat;
    use walle_process::Router;

    /// A session closed first by the process (a kick) keeps that reason:
    /// the io layer's end logs and returns it, not its own.
    #[test]
    fn the_end_of_a_connection_reports_the_reason_its_session_kept() {
        let transport = Arc::new(walle_process::mem::MemTransport::new(1024));
        let process = Process::builder(Protocol::new(WalleFormat::new()), Router::new(RawCodec))
            .transport(transport)
            .build()
            .unwrap();
        process.close_with(CloseReason::Replaced);
        let kept = end(&"peer", &process, CloseReason::PeerClosed);
        assert!(matches!(kept, CloseReason::Replaced), "{kept:?}");
        assert!(matches!(
            process.session().close_reason(),
            Some(CloseReason::Replaced)
        ));
    }
}
