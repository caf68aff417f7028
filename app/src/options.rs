//! The settings of an [`App`](crate::App) and of each of its services.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use walle_process::serde_duration::millis;

/// The bounds of one service's `stop` and `finish`. In JSON the durations
/// are milliseconds: `{"stop_timeout":2000,"finish_timeout":500}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ServiceOptions {
    /// How long `stop` may take before it is cut. Default 10 s.
    #[serde(with = "millis")]
    pub stop_timeout: Duration,
    /// How long `finish` may take before it is cut. Default 5 s.
    #[serde(with = "millis")]
    pub finish_timeout: Duration,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            stop_timeout: Duration::from_secs(10),
            finish_timeout: Duration::from_secs(5),
        }
    }
}

impl ServiceOptions {
    /// Sets the bound of `stop`.
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }
    /// Sets the bound of `finish`.
    pub fn finish_timeout(mut self, timeout: Duration) -> Self {
        self.finish_timeout = timeout;
        self
    }
}

/// The settings of an [`App`](crate::App):
/// `{"signals":false,"service":{"stop_timeout":2000}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct AppOptions {
    /// Whether SIGINT and SIGTERM stop the app (default `true`). When on,
    /// the second signal of a run ends the process at once with
    /// [`force_exit_code`](Self::force_exit_code) (a first one after a
    /// programmatic stop only says the stop is under way). Off, only a
    /// [`StopHandle`](crate::StopHandle) stops it (tests run this way).
    pub signals: bool,
    /// The exit code of a forced exit. Default 130.
    pub force_exit_code: i32,
    /// The bounds of the services added without their own.
    pub service: ServiceOptions,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            signals: true,
            force_exit_code: 130,
            service: ServiceOptions::default(),
        }
    }
}

impl AppOptions {
    /// Turns signal handling on or off.
    pub fn signals(mut self, on: bool) -> Self {
        self.signals = on;
        self
    }
    /// Sets the exit code of a forced exit.
    pub fn force_exit_code(mut self, code: i32) -> Self {
        self.force_exit_code = code;
        self
    }
    /// Sets the bounds of the services added without their own.
    pub fn service(mut self, service: ServiceOptions) -> Self {
        self.service = service;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_load_from_json_with_milliseconds_and_defaults() {
        let options: AppOptions =
            serde_json::from_str(r#"{"signals":false,"service":{"stop_timeout":2000}}"#)
                .expect("json");
        assert!(!options.signals);
        assert_eq!(options.force_exit_code, 130);
        assert_eq!(options.service.stop_timeout, Duration::from_secs(2));
        assert_eq!(options.service.finish_timeout, Duration::from_secs(5));
        let back = serde_json::to_string(&options).expect("to json");
        assert_eq!(
            serde_json::from_str::<AppOptions>(&back).expect("again"),
            options
        );
    }
}
