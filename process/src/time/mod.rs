//! Time as an input: a [`Clock`] the process asks, and a [`TimerWheel`]
//! whose expiries are driven by the caller.

mod clock;
mod wheel;

pub use clock::{Clock, ManualClock, SystemClock};
pub use wheel::{TimerKey, TimerWheel};
