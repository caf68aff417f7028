//! The pending-call table: every outgoing request waits here for its
//! response, its timeout, its cancellation or the session's close.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use walle_packet::Packet;

use crate::error::Error;
use crate::metrics::ProcessMetrics;
use crate::time::{TimerKey, TimerWheel};

/// A callback of `async_call`.
pub(crate) type Callback = Box<dyn FnOnce(Result<Packet, Error>) + Send>;

enum Call {
    /// A `call` future waiting; the waker of its last poll. No timer for
    /// a call without a timeout.
    Waiting {
        waker: Option<Waker>,
        timer: Option<TimerKey>,
    },
    /// The outcome, for the future's next poll.
    Done(Result<Packet, Error>),
    /// An `async_call` callback.
    Callback {
        callback: Callback,
        timer: Option<TimerKey>,
    },
}

/// Work to do once the table's lock is released (BEHAVIOURS 18).
pub(crate) enum Wakeup {
    Wake(Waker),
    Run(Callback, Result<Packet, Error>),
}

impl Wakeup {
    /// Delivers the outcome. A callback that panics is contained and
    /// logged: the thread firing it (a reactor, a reader task) goes on,
    /// and so do the other outcomes fired with it.
    pub(crate) fn fire(self) {
        match self {
            Wakeup::Wake(waker) => waker.wake(),
            Wakeup::Run(callback, result) => {
                let run = std::panic::AssertUnwindSafe(|| callback(result));
                if let Err(panic) = std::panic::catch_unwind(run) {
                    tracing::error!(
                        panic = crate::panic::panic_message(&*panic),
                        "a call's callback panicked"
                    );
                }
            }
        }
    }
}

/// How a pending call wants its outcome.
pub(crate) enum Waiter {
    Future,
    Callback(Callback),
}

pub(crate) struct Pending {
    next_seq: u64,
    /// The ids calls take: `first..=last`.
    first_seq: u64,
    last_seq: u64,
    /// The calls and their timers, from the first call on: a session that
    /// never calls (most of a server's) holds none.
    table: Option<Box<Table>>,
    /// The start and tick of the timer wheel, for when the table is made.
    start: Instant,
    tick: Duration,
    closed: bool,
    /// Calls settled whose future has not taken the outcome yet.
    unclaimed: usize,
}

