//! What the loop asks of a source, and what it offers one.
//!
//! A source is whatever the loop polls: a listener, a stream connection,
//! later a UDP endpoint. Its driver owns the socket and the protocol
//! state; the loop owns the poll, the timer wheel, the read buffers and
//! the source's key, and calls the driver when something happens to it.
//! The loop knows no socket type: only drivers do.
//!
//! # The seam a UDP endpoint (kcp) uses
//!
//! One source owns many sessions: a driver over one `mio::net::UdpSocket`
//! keeps a table of sessions keyed by (peer address, conv), each with its
//! own sans-io kcp state, process handler and [`Outbound`] queue.
//! - **Input**: on [`Driver::ready`] it receives datagrams into
//!   [`Ctx::scratch`] until `WouldBlock` (at most a fair share per turn,
//!   then [`Ctx::read_again`]), finds the session by (peer, conv) or
//!   attaches a new one, and feeds it; whole frames go to `deliver`.
//! - **Timers**: each session's next update (kcp's `check()`) is a timer
//!   of the driver's own kind with the session's id as `sub`
//!   ([`Ctx::set_timer`]); [`Driver::timer`] gets both back and updates
//!   that session alone.
//! - **Commands**: the sessions' transports send
//!   [`Cmd::Source`](super::Cmd::Source) with the session's id as `sub`
//!   (flush, close, a call deadline), as stream connections do with 0.
//! - **Output**: datagrams, one per kcp segment, written with
//!   `send_to(segment, peer)`; a session whose frames are messages (not a
//!   byte stream) hands them out one by one with
//!   `Outbound::write_messages`.
//! - **Ends**: a session that ends leaves the table (logged with
//!   `conn::end`, its handler told) while the source lives on; the
//!   source's own [`Driver::closed`] ends every session left.
//!
//! [`Outbound`]: crate::outbound::Outbound

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use bytes::BytesMut;
use mio::{Registry, Token};
use walle_process::{CloseReason, TimerWheel};

use super::{Key, LoopHandle};

/// Reads a driver makes per readiness event before other sources get a
/// turn; a driver that reaches it asks to [read again](Ctx::read_again).
pub(crate) const MAX_READS: usize = 16;
/// Idle read buffers a loop keeps for reuse.
const SPARE_BUFFERS: usize = 64;

/// A timer's kind, chosen by the driver that sets it and read back by it:
/// the loop only carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerKind(pub(crate) u8);

/// A timer in the loop's wheel: whose, of what kind, for which of its
/// sessions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timer {
    pub(crate) key: Key,
    pub(crate) kind: TimerKind,
    pub(crate) sub: u64,
}

/// What a readiness event says about a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ready {
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// Read until the source says `WouldBlock` or ends, even after a
    /// short read: its read side closed or failed (the peer's FIN may sit
    /// behind data, and no new edge would announce it), or it asked to
    /// read again.
    pub(crate) drain: bool,
}

impl Ready {
    /// The turn of a source that asked to read again.
    pub(crate) const AGAIN: Ready = Ready {
        readable: true,
        writable: false,
        drain: true,
    };
}

/// Work for a source, sent from any thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// Write what is queued.
    Flush,
    /// Close, after flushing what is queued until the close flush deadline.
    Close,
    /// A call deadline was set.
    Arm,
}

/// A driver's answer: `Err` ends the source for that reason; the loop
/// then removes it and calls [`Driver::closed`].
pub(crate) type Turn = Result<(), CloseReason>;

/// Makes a source's driver once the loop gave it a key ([`Ctx::key`]):
/// registers its socket, sets its first timers. `None`: refused (what it
/// holds is dropped, closing its socket).
pub(crate) type Start = Box<dyn FnOnce(&mut Ctx<'_>) -> Option<Box<dyn Driver>> + Send>;

/// One source in a loop.
pub(crate) trait Driver: Send {
    /// The source's socket is ready (or it asked to read again).
    fn ready(&mut self, cx: &mut Ctx<'_>, ready: Ready) -> Turn;
    /// A timer it set fired.
    fn timer(&mut self, cx: &mut Ctx<'_>, kind: TimerKind, sub: u64) -> Turn;
    /// Work sent to it, for its session `sub`.
    fn command(&mut self, cx: &mut Ctx<'_>, op: Op, sub: u64) -> Turn;
    /// The loop is stopping ([`Ctx::stopping`] is now set): take no new
    /// work, flush what is queued. The loop runs on until every source
    /// ended or the drain deadline passed.
    fn stop(&mut self, cx: &mut Ctx<'_>) -> Turn;
    /// The source left the loop for `reason`: deregister, give back
    /// buffers, tell the process side.
    fn closed(self: Box<Self>, cx: &mut Ctx<'_>, reason: CloseReason);
}

/// What the loop lends a driver for one call.
pub(crate) struct Ctx<'a> {
    /// The source's key.
    pub(crate) key: Key,
    /// The time of this turn.
    pub(crate) now: Instant,
    /// The loop is stopping.
    pub(crate) stopping: bool,
    /// Where the source's socket is registered, under [`Ctx::token`].
    pub(crate) registry: &'a Registry,
    /// The loop: its counters, its epoch, its inbox.
    pub(crate) handle: &'a LoopHandle,
    /// The loop's read buffer: reads land here first, and only what a
    /// partial frame leaves behind is kept by the source.
    pub(crate) scratch: &'a mut [u8],
    pub(super) wheel: &'a mut TimerWheel<Timer>,
    pub(super) spare: &'a mut Vec<BytesMut>,
    pub(super) again: &'a mut Vec<Key>,
    pub(super) added: &'a mut VecDeque<Start>,
}

impl Ctx<'_> {
    /// The poll token of the source.
    pub(crate) fn token(&self) -> Token {
        Token(self.key.token)
    }

    /// Fires [`Driver::timer`] with `kind` and `sub` at `deadline` (within
    /// the wheel's tick), unless the source is gone by then.
    pub(crate) fn set_timer(&mut self, deadline: Instant, kind: TimerKind, sub: u64) {
        let key = self.key;
        self.wheel.insert(deadline, Timer { key, kind, sub });
    }

    /// Gives the source another read turn after the other sources had
    /// theirs ([`Ready::AGAIN`]).
    pub(crate) fn read_again(&mut self) {
        self.again.push(self.key);
    }

    /// Starts another source once this call returns (a listener's new
    /// connection).
    pub(crate) fn add(&mut self, start: Start) {
        self.added.push_back(start);
    }

    /// A read buffer for a partial frame: an idle one kept for reuse, or a
    /// new empty one. Counted as held until [`Ctx::release_buffer`].
    pub(crate) fn hold_buffer(&mut self) -> BytesMut {
        let shared = &self.handle.0;
        shared.held.fetch_add(1, Relaxed);
        match self.spare.pop() {
            Some(buf) => {
                shared.spare_bytes.fetch_sub(buf.capacity(), Relaxed);
                buf
            }
            None => BytesMut::new(),
        }
    }

    /// Gives back a buffer of [`Ctx::hold_buffer`], kept for reuse (up to
    /// a bound) once emptied.
    pub(crate) fn release_buffer(&mut self, mut buf: BytesMut) {
        let shared = &self.handle.0;
        shared.held.fetch_sub(1, Relaxed);
        if self.spare.len() < SPARE_BUFFERS {
            buf.clear();
            shared.spare_bytes.fetch_add(buf.capacity(), Relaxed);
            self.spare.push(buf);
        }
    }
}
