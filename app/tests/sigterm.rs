//! BEHAVIOURS 61's trigger: a real SIGTERM to this process stops an app
//! running with signals on. In a test binary of its own, so no other test
//! shares the process the signal is sent to.

mod common;

use std::time::{Duration, Instant};

use common::{Fault, Recorder, entries, new_log};
use walle_app::{App, StopReason};

const BOUND: Duration = Duration::from_secs(10);

#[tokio::test]
async fn sigterm_to_the_process_stops_an_app_with_signals_on() {
    let log = new_log();
    let app = App::builder()
        .signals(true)
        .service(Recorder::new(1, &log, Fault::None))
        .service(Recorder::new(2, &log, Fault::None))
        .build();
    let stop = app.stop_handle();
    let run = tokio::spawn(app.run());

    let deadline = Instant::now() + BOUND;
    while entries(&log).len() < 4 {
        assert!(Instant::now() < deadline, "services never started");
        tokio::task::yield_now().await;
    }
    // The handlers are installed before the first init, so they are in
    // place now.
    assert!(!stop.is_stopping());

    let me = nix::unistd::Pid::from_raw(i32::try_from(std::process::id()).expect("a pid"));
    nix::sys::signal::kill(me, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM to this process");

    let report = tokio::time::timeout(BOUND, run)
        .await
        .expect("bound")
        .expect("join")
        .expect("run");
    assert_eq!(report.stop_reason, Some(StopReason::Terminate));
    assert_eq!(
        entries(&log),
        [
            "init1", "init2", "start1", "start2", "stop2", "stop1", "finish2", "finish1"
        ]
    );
    assert!(report.is_clean());
}
