//! The zero-allocation request path with a metrics recorder installed:
//! walle records requests by route and code, their durations, frame bytes
//! and connections by incrementing handles registered beforehand, so the
//! path of a prost message with `Bytes` fields stays free of allocations.
//! The recorder here keeps every metric in fixed atomics, so each
//! allocation counted would be walle's own.
//!
//! (`alloc_prometheus.rs` measures the same path with the Prometheus
//! exporter's recorder, whose histogram storage allocates as it fills.)

mod counting;
mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use counting::*;
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use walle_net::Backend;

#[global_allocator]
static ALLOC: Counting = Counting;

/// How many times each kind of metric was touched.
#[derive(Default)]
struct Touches(AtomicU64);

impl CounterFn for Touches {
    fn increment(&self, _: u64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn absolute(&self, _: u64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl GaugeFn for Touches {
    fn increment(&self, _: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn decrement(&self, _: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn set(&self, _: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl HistogramFn for Touches {
    fn record(&self, _: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// One fixed cell per kind; requests get a cell of their own so that the
/// test sees them recorded.
#[derive(Default)]
struct Fixed {
    requests: Arc<Touches>,
    counters: Arc<Touches>,
    gauges: Arc<Touches>,
    histograms: Arc<Touches>,
}

impl Recorder for Fixed {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        match key.name() {
            "walle_requests_total" => Counter::from_arc(self.requests.clone()),
            _ => Counter::from_arc(self.counters.clone()),
        }
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.gauges.clone())
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.histograms.clone())
    }
}

#[test]
fn prost_bytes_fields_allocate_nothing_with_metrics_on() {
    let fixed = Fixed::default();
    let (requests, histograms) = (fixed.requests.clone(), fixed.histograms.clone());
    metrics::set_global_recorder(fixed).expect("the only recorder of this test process");
    for backend in [Backend::evloop(), Backend::tcp()] {
        let before = requests.0.load(Ordering::Relaxed);
        let per_request = blob_allocations(&backend, "prost, Bytes fields, metrics on");
        assert!(
            per_request < 0.01,
            "{}: prost with Bytes fields, metrics on: {per_request}",
            backend.name()
        );
        let recorded = requests.0.load(Ordering::Relaxed) - before;
        assert!(
            recorded >= 12_000,
            "{}: {recorded} requests recorded",
            backend.name()
        );
    }
    assert!(
        histograms.0.load(Ordering::Relaxed) >= 24_000,
        "durations not recorded"
    );
}
