//! What processes record through the `metrics` facade. Handles are
//! registered once (per template, per route) and then only incremented:
//! recording allocates nothing and takes no lock of walle's. Install the
//! recorder (a Prometheus exporter, say) before building servers and
//! clients: handles registered before it stay no-ops.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `walle_requests_total` | counter | `route`, `code` (0 for success) |
//! | `walle_request_duration_seconds` | histogram | `route` (with `ProcessOptions::request_durations`) |
//! | `walle_calls_total` | counter | `outcome`: ok, error, timeout, closed |
//! | `walle_frame_bytes_in_total`, `walle_frame_bytes_out_total` | counter | |
//! | `walle_queue_full_total` | counter | |

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Histogram, counter, histogram};
use walle_codec::Code;
use walle_packet::Packet;

use crate::Error;

/// The handles of one template (a server's or a client's processes).
pub(crate) struct ProcessMetrics {
    calls_ok: Counter,
    calls_error: Counter,
    calls_timeout: Counter,
    calls_closed: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    queue_full: Counter,
}

impl ProcessMetrics {
    pub(crate) fn new() -> Self {
        ProcessMetrics {
            calls_ok: counter!("walle_calls_total", "outcome" => "ok"),
            calls_error: counter!("walle_calls_total", "outcome" => "error"),
            calls_timeout: counter!("walle_calls_total", "outcome" => "timeout"),
            calls_closed: counter!("walle_calls_total", "outcome" => "closed"),
            bytes_in: counter!("walle_frame_bytes_in_total"),
            bytes_out: counter!("walle_frame_bytes_out_total"),
            queue_full: counter!("walle_queue_full_total"),
        }
    }

    /// A call settled with `result` (a response packet, which may carry
    /// an error, or the reason it never got one).
    pub(crate) fn call(&self, result: &Result<Packet, Error>) {
        match result {
            Ok(packet) if packet.is_error() => self.calls_error.increment(1),
            Ok(_) => self.calls_ok.increment(1),
            Err(Error::Timeout) => self.calls_timeout.increment(1),
            Err(Error::SessionClosed) => self.calls_closed.increment(1),
            Err(_) => self.calls_error.increment(1),
        }
    }

    pub(crate) fn frame_in(&self, bytes: usize) {
        self.bytes_in.increment(bytes as u64);
    }

    /// A write to the transport: `bytes` went out, or it was refused.
    pub(crate) fn frame_out(&self, bytes: usize, result: &Result<(), Error>) {
        match result {
            Ok(()) => self.bytes_out.increment(bytes as u64),
            Err(Error::Overloaded(_)) => self.queue_full.increment(1),
            Err(_) => {}
        }
    }
}

/// The handles of one route, registered at its first request.
pub(crate) struct RouteMetrics {
    label: String,
    ok: Counter,
    duration: Histogram,
}

/// Registered on a route entry the first time it answers.
pub(crate) type RouteSlot = OnceLock<RouteMetrics>;

impl RouteMetrics {
    fn new(label: &str) -> Self {
        RouteMetrics {
            label: label.to_owned(),
            ok: counter!("walle_requests_total", "route" => label.to_owned(), "code" => "0"),
            duration: histogram!("walle_request_duration_seconds", "route" => label.to_owned()),
        }
    }

    /// A request of this route answered with `code`, `took` after it came
    /// in (if the process times requests).
    pub(crate) fn answered(slot: &RouteSlot, label: &str, code: Code, took: Option<Duration>) {
        let route = slot.get_or_init(|| RouteMetrics::new(label));
        if let Some(took) = took {
            route.duration.record(took.as_secs_f64());
        }
        if code == Code::OK {
            route.ok.increment(1);
        } else {
            // Errors are off the allocation-free path: their handle is
            // looked up by code each time.
            counter!("walle_requests_total", "route" => route.label.clone(), "code" => code.0.to_string())
                .increment(1);
        }
    }
}

/// Sets the gauges of `pool`'s counters, labelled `pool = name`:
/// `walle_pool_allocated`, `walle_pool_reused`, `walle_pool_oversize`,
/// `walle_pool_discarded`, `walle_pool_outstanding` and
/// `walle_pool_retained_bytes`. A pool's counters are read on demand, so
/// call this where the metrics are gathered (every few seconds, or before
/// each scrape).
pub fn record_pool_metrics(name: &'static str, pool: &dyn walle_mempool::Pool) {
    let stats = pool.stats();
    for (metric, value) in [
        ("walle_pool_allocated", stats.allocated),
        ("walle_pool_reused", stats.reused),
        ("walle_pool_oversize", stats.oversize),
        ("walle_pool_discarded", stats.discarded),
        ("walle_pool_outstanding", stats.outstanding),
        ("walle_pool_retained_bytes", stats.retained_bytes),
    ] {
        metrics::gauge!(metric, "pool" => name).set(value as f64);
    }
}

/// A request that matched no route, answered with `code`.
pub(crate) fn unrouted(code: Code) {
    counter!("walle_requests_total", "route" => "", "code" => code.0.to_string()).increment(1);
}
