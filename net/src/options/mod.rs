//! Settings of servers, clients and backends; all loadable from a file
//! (durations in milliseconds unless a field says otherwise, 0 meaning
//! "off" where a line says so).

mod backend;
mod conn;
mod kcp;
mod ws;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub(crate) use backend::Driver;
pub(crate) use walle_process::serde_duration::{micros, millis};

pub use backend::{Backend, Balance, EvloopOptions, TcpOptions, TlsOptions};
pub use conn::{ConnOptions, HeartbeatMode, WriteMode};
pub use kcp::KcpOptions;
pub use ws::WsOptions;

/// `now + wait`, or a century from now where that is past what an
/// `Instant` holds: durations come from files, and a huge one means "not in
/// this process's life", never a panic.
pub(crate) fn later(now: Instant, wait: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(wait)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

/// Settings of a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Sessions at most; connection N+1 is refused. 0: no limit.
    pub max_sessions: usize,
    /// Longest a graceful stop waits for queued writes to flush.
    #[serde(with = "millis")]
    pub drain_timeout: Duration,
    /// Per-connection settings.
    pub conn: ConnOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_sessions: 0,
            drain_timeout: Duration::from_secs(5),
            conn: ConnOptions::default(),
        }
    }
}

impl ServerOptions {
    /// Sets the accept limit.
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n;
        self
    }
    /// Sets the bound of a graceful stop's flush.
    pub fn drain_timeout(mut self, d: Duration) -> Self {
        self.drain_timeout = d;
        self
    }
    /// Sets the per-connection settings.
    pub fn conn(mut self, conn: ConnOptions) -> Self {
        self.conn = conn;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options load from a file: durations in the unit the field names,
    /// missing fields at their defaults, and back to the same text.
    #[test]
    fn options_load_from_json() {
        let backend: Backend =
            serde_json::from_str(r#"{"kind":"evloop","loops":2,"busy_poll_us":0}"#).unwrap();
        let Backend::Evloop(ev) = &backend else {
            panic!("not the event loop: {backend:?}");
        };
        assert_eq!(ev.loops, 2);
        assert!(ev.busy_poll.is_zero());
        assert_eq!(ev.read_chunk, EvloopOptions::default().read_chunk);
        let again: Backend =
            serde_json::from_str(&serde_json::to_string(&backend).unwrap()).unwrap();
        assert_eq!(again, backend);

        let conn: ConnOptions = serde_json::from_str(
            r#"{"read_timeout":1500,"send_queue_frames":8,"close_flush_timeout":250}"#,
        )
        .unwrap();
        assert_eq!(conn.read_timeout, Duration::from_millis(1500));
        assert_eq!(conn.close_flush_timeout, Duration::from_millis(250));
        assert_eq!(
            serde_json::from_str::<ConnOptions>("{}")
                .unwrap()
                .close_flush_timeout,
            Duration::from_secs(5)
        );
        assert_eq!(conn.send_queue_frames, 8);
        assert_eq!(conn.write_mode, WriteMode::Async);
    }
}
