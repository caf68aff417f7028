//! Durations in option files as whole numbers, for `#[serde(with = ...)]`.
//!
//! Every walle option struct writes its durations this way, and a user's
//! own option structs can too:
//!
//! ```
//! use std::time::Duration;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct GameOptions {
//!     #[serde(with = "walle_process::serde_duration::millis")]
//!     turn: Duration,
//! }
//!
//! let options: GameOptions = serde_json::from_str(r#"{"turn":1500}"#)?;
//! assert_eq!(options.turn, Duration::from_millis(1500));
//! # Ok::<(), serde_json::Error>(())
//! ```

macro_rules! whole_units {
    ($name:ident, $unit:literal, $as:ident, $from:ident) => {
        #[doc = concat!("A `Duration` as a whole number of ", $unit, " (saturating at `u64::MAX`).")]
        pub mod $name {
            use serde::{Deserialize, Deserializer, Serializer};
            use std::time::Duration;

            #[doc = concat!("Writes `d` in ", $unit, ".")]
            pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u64(d.$as().try_into().unwrap_or(u64::MAX))
            }

            #[doc = concat!("Reads a number of ", $unit, ".")]
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
                u64::deserialize(d).map(Duration::$from)
            }
        }
    };
}

whole_units!(millis, "milliseconds", as_millis, from_millis);
whole_units!(micros, "microseconds", as_micros, from_micros);
