//! When a client redials: how many attempts, how long between them.

use std::time::Duration;

use walle_process::CloseReason;

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
    pub(super) fn may_retry(&self, failures: u32) -> bool {
        self.attempts < 0 || i64::from(failures) <= i64::from(self.attempts)
    }

    /// Whether a disconnect for `reason` is followed by a redial. Today
    /// it is as configured (`attempts` not 0), whatever the reason: a
    /// client keeps the policy it was given.
    ///
    /// The reasons a client sees, and what they could change later:
    /// - `PeerClosed`, `Io`, `Silent`, `DeadLink`: the server went away or
    ///   the link broke. Redialling is the point; these keep the policy.
    /// - `Malformed`: the server sent what this side's protocol refuses
    ///   (another format, another framing). A redial meets the same
    ///   server: a candidate for giving up, or for the longest wait.
    /// - `Refused`: a dispatch hook on this side stopped a pushed frame;
    ///   as for `Malformed`, a fresh connection may not help.
    /// - `Panicked`: code run for a frame panicked; a fresh connection is
    ///   the remedy, so the policy stays.
    /// - `Stopped`: the client's own io is stopping; a redial could not
    ///   run anyway.
    /// - `Local`: this side closed the connection. After `Client::close`
    ///   or the last handle dropped the client is closed already and does
    ///   not redial; a close of the connection's own process
    ///   (`close()` on the process of `client.process()`) redials as
    ///   configured, like any end.
    /// - `Replaced`: only a server sees it (a newer session of the same
    ///   user); the wire does not carry it, so the client sees
    ///   `PeerClosed`. Were it carried one day, a redial would take the
    ///   binding back from the newer session: no redial.
    pub(crate) fn redials_after(&self, _reason: &CloseReason) -> bool {
        self.attempts != 0
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

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(100);

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
