//! The client's state machine, free of io: events in, the phase and what
//! to do next out. [`Inner::apply`](super::Inner) is the one place that
//! feeds it; the driver task and the callers only read it.
//!
//! A disconnect carries the connection's [`CloseReason`]; the machine
//! keeps the latest one. Today every reason is followed by the same
//! policy (redial as configured); [`Policy::redials_after`] says which
//! reasons could change that later.

mod policy;

pub(crate) use policy::Policy;

use std::hash::{BuildHasher, RandomState};
use std::io;
use std::time::Instant;

use walle_process::CloseReason;

use crate::options::later;

/// What a client is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientState {
    /// Not connected and not dialling: a lazy client before its first
    /// use, or one whose reconnect attempts ran out.
    Idle,
    /// A dial is under way.
    Connecting,
    /// Waiting before the next dial.
    Backoff,
    /// Connected.
    Connected,
    /// Closed for good (by `close`, or when the last handle dropped).
    Closed,
}

/// The phase, with what each holds. `P` is the connection (a process).
pub(crate) enum Phase<P> {
    Idle,
    Connecting { epoch: u64 },
    Backoff { until: Instant },
    Connected { epoch: u64, conn: P },
    Closed,
}

/// An input to the machine.
pub(crate) enum Event<P> {
    /// Someone needs a connection: dial if idle.
    Want,
    /// Dial `epoch` ended with a connection set up by the backend.
    Attached { epoch: u64, conn: P },
    /// Dial `epoch` failed (connect error, timeout, refused setup).
    Failed { epoch: u64, error: io::Error },
    /// Connection `epoch` closed, for `reason`.
    Disconnected { epoch: u64, reason: CloseReason },
    /// Time passed: a backoff may be over.
    Tick,
    /// Close for good.
    Close,
}

/// What the caller of [`Machine::handle`] must do with a connection.
pub(crate) enum Effect<P> {
    None,
    /// Close this connection: it arrived too late (a newer dial, or a
    /// close) or was replaced by a close.
    Close(P),
}

/// What the driver task does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Wait for an event.
    Wait,
    /// Run dial `epoch`.
    Dial { epoch: u64 },
    /// Sleep until then, then [`Event::Tick`].
    Sleep(Instant),
    /// The client is closed: end.
    Exit,
}

/// The state of one client.
pub(crate) struct Machine<P> {
    phase: Phase<P>,
    /// The epoch of the latest dial; each dial takes the next one.
    epoch: u64,
    /// Failed dials in a row.
    failures: u32,
    /// Rounds of dials that ran out of attempts.
    gave_up: u64,
    /// Why the latest dial failed.
    last_error: Option<(io::ErrorKind, String)>,
    /// The epoch of the latest connection attached (0: none yet).
    attached: u64,
    /// Why the latest attached connection closed.
    last_close: Option<CloseReason>,
    policy: Policy,
    rng: u64,
}

impl<P> Machine<P> {
    pub(crate) fn new(policy: Policy) -> Self {
        Machine {
            phase: Phase::Idle,
            epoch: 0,
            failures: 0,
            gave_up: 0,
            last_error: None,
            attached: 0,
            last_close: None,
            policy,
            rng: RandomState::new().hash_one(0u8) | 1,
        }
    }

    pub(crate) fn state(&self) -> ClientState {
        match self.phase {
            Phase::Idle => ClientState::Idle,
            Phase::Connecting { .. } => ClientState::Connecting,
            Phase::Backoff { .. } => ClientState::Backoff,
            Phase::Connected { .. } => ClientState::Connected,
            Phase::Closed => ClientState::Closed,
        }
    }

    pub(crate) fn phase(&self) -> &Phase<P> {
        &self.phase
    }

    /// The live connection.
    pub(crate) fn connection(&self) -> Option<&P> {
        match &self.phase {
            Phase::Connected { conn, .. } => Some(conn),
            _ => None,
        }
    }

    /// How many rounds of dials have given up so far.
    pub(crate) fn gave_up(&self) -> u64 {
        self.gave_up
    }

    /// Why the latest dial failed, as an io error.
    pub(crate) fn last_error(&self) -> io::Error {
        match &self.last_error {
            Some((kind, msg)) => io::Error::new(*kind, msg.clone()),
            None => io::Error::new(io::ErrorKind::NotConnected, "not connected"),
        }
    }

    /// Why the latest connection closed; `None` while the first is open
    /// or before it. A connection turned away as it arrived (too late)
    /// does not count.
    pub(crate) fn last_close(&self) -> Option<&CloseReason> {
        self.last_close.as_ref()
    }

    /// What the driver does next.
    pub(crate) fn poll_action(&self, now: Instant) -> Action {
        match self.phase {
            Phase::Idle | Phase::Connected { .. } => Action::Wait,
            Phase::Connecting { epoch } => Action::Dial { epoch },
            Phase::Backoff { until } if until <= now => Action::Sleep(now),
            Phase::Backoff { until } => Action::Sleep(until),
            Phase::Closed => Action::Exit,
        }
    }

    /// Applies one event.
    pub(crate) fn handle(&mut self, event: Event<P>, now: Instant) -> Effect<P> {
        match (event, &self.phase) {
            (Event::Close, _) => {
                let old = std::mem::replace(&mut self.phase, Phase::Closed);
                if let Phase::Connected { conn, .. } = old {
                    return Effect::Close(conn);
                }
            }
            (Event::Want, Phase::Idle) => {
                self.failures = 0;
                self.dial();
            }
            (Event::Attached { epoch, conn }, Phase::Connecting { epoch: e }) if epoch == *e => {
                self.failures = 0;
                self.last_error = None;
                self.attached = epoch;
                self.phase = Phase::Connected { epoch, conn };
            }
            // Too late: a close or a newer dial came first.
            (Event::Attached { conn, .. }, _) => return Effect::Close(conn),
            (Event::Failed { epoch, error }, Phase::Connecting { epoch: e }) if epoch == *e => {
                self.failures = self.failures.saturating_add(1);
                self.last_error = Some((error.kind(), error.to_string()));
                if self.policy.may_retry(self.failures) {
                    self.backoff(self.failures, now);
                } else {
                    self.gave_up += 1;
                    self.phase = Phase::Idle;
                }
            }
            (Event::Disconnected { epoch, reason }, phase) if epoch == self.attached => {
                let live = matches!(phase, Phase::Connected { epoch: e, .. } if *e == epoch);
                if live && self.policy.redials_after(&reason) {
                    self.failures = 0;
                    self.backoff(1, now);
                } else if live {
                    self.phase = Phase::Idle;
                }
                // Recorded in any phase: after a close, it says how the
                // last connection ended.
                self.last_close = Some(reason);
            }
            (Event::Tick, Phase::Backoff { until }) if *until <= now => self.dial(),
            // Stale (an older epoch) or nothing to do in this phase.
            _ => {}
        }
        Effect::None
    }

    fn dial(&mut self) {
        self.epoch += 1;
        self.phase = Phase::Connecting { epoch: self.epoch };
    }

    fn backoff(&mut self, n: u32, now: Instant) {
        // xorshift64: enough to spread redials.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let until = later(now, self.policy.delay(n, self.rng));
        self.phase = Phase::Backoff { until };
    }
}

#[cfg(test)]
mod tests;