/// Hashes a sequence id with one multiplication (Fibonacci hashing):
/// the table only ever holds ids this side chose, dense ones (a peer's
/// answer only looks one up), so SipHash's protection against chosen
/// keys buys nothing on the per-call path. The product's high bits,
/// which the table's control bytes use, depend on every bit of the id.
#[derive(Default)]
struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b) ^ self.0.rotate_left(8));
        }
    }
    fn write_u64(&mut self, seq: u64) {
        self.0 = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

struct Table {
    calls: HashMap<u64, Call, BuildHasherDefault<SeqHasher>>,
    timers: TimerWheel<u64>,
}

impl Pending {
    /// A table whose calls take the ids `first..=last` (none when
    /// `first > last`).
    pub(crate) fn new((first, last): (u64, u64), start: Instant, tick: Duration) -> Self {
        Pending {
            next_seq: last,
            first_seq: first,
            last_seq: last,
            table: None,
            start,
            tick,
            closed: false,
            unclaimed: 0,
        }
    }

    /// Registers a call due at `deadline` (`None`: no timeout); its
    /// sequence id is unique among the pending calls (BEHAVIOURS 10).
    pub(crate) fn begin(
        &mut self,
        deadline: Option<Instant>,
        waiter: Waiter,
    ) -> Result<u64, (Error, Waiter)> {
        if self.closed {
            return Err((Error::SessionClosed, waiter));
        }
        if self.last_seq == 0 {
            return Err((
                Error::NotSupported("calls need a sequence id; the format carries none"),
                waiter,
            ));
        }
        if self.first_seq > self.last_seq {
            return Err((
                Error::NotSupported("the seq range is empty: the format carries too few ids"),
                waiter,
            ));
        }
        let (start, tick) = (self.start, self.tick);
        let t = self.table.get_or_insert_with(|| {
            Box::new(Table {
                calls: HashMap::default(),
                timers: TimerWheel::new(start, tick),
            })
        });
        if t.calls.len() as u64 > self.last_seq - self.first_seq {
            return Err((Error::Overloaded("no free sequence id"), waiter));
        }
        let seq = loop {
            self.next_seq = if self.next_seq >= self.last_seq || self.next_seq < self.first_seq {
                self.first_seq
            } else {
                self.next_seq + 1
            };
            if !t.calls.contains_key(&self.next_seq) {
                break self.next_seq;
            }
        };
        let timer = deadline.map(|deadline| t.timers.insert(deadline, seq));
        let call = match waiter {
            Waiter::Future => Call::Waiting { waker: None, timer },
            Waiter::Callback(callback) => Call::Callback { callback, timer },
        };
        t.calls.insert(seq, call);
        Ok(seq)
    }

    /// True when `seq` is pending.
    pub(crate) fn contains(&self, seq: u64) -> bool {
        self.table
            .as_ref()
            .is_some_and(|t| t.calls.contains_key(&seq))
    }

    /// Settles call `seq`; its timer is released at once (BEHAVIOURS 17).
    /// `None` when no such call is pending (BEHAVIOURS 21).
    pub(crate) fn complete(
        &mut self,
        seq: u64,
        result: Result<Packet, Error>,
        metrics: &ProcessMetrics,
    ) -> Option<Option<Wakeup>> {
        let t = self.table.as_mut()?;
        let call = t.calls.get_mut(&seq)?;
        if !matches!(call, Call::Done(_)) {
            metrics.call(&result);
        }
        match call {
            Call::Done(_) => None,
            Call::Waiting { waker, timer } => {
                let (waker, timer) = (waker.take(), *timer);
                timer.map(|timer| t.timers.cancel(timer));
                *call = Call::Done(result);
                self.unclaimed += 1;
                Some(waker.map(Wakeup::Wake))
            }
            Call::Callback { timer, .. } => {
                let timer = *timer;
                timer.map(|timer| t.timers.cancel(timer));
                match t.calls.remove(&seq) {
                    Some(Call::Callback { callback, .. }) => {
                        Some(Some(Wakeup::Run(callback, result)))
                    }
                    _ => Some(None),
                }
            }
        }
    }

    /// Fails every call due at or before `now` with a timeout
    /// (BEHAVIOURS 13).
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Vec<Wakeup>, metrics: &ProcessMetrics) {
        let Some(t) = self.table.as_mut() else {
            return;
        };
        let mut due = Vec::new();
        t.timers.expire(now, |seq| due.push(seq));
        for seq in due {
            if let Some(Some(wakeup)) = self.complete_expired(seq, metrics) {
                out.push(wakeup);
            }
        }
    }

    fn complete_expired(&mut self, seq: u64, metrics: &ProcessMetrics) -> Option<Option<Wakeup>> {
        // The timer has already fired: settle without cancelling it.
        let t = self.table.as_mut()?;
        let call = t.calls.remove(&seq)?;
        if !matches!(call, Call::Done(_)) {
            metrics.call(&Err(Error::Timeout));
        }
        match call {
            Call::Waiting { waker, .. } => {
                t.calls.insert(seq, Call::Done(Err(Error::Timeout)));
                self.unclaimed += 1;
                Some(waker.map(Wakeup::Wake))
            }
            Call::Callback { callback, .. } => {
                Some(Some(Wakeup::Run(callback, Err(Error::Timeout))))
            }
            done @ Call::Done(_) => {
                t.calls.insert(seq, done);
                Some(None)
            }
        }
    }

    /// Fails every call with `SessionClosed` and refuses new ones
    /// (BEHAVIOURS 15, 31).
    pub(crate) fn close(&mut self, out: &mut Vec<Wakeup>, metrics: &ProcessMetrics) {
        self.closed = true;
        let seqs: Vec<u64> = match &self.table {
            Some(t) => t.calls.keys().copied().collect(),
            None => return,
        };
        for seq in seqs {
            if let Some(Some(wakeup)) = self.complete(seq, Err(Error::SessionClosed), metrics) {
                out.push(wakeup);
            }
        }
    }

    /// The outcome of a `call` future, or `Pending` after noting its waker.
    pub(crate) fn poll(&mut self, seq: u64, waker: &Waker) -> Poll<Result<Packet, Error>> {
        let Some(t) = self.table.as_mut() else {
            return Poll::Ready(Err(Error::SessionClosed));
        };
        match t.calls.get_mut(&seq) {
            Some(Call::Waiting { waker: slot, .. }) => {
                if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    *slot = Some(waker.clone());
                }
                Poll::Pending
            }
            Some(Call::Done(_)) => match t.calls.remove(&seq) {
                Some(Call::Done(result)) => {
                    self.unclaimed = self.unclaimed.saturating_sub(1);
                    Poll::Ready(result)
                }
                _ => Poll::Ready(Err(Error::SessionClosed)),
            },
            Some(Call::Callback { .. }) | None => Poll::Ready(Err(Error::SessionClosed)),
        }
    }

    /// Forgets call `seq` (its future was dropped, or its write failed:
    /// BEHAVIOURS 14, 16). Returns its callback, if it had one.
    pub(crate) fn cancel(&mut self, seq: u64) -> Option<Callback> {
        let t = self.table.as_mut()?;
        match t.calls.remove(&seq)? {
            Call::Waiting { timer, .. } => {
                timer.map(|timer| t.timers.cancel(timer));
                None
            }
            Call::Callback { callback, timer } => {
                timer.map(|timer| t.timers.cancel(timer));
                Some(callback)
            }
            Call::Done(_) => {
                self.unclaimed = self.unclaimed.saturating_sub(1);
                None
            }
        }
    }

    /// Calls settled (answered, timed out, closed) whose future has not
    /// taken the outcome yet: their callers are about to run.
    pub(crate) fn unclaimed(&self) -> usize {
        self.unclaimed
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.table.as_ref()?.timers.next_deadline()
    }

    /// Calls pending, and timers set.
    pub(crate) fn counts(&self) -> (usize, usize) {
        self.table
            .as_ref()
            .map_or((0, 0), |t| (t.calls.len(), t.timers.len()))
    }
}
