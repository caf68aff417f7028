//! Settings of a process, loadable from a file, and of one call.

use std::time::Duration;

use crate::serde_duration::millis;
use serde::{Deserialize, Serialize};
use walle_packet::Metadata;

/// Settings of a process. Loadable from a file (durations in
/// milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ProcessOptions {
    /// Timeout of calls that set none (`Duration::MAX`: none). Default 5 s.
    #[serde(with = "millis")]
    pub call_timeout: Duration,
    /// Resolution of call timeouts. Default 1 ms.
    #[serde(with = "millis")]
    pub timer_tick: Duration,
    /// Size of the pooled buffer a payload is first encoded into (it grows
    /// when needed). Default 1 KiB.
    pub encode_buffer: usize,
    /// Answer each heartbeat the peer sends with one (the "echo the
    /// client" heartbeat mode). Formats without heartbeats ignore it.
    pub echo_heartbeat: bool,
    /// Which sequence ids this side's calls use. Default: all of them.
    /// On a `due` connection, whose packets do not say request or
    /// response, give one side [`SeqRange::Lower`] and the other
    /// [`SeqRange::Upper`], so that a peer's request never carries the seq
    /// of one of our pending calls and is never taken for its answer.
    pub seq_range: SeqRange,
    /// Time each request, for the `walle_request_duration_seconds`
    /// histogram: two reads of the process's clock per request, which on
    /// a small echo cost about a twentieth of the server's CPU. Default
    /// off: requests are still counted by route and code. `walle serve`
    /// turns it on with its `[metrics]` listener.
    pub request_durations: bool,
}

/// Options of one call.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallOptions<'a> {
    /// Timeout; the process's default when `None`. A timeout the clock
    /// cannot add to now (`Duration::MAX`) means no timeout: the call ends
    /// with its response, a cancel or the session's close.
    pub timeout: Option<Duration>,
    /// Metadata sent with the request.
    pub metadata: Option<&'a Metadata>,
}

/// The sequence ids a process's own calls take, out of the `1..=max` the
/// packet format carries.
///
/// Formats that mark responses (`walle`, `walle-proto`) need no split. The
/// `due` format does not: a packet whose seq matches a pending call is
/// taken as that call's answer, so a peer's *request* that happens to
/// carry the seq of one of our pending calls would be taken as its answer
/// (and the request lost). Splitting the range between the two sides
/// (client `Lower`, server `Upper`, or the reverse) makes that impossible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SeqRange {
    /// `1..=max`.
    #[default]
    All,
    /// `1..=max / 2`.
    Lower,
    /// `max / 2 + 1..=max`.
    Upper,
}

impl SeqRange {
    /// The first and last id of the range within `1..=max`; empty (first
    /// above last) when the format carries too few ids to split.
    pub fn bounds(self, max: u64) -> (u64, u64) {
        match self {
            SeqRange::All => (1, max),
            SeqRange::Lower => (1, max / 2),
            SeqRange::Upper => (max / 2 + 1, max),
        }
    }
}

impl Default for ProcessOptions {
    fn default() -> Self {
        ProcessOptions {
            call_timeout: Duration::from_secs(5),
            timer_tick: Duration::from_millis(1),
            encode_buffer: 1024,
            echo_heartbeat: false,
            seq_range: SeqRange::All,
            request_durations: false,
        }
    }
}

impl ProcessOptions {
    /// Sets the default call timeout.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }
    /// Sets the resolution of call timeouts.
    pub fn timer_tick(mut self, tick: Duration) -> Self {
        self.timer_tick = tick;
        self
    }
    /// Sets the initial size of payload encoding buffers.
    pub fn encode_buffer(mut self, bytes: usize) -> Self {
        self.encode_buffer = bytes;
        self
    }
    /// Answers heartbeats with heartbeats.
    pub fn echo_heartbeat(mut self, echo: bool) -> Self {
        self.echo_heartbeat = echo;
        self
    }
    /// Sets the sequence ids this side's calls use.
    pub fn seq_range(mut self, range: SeqRange) -> Self {
        self.seq_range = range;
        self
    }
    /// Times each request for the duration histogram (off by default).
    pub fn request_durations(mut self, on: bool) -> Self {
        self.request_durations = on;
        self
    }
}
