//! The side of a loop connection that other threads see: its outbound
//! queue, its flags, and the [`Transport`] its process writes through.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use walle_packet::{FrameMode, PacketError};
use walle_process::{Error, Transport};

use super::{Cmd, Key, LoopHandle, Op};
use crate::conn::lower_deadline;
use crate::outbound::Outbound;

/// State of one connection shared with the threads that send on it.
///
/// A session of a source with many (a kcp session of a UDP endpoint)
/// carries its id too, as the `sub` of its commands; a connection that is
/// its own source sends 0.
pub(crate) struct ConnShared {
    key: Key,
    sub: u64,
    reactor: LoopHandle,
    out: Mutex<Outbound>,
    pub(super) closed: AtomicBool,
    pub(super) flush_queued: AtomicBool,
    /// Earliest call deadline handed to the reactor, in nanoseconds since
    /// its epoch; `u64::MAX` for none.
    armed: AtomicU64,
    limit: usize,
}

impl ConnShared {
    /// The shared state of the connection at `key` on `reactor`, whose
    /// queue takes up to `limit` bytes of frames delimited as `mode` says.
    pub(crate) fn new(key: Key, reactor: LoopHandle, limit: usize, mode: FrameMode) -> Self {
        Self::of_session(key, 0, reactor, limit, mode)
    }

    /// The shared state of session `sub` of the source at `key`.
    pub(crate) fn of_session(
        key: Key,
        sub: u64,
        reactor: LoopHandle,
        limit: usize,
        mode: FrameMode,
    ) -> Self {
        ConnShared {
            key,
            sub,
            reactor,
            out: Mutex::new(Outbound::new(mode)),
            closed: AtomicBool::new(false),
            flush_queued: AtomicBool::new(false),
            armed: AtomicU64::new(u64::MAX),
            limit: limit.max(1),
        }
    }

    pub(super) fn out(&self) -> MutexGuard<'_, Outbound> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, op: Op) {
        self.reactor.send(Cmd::Source {
            key: self.key,
            sub: self.sub,
            op,
        });
    }

    fn schedule_flush(&self) {
        // Most sends find a flush already queued: a load spares them the
        // read-modify-write.
        if !self.flush_queued.load(Ordering::Acquire)
            && !self.flush_queued.swap(true, Ordering::AcqRel)
        {
            self.send(Op::Flush);
        }
    }

    /// Asks the reactor for a call timer at `deadline`, unless an earlier
    /// one is asked for already.
    pub(super) fn arm(&self, deadline: Instant) {
        if lower_deadline(&self.armed, self.reactor.0.epoch, deadline) {
            self.send(Op::Arm);
        }
    }

    /// The call deadline asked for, if any (on the reactor, for `Op::Arm`).
    pub(super) fn armed(&self) -> Option<Instant> {
        match self.armed.load(Ordering::Acquire) {
            u64::MAX => None,
            nanos => Some(self.reactor.0.epoch + Duration::from_nanos(nanos)),
        }
    }

    /// The call timer fired: a new deadline may be asked for.
    pub(super) fn disarm(&self) {
        self.armed.store(u64::MAX, Ordering::Release);
    }
}

impl ConnShared {
    /// Adds to the outbound queue under its bound, then has it flushed.
    fn enqueue(&self, add: impl FnOnce(&mut Outbound) -> Result<(), Error>) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::SessionClosed);
        }
        {
            let mut out = self.out();
            if out.queued() >= self.limit {
                return Err(Error::Overloaded("send queue full"));
            }
            add(&mut out)?;
        }
        self.schedule_flush();
        Ok(())
    }
}

/// The [`Transport`] of an event-loop connection: its shared state itself
/// (one allocation, not a wrapper around it).
impl Transport for ConnShared {
    fn send(
        &self,
        write: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), PacketError>,
    ) -> Result<(), Error> {
        self.enqueue(|out| Ok(out.encode(write)?))
    }

    fn send_frame(&self, frame: &Bytes) -> Result<(), Error> {
        self.enqueue(|out| {
            out.push_shared(frame.clone());
            Ok(())
        })
    }

    fn timer_hint(&self, deadline: Instant) {
        self.arm(deadline);
    }

    fn mode(&self) -> FrameMode {
        self.out().mode()
    }

    fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.send(Op::Close);
        }
    }
}
