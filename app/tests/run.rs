//! BEHAVIOURS 60: the run order, rollback on init and start failures, and
//! bounded stop and finish phases.

mod common;

use std::time::{Duration, Instant};

use common::{Fault, Recorder, entries, new_log};
use walle_app::{App, Error, Outcome, Phase, ServiceOptions, StopReason};

const BOUND: Duration = Duration::from_secs(10);

#[tokio::test]
async fn stop_handle_runs_every_phase_in_order_and_reverse() {
    let log = new_log();
    let app = App::builder()
        .signals(false)
        .service(Recorder::new(1, &log, Fault::None))
        .service(Recorder::new(2, &log, Fault::None))
        .service(Recorder::new(3, &log, Fault::None))
        .build();
    let stop = app.stop_handle();
    let run = tokio::spawn(app.run());

    // Wait (bounded) until every service has started, and check the app is
    // really waiting: nothing is stopped before the handle is used.
    let deadline = Instant::now() + BOUND;
    while entries(&log).len() < 6 {
        assert!(Instant::now() < deadline, "services never started");
        tokio::task::yield_now().await;
    }
    assert!(!run.is_finished());
    assert_eq!(
        entries(&log),
        ["init1", "init2", "init3", "start1", "start2", "start3"]
    );

    stop.stop();
    let report = tokio::time::timeout(BOUND, run)
        .await
        .expect("bound")
        .expect("join")
        .expect("run");
    let expected = [
        "init1", "init2", "init3", "start1", "start2", "start3", "stop3", "stop2", "stop1",
        "finish3", "finish2", "finish1",
    ];
    assert_eq!(entries(&log), expected);
    assert!(report.is_clean());
    assert_eq!(report.stop_reason, Some(StopReason::Handle));
    assert_eq!(
        report.sequence(),
        [
            "init svc1",
            "init svc2",
            "init svc3",
            "start svc1",
            "start svc2",
            "start svc3",
            "stop svc3",
            "stop svc2",
            "stop svc1",
            "finish svc3",
            "finish svc2",
            "finish svc1",
        ]
    );
}

#[tokio::test]
async fn third_failing_to_start_stops_second_and_first_then_finishes_all_three() {
    let log = new_log();
    let app = App::builder()
        .signals(false)
        .service(Recorder::new(1, &log, Fault::None))
        .service(Recorder::new(2, &log, Fault::None))
        .service(Recorder::new(3, &log, Fault::FailStart))
        .build();
    let err = tokio::time::timeout(BOUND, app.run())
        .await
        .expect("bound")
        .expect_err("fails");
    assert_eq!(
        entries(&log),
        [
            "init1", "init2", "init3", "start1", "start2", "start3", "stop2", "stop1", "finish3",
            "finish2", "finish1",
        ]
    );
    let Error::Start {
        service,
        source,
        report,
    } = &err
    else {
        panic!("expected a start error, got {err:?}");
    };
    assert_eq!(service, "svc3");
    assert_eq!(source.to_string(), "port taken");
    assert!(err.to_string().contains("svc3"), "{err}");
    assert_eq!(report.stop_reason, None);
    let failed: Vec<_> = report.failures().collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].service.as_str(), failed[0].phase),
        ("svc3", Phase::Start)
    );
    assert_eq!(report.phases.len(), 11);
}

#[tokio::test]
async fn second_failing_to_init_finishes_the_first_only() {
    let log = new_log();
    let app = App::builder()
        .signals(false)
        .service(Recorder::new(1, &log, Fault::None))
        .service(Recorder::new(2, &log, Fault::FailInit))
        .service(Recorder::new(3, &log, Fault::None))
        .build();
    let err = tokio::time::timeout(BOUND, app.run())
        .await
        .expect("bound")
        .expect_err("fails");
    assert_eq!(entries(&log), ["init1", "init2", "finish1"]);
    match &err {
        Error::Init {
            service, report, ..
        } => {
            assert_eq!(service, "svc2");
            assert_eq!(report.sequence(), ["init svc1", "init svc2", "finish svc1"]);
        }
        other => panic!("expected an init error, got {other:?}"),
    }
    assert!(err.to_string().contains("svc2"), "{err}");
}

#[tokio::test]
async fn a_hanging_stop_is_cut_at_its_bound_and_the_others_still_stop_and_finish() {
    let log = new_log();
    let short = ServiceOptions::default().stop_timeout(Duration::from_millis(200));
    let app = App::builder()
        .signals(false)
        .service(Recorder::new(1, &log, Fault::None))
        .service_with(Recorder::new(2, &log, Fault::HangStop), short)
        .service(Recorder::new(3, &log, Fault::FailStop))
        .build();
    app.stop_handle().stop(); // asked before the run: kept until the wait
    let began = Instant::now();
    let report = tokio::time::timeout(BOUND, app.run())
        .await
        .expect("bound")
        .expect("run");
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(200),
        "the hang was not waited for: {took:?}"
    );
    assert_eq!(
        entries(&log),
        [
            "init1", "init2", "init3", "start1", "start2", "start3", "stop3", "stop2", "stop1",
            "finish3", "finish2", "finish1",
        ]
    );
    assert!(!report.is_clean());
    let failed: Vec<_> = report
        .failures()
        .map(|p| (p.service.as_str(), p.phase, p.outcome.clone()))
        .collect();
    assert_eq!(
        failed,
        [
            (
                "svc3",
                Phase::Stop,
                Outcome::Failed("stop went wrong".into())
            ),
            (
                "svc2",
                Phase::Stop,
                Outcome::TimedOut(Duration::from_millis(200))
            ),
        ]
    );
}

#[tokio::test]
async fn a_stop_asked_during_start_takes_effect_after_every_service_started() {
    let log = new_log();
    let app = App::builder()
        .signals(false)
        .service(Recorder::new(1, &log, Fault::None))
        .service(Recorder::new(2, &log, Fault::None))
        .build();
    let stop = app.stop_handle();
    assert!(!stop.is_stopping());
    let waiter = {
        let stop = stop.clone();
        tokio::spawn(async move { stop.stopped().await })
    };
    stop.stop();
    stop.stop(); // a second ask changes nothing
    assert!(stop.is_stopping());
    let report = tokio::time::timeout(BOUND, app.run())
        .await
        .expect("bound")
        .expect("run");
    assert_eq!(report.sequence().len(), 8);
    assert_eq!(
        tokio::time::timeout(BOUND, waiter)
            .await
            .expect("bound")
            .expect("join"),
        StopReason::Handle
    );
}
