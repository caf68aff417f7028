//! What processes record through the metrics facade, on two processes in
//! memory with a manual clock: requests by route and code, their
//! durations by the process's clock, calls by outcome, frame bytes. The
//! recorder is the test thread's own (`with_local_recorder`): the
//! in-memory processes run on this thread.

mod util;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use util::{Link, bytes, echo_router, poll, ready, walle};
use walle_codec::RawCodec;
use walle_process::{CallOptions, Context, Error, ProcessOptions, Router, Status};

/// Every value recorded, by metric name and labels.
#[derive(Default, Clone)]
struct Seen(Arc<Mutex<BTreeMap<String, Vec<f64>>>>);

struct Cell(Seen, String);

impl Cell {
    fn push(&self, v: f64) {
        self.0
            .0
            .lock()
            .unwrap()
            .entry(self.1.clone())
            .or_default()
            .push(v);
    }
}

impl CounterFn for Cell {
    fn increment(&self, v: u64) {
        self.push(v as f64);
    }
    fn absolute(&self, v: u64) {
        self.push(v as f64);
    }
}
impl GaugeFn for Cell {
    fn increment(&self, v: f64) {
        self.push(v);
    }
    fn decrement(&self, v: f64) {
        self.push(-v);
    }
    fn set(&self, v: f64) {
        self.push(v);
    }
}
impl HistogramFn for Cell {
    fn record(&self, v: f64) {
        self.push(v);
    }
}

fn name(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for Seen {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Cell(self.clone(), name(key))))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(Cell(self.clone(), name(key))))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Cell(self.clone(), name(key))))
    }
}

#[test]
fn requests_calls_and_bytes_are_recorded_with_the_processes_clock() {
    let seen = Seen::default();
    metrics::with_local_recorder(&seen, || {
        // The `slow` handler takes 250 ms by the link's manual clock.
        let clock: Arc<Mutex<Option<walle_process::ManualClock>>> = Arc::default();
        let slow_clock = clock.clone();
        let mut router = Router::new(RawCodec);
        router
            .route("echo", |_: &mut Context, req: Bytes| Ok(req))
            .unwrap();
        router
            .route("slow", move |_: &mut Context, req: Bytes| {
                if let Some(clock) = &*slow_clock.lock().unwrap() {
                    clock.advance(Duration::from_millis(250));
                }
                Ok(req)
            })
            .unwrap();
        router
            .route("refuse", |_: &mut Context, _: Bytes| -> Result<Bytes, _> {
                Err(Status::new(1234, "no").into())
            })
            .unwrap();
        let mut link = Link::with(
            walle(),
            Router::new(RawCodec),
            router,
            |b| b,
            |b| b.options(ProcessOptions::default().request_durations(true)),
        );
        *clock.lock().unwrap() = Some(link.clock.clone());

        let mut slow = Box::pin(
            link.client
                .call::<Bytes, Bytes>("slow", &Bytes::from_static(b"z")),
        );
        let _ = poll(&mut slow);
        link.pump();
        assert!(matches!(poll(&mut slow), std::task::Poll::Ready(Ok(_))));
        for _ in 0..2 {
            let mut call = Box::pin(
                link.client
                    .call::<Bytes, Bytes>("echo", &Bytes::from_static(b"hi")),
            );
            let _ = poll(&mut call);
            link.pump();
            assert!(
                matches!(poll(&mut call), std::task::Poll::Ready(Ok(ref b)) if &b[..] == b"hi")
            );
        }
        let mut refused = Box::pin(link.client.call::<Bytes, Bytes>("refuse", &Bytes::new()));
        let _ = poll(&mut refused);
        link.pump();
        assert!(matches!(
            poll(&mut refused),
            std::task::Poll::Ready(Err(Error::Remote { .. }))
        ));
        let mut timed_out = Box::pin(link.client.call_with::<Bytes, Bytes>(
            "nowhere-fast",
            &Bytes::new(),
            CallOptions {
                timeout: Some(Duration::from_millis(100)),
                metadata: None,
            },
        ));
        let _ = poll(&mut timed_out);
        link.advance(Duration::from_millis(150));
        assert!(matches!(
            poll(&mut timed_out),
            std::task::Poll::Ready(Err(Error::Timeout))
        ));
    });
    let seen = seen.0.lock().unwrap();
    let count = |key: &str| seen.get(key).map_or(0.0, |v| v.iter().sum::<f64>());
    assert_eq!(
        count("walle_requests_total{route=echo,code=0}"),
        2.0,
        "{seen:?}"
    );
    assert_eq!(
        count("walle_requests_total{route=refuse,code=1234}"),
        1.0,
        "{seen:?}"
    );
    // Durations come from the process's clock: exact under a manual one.
    assert_eq!(
        seen["walle_request_duration_seconds{route=slow}"],
        vec![0.25]
    );
    assert_eq!(
        seen["walle_request_duration_seconds{route=echo}"],
        vec![0.0, 0.0]
    );
    assert_eq!(count("walle_calls_total{outcome=ok}"), 3.0, "{seen:?}");
    assert_eq!(count("walle_calls_total{outcome=error}"), 1.0, "{seen:?}");
    assert_eq!(count("walle_calls_total{outcome=timeout}"), 1.0, "{seen:?}");
    assert!(
        count("walle_frame_bytes_out_total{}") > 0.0 && count("walle_frame_bytes_in_total{}") > 0.0,
        "{seen:?}"
    );
}

#[test]
fn requests_are_counted_but_not_timed_by_default() {
    let seen = Seen::default();
    metrics::with_local_recorder(&seen, || {
        let mut link = Link::new(walle(), echo_router());
        let mut call = Box::pin(link.client.call::<Bytes, Bytes>("echo", &bytes("hi")));
        let _ = poll(&mut call);
        link.pump();
        assert_eq!(ready(&mut call).expect("answered"), bytes("hi"));
    });
    let seen = seen.0.lock().unwrap();
    assert_eq!(
        seen.get("walle_requests_total{route=echo,code=0}"),
        Some(&vec![1.0]),
        "{seen:?}"
    );
    assert!(
        seen.get("walle_request_duration_seconds{route=echo}")
            .is_none_or(Vec::is_empty),
        "no clock is read for durations unless asked: {seen:?}"
    );
}
