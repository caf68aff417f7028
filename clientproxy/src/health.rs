//! Entry health: a failed connect puts an entry aside for a backoff.
//!
//! Sans-io: the caller passes the time and a random number in, so tests
//! drive it with a fake clock and fixed jitter.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use walle_process::serde_duration::millis;

/// How long a failed entry is put aside.
///
/// After the `n`-th failed connect in a row the entry waits
/// `base * 2^(n-1)`, capped at `cap`, jittered into the upper half of that
/// (between half and all of it) so that proxies that lost the same node
/// do not come back to it in step. In JSON the durations are
/// milliseconds: `{"base":100,"cap":10000}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct HealthOptions {
    /// The wait after the first failure. Default 100 ms.
    #[serde(with = "millis")]
    pub base: Duration,
    /// The longest wait (a cap below the base means the base). Default 10 s.
    #[serde(with = "millis")]
    pub cap: Duration,
}

impl Default for HealthOptions {
    fn default() -> Self {
        HealthOptions {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(10),
        }
    }
}

impl HealthOptions {
    /// Sets the wait after the first failure.
    pub fn base(mut self, d: Duration) -> Self {
        self.base = d;
        self
    }

    /// Sets the longest wait.
    pub fn cap(mut self, d: Duration) -> Self {
        self.cap = d;
        self
    }

    /// The wait after failure number `n` in a row (1 for the first), with
    /// `random` choosing where in the upper half it falls: `0` gives the
    /// half, `u64::MAX` the whole.
    pub fn backoff(&self, n: u32, random: u64) -> Duration {
        let doubled = self
            .base
            .saturating_mul(1u32 << n.saturating_sub(1).min(31));
        let full = doubled.min(self.cap.max(self.base));
        let half = full / 2;
        let spread = u64::try_from((full - half).as_nanos()).unwrap_or(u64::MAX);
        let extra = (u128::from(random) * (u128::from(spread) + 1)) >> 64;
        half + Duration::from_nanos(u64::try_from(extra).unwrap_or(spread))
    }
}

/// The health of one entry: healthy, or put aside until a time after
/// failed connects.
///
/// ```
/// use std::time::{Duration, Instant};
/// use walle_clientproxy::{Health, HealthOptions};
///
/// let options = HealthOptions::default().base(Duration::from_millis(100));
/// let mut health = Health::new();
/// let now = Instant::now();
/// let wait = health.handle_connect_failed(now, &options, u64::MAX);
/// assert_eq!(wait, Duration::from_millis(100));
/// assert!(!health.is_healthy(now + Duration::from_millis(99)));
/// assert!(health.is_healthy(now + wait));
/// health.handle_connect_ok();
/// assert_eq!(health.failures(), 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Health {
    failures: u32,
    until: Option<Instant>,
}

impl Health {
    /// Healthy, with no failure on record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the entry may be picked at `now`: it never failed, it
    /// connected since, or its backoff is over (then one call tries it,
    /// and another failure doubles the wait).
    pub fn is_healthy(&self, now: Instant) -> bool {
        self.until.is_none_or(|until| now >= until)
    }

    /// A connect to the entry failed at `now`: it is put aside for the
    /// next backoff of `options`, jittered by `random`. Returns the wait.
    pub fn handle_connect_failed(
        &mut self,
        now: Instant,
        options: &HealthOptions,
        random: u64,
    ) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let wait = options.backoff(self.failures, random);
        self.until = Some(later(now, wait));
        wait
    }

    /// A connect to the entry succeeded: healthy, the backoff starts over.
    pub fn handle_connect_ok(&mut self) {
        *self = Health::new();
    }

    /// Failed connects in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Until when the entry is put aside, if it failed last.
    pub fn unhealthy_until(&self) -> Option<Instant> {
        self.until
    }
}

/// `now + wait`, or as far as an `Instant` reaches (a century, else now)
/// where a configured wait is past it.
fn later(now: Instant, wait: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(wait)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests;
