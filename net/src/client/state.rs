//! The client's state machine, free of io: events in, the phase and what
//! to do next out. [`Inner::apply`](super::Inner) is the one place that
//! feeds it; the driver task and the callers only read it.

use std::hash::{BuildHasher, RandomState};
use std::io;
use std::time::{Duration, Instant};

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
    /// Connection `epoch` closed.
    Disconnected { epoch: u64 },
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

/// When to redial.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// Redials after a failed dial: 0 never, N up to N in a row,
    /// negative forever. After a disconnect, at least one.
    pub(crate) attempts: i32,
    /// The first wait.
    pub(crate) base: Duration,
    /// The longest wait.
    pub(crate) cap: Duration,
}

impl Policy {
    fn may_retry(&self, failures: u32) -> bool {
        self.attempts < 0 || i64::from(failures) <= i64::from(self.attempts)
    }

    /// The wait before redial number `n` (1 for the first): the base
    /// doubled per earlier failure, capped, then jittered into its upper
    /// half so that clients that lost one server do not redial in step.
    pub(crate) fn delay(&self, n: u32, random: u64) -> Duration {
        let doubled = self
            .base
            .saturating_mul(1u32 << n.saturating_sub(1).min(20));
        let full = doubled.min(self.cap.max(self.base));
        let half = full / 2;
        let spread = u64::try_from((full - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(random % spread.saturating_add(1))
    }
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
            (Event::Disconnected { epoch }, Phase::Connected { epoch: e, .. }) if epoch == *e => {
                if self.policy.attempts == 0 {
                    self.phase = Phase::Idle;
                } else {
                    self.failures = 0;
                    self.backoff(1, now);
                }
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
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(100);

    fn machine(attempts: i32) -> Machine<&'static str> {
        Machine::new(Policy {
            attempts,
            base: BASE,
            cap: Duration::from_secs(1),
        })
    }

    fn epoch(m: &Machine<&'static str>) -> u64 {
        match m.phase {
            Phase::Connecting { epoch } | Phase::Connected { epoch, .. } => epoch,
            _ => panic!("not dialling or connected: {:?}", m.state()),
        }
    }

    fn refused() -> io::Error {
        io::Error::from(io::ErrorKind::ConnectionRefused)
    }

    fn attached(
        m: &mut Machine<&'static str>,
        epoch: u64,
        conn: &'static str,
        now: Instant,
    ) -> Effect<&'static str> {
        m.handle(Event::Attached { epoch, conn }, now)
    }

    /// The current dial fails with "connection refused".
    fn failed(m: &mut Machine<&'static str>, now: Instant) -> Effect<&'static str> {
        let epoch = epoch(m);
        m.handle(
            Event::Failed {
                epoch,
                error: refused(),
            },
            now,
        )
    }

    /// Moves a backoff on to its dial.
    fn after_backoff(m: &mut Machine<&'static str>, now: Instant) -> Instant {
        let Action::Sleep(until) = m.poll_action(now) else {
            panic!("not backing off: {:?}", m.state());
        };
        m.handle(Event::Tick, until);
        until
    }

    #[test]
    fn want_dials_once() {
        let now = Instant::now();
        let mut m = machine(0);
        assert_eq!(m.poll_action(now), Action::Wait);
        m.handle(Event::Want, now);
        let first = epoch(&m);
        m.handle(Event::Want, now);
        assert_eq!(m.poll_action(now), Action::Dial { epoch: first });
        attached(&mut m, first, "a", now);
        m.handle(Event::Want, now);
        assert_eq!(m.state(), ClientState::Connected);
        assert_eq!(m.connection(), Some(&"a"));
    }

    #[test]
    fn a_stale_disconnect_is_ignored() {
        let now = Instant::now();
        let mut m = machine(-1);
        m.handle(Event::Want, now);
        let old = epoch(&m);
        attached(&mut m, old, "old", now);
        m.handle(Event::Disconnected { epoch: old }, now);
        assert_eq!(m.state(), ClientState::Backoff);
        let now = after_backoff(&mut m, now);
        let new = epoch(&m);
        assert_ne!(old, new);
        attached(&mut m, new, "new", now);
        // The old connection's close arrives late, again.
        m.handle(Event::Disconnected { epoch: old }, now);
        assert_eq!(m.state(), ClientState::Connected);
        assert_eq!(m.connection(), Some(&"new"));
    }

    #[test]
    fn a_late_connection_is_closed_not_attached() {
        let now = Instant::now();
        let mut m = machine(-1);
        m.handle(Event::Want, now);
        let e = epoch(&m);
        m.handle(Event::Close, now);
        assert_eq!(m.state(), ClientState::Closed);
        let late = attached(&mut m, e, "late", now);
        assert!(matches!(late, Effect::Close("late")));
        m.handle(Event::Want, now);
        m.handle(
            Event::Failed {
                epoch: e,
                error: refused(),
            },
            now,
        );
        assert_eq!(m.state(), ClientState::Closed);
        assert_eq!(m.poll_action(now), Action::Exit);
    }

    #[test]
    fn an_older_dial_cannot_replace_a_newer_one() {
        let now = Instant::now();
        let mut m = machine(-1);
        m.handle(Event::Want, now);
        let old = epoch(&m);
        m.handle(
            Event::Failed {
                epoch: old,
                error: refused(),
            },
            now,
        );
        let now = after_backoff(&mut m, now);
        let new = epoch(&m);
        attached(&mut m, new, "new", now);
        let late = attached(&mut m, old, "old", now);
        assert!(matches!(late, Effect::Close("old")));
        assert_eq!(m.connection(), Some(&"new"));
    }

    #[test]
    fn close_hands_back_the_live_connection() {
        let now = Instant::now();
        let mut m = machine(0);
        m.handle(Event::Want, now);
        let e = epoch(&m);
        attached(&mut m, e, "a", now);
        assert!(matches!(m.handle(Event::Close, now), Effect::Close("a")));
        m.handle(Event::Disconnected { epoch: e }, now);
        m.handle(Event::Want, now);
        assert_eq!(m.state(), ClientState::Closed);
    }

    #[test]
    fn attempts_run_out_then_a_new_want_starts_over() {
        let mut now = Instant::now();
        let mut m = machine(2);
        m.handle(Event::Want, now);
        for _ in 0..2 {
            failed(&mut m, now);
            assert_eq!(m.state(), ClientState::Backoff);
            now = after_backoff(&mut m, now);
        }
        failed(&mut m, now);
        assert_eq!(m.state(), ClientState::Idle);
        assert_eq!(m.gave_up(), 1);
        assert_eq!(m.last_error().kind(), io::ErrorKind::ConnectionRefused);
        m.handle(Event::Want, now);
        assert_eq!(m.state(), ClientState::Connecting);
    }

    #[test]
    fn no_reconnect_after_a_disconnect_when_attempts_are_zero() {
        let now = Instant::now();
        let mut m = machine(0);
        m.handle(Event::Want, now);
        let e = epoch(&m);
        attached(&mut m, e, "a", now);
        m.handle(Event::Disconnected { epoch: e }, now);
        assert_eq!(m.state(), ClientState::Idle);
        assert_eq!(m.gave_up(), 0);
    }

    #[test]
    fn a_tick_before_the_backoff_ends_does_nothing() {
        let now = Instant::now();
        let mut m = machine(-1);
        m.handle(Event::Want, now);
        failed(&mut m, now);
        m.handle(Event::Tick, now);
        assert_eq!(m.state(), ClientState::Backoff);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let policy = Policy {
            attempts: -1,
            base: BASE,
            cap: Duration::from_secs(1),
        };
        for (n, full) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
        ] {
            let full = Duration::from_millis(full);
            for random in [0, 1, 12_345_678_901, u64::MAX] {
                let d = policy.delay(n, random);
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {n}: {d:?} outside {full:?}"
                );
            }
        }
        assert_eq!(policy.delay(1, 0), BASE / 2);
        // A cap below the base means the base.
        let tight = Policy {
            cap: Duration::ZERO,
            ..policy
        };
        assert!(tight.delay(9, u64::MAX) <= BASE);
    }
}
