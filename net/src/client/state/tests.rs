use std::time::Duration;

use super::*;

const BASE: Duration = Duration::from_millis(100);

fn machine(attempts: i32) -> Machine<&'static str> {
    Machine::new(Policy {
        attempts,
        base: BASE,
        cap: Duration::from_secs(1),
    })
}

fn epoch(m: &Machine<&'static str>) -> u64 {
    match m.phase {
        Phase::Connecting { epoch } | Phase::Connected { epoch, .. } => epoch,
        _ => panic!("not dialling or connected: {:?}", m.state()),
    }
}

fn refused() -> io::Error {
    io::Error::from(io::ErrorKind::ConnectionRefused)
}

fn attached(
    m: &mut Machine<&'static str>,
    epoch: u64,
    conn: &'static str,
    now: Instant,
) -> Effect<&'static str> {
    m.handle(Event::Attached { epoch, conn }, now)
}

/// The current dial fails with "connection refused".
fn failed(m: &mut Machine<&'static str>, now: Instant) -> Effect<&'static str> {
    let epoch = epoch(m);
    m.handle(
        Event::Failed {
            epoch,
            error: refused(),
        },
        now,
    )
}

/// Connection `epoch` closes for `reason`.
fn disconnected(
    m: &mut Machine<&'static str>,
    epoch: u64,
    reason: CloseReason,
    now: Instant,
) -> Effect<&'static str> {
    m.handle(Event::Disconnected { epoch, reason }, now)
}

/// Moves a backoff on to its dial.
fn after_backoff(m: &mut Machine<&'static str>, now: Instant) -> Instant {
    let Action::Sleep(until) = m.poll_action(now) else {
        panic!("not backing off: {:?}", m.state());
    };
    m.handle(Event::Tick, until);
    until
}

#[test]
fn want_dials_once() {
    let now = Instant::now();
    let mut m = machine(0);
    assert_eq!(m.poll_action(now), Action::Wait);
    m.handle(Event::Want, now);
    let first = epoch(&m);
    m.handle(Event::Want, now);
    assert_eq!(m.poll_action(now), Action::Dial { epoch: first });
    attached(&mut m, first, "a", now);
    m.handle(Event::Want, now);
    assert_eq!(m.state(), ClientState::Connected);
    assert_eq!(m.connection(), Some(&"a"));
}

#[test]
fn a_stale_disconnect_is_ignored() {
    let now = Instant::now();
    let mut m = machine(-1);
    m.handle(Event::Want, now);
    let old = epoch(&m);
    attached(&mut m, old, "old", now);
    disconnected(&mut m, old, CloseReason::PeerClosed, now);
    assert_eq!(m.state(), ClientState::Backoff);
    let now = after_backoff(&mut m, now);
    let new = epoch(&m);
    assert_ne!(old, new);
    attached(&mut m, new, "new", now);
    // The old connection's close arrives late, again.
    disconnected(&mut m, old, CloseReason::PeerClosed, now);
    assert_eq!(m.state(), ClientState::Connected);
    assert_eq!(m.connection(), Some(&"new"));
}

#[test]
fn a_late_connection_is_closed_not_attached() {
    let now = Instant::now();
    let mut m = machine(-1);
    m.handle(Event::Want, now);
    let e = epoch(&m);
    m.handle(Event::Close, now);
    assert_eq!(m.state(), ClientState::Closed);
    let late = attached(&mut m, e, "late", now);
    assert!(matches!(late, Effect::Close("late")));
    m.handle(Event::Want, now);
    m.handle(
        Event::Failed {
            epoch: e,
            error: refused(),
        },
        now,
    );
    assert_eq!(m.state(), ClientState::Closed);
    assert_eq!(m.poll_action(now), Action::Exit);
}

#[test]
fn an_older_dial_cannot_replace_a_newer_one() {
    let now = Instant::now();
    let mut m = machine(-1);
    m.handle(Event::Want, now);
    let old = epoch(&m);
    m.handle(
        Event::Failed {
            epoch: old,
            error: refused(),
        },
        now,
    );
    let now = after_backoff(&mut m, now);
    let new = epoch(&m);
    attached(&mut m, new, "new", now);
    let late = attached(&mut m, old, "old", now);
    assert!(matches!(late, Effect::Close("old")));
    assert_eq!(m.connection(), Some(&"new"));
}

#[test]
fn close_hands_back_the_live_connection() {
    let now = Instant::now();
    let mut m = machine(0);
    m.handle(Event::Want, now);
    let e = epoch(&m);
    attached(&mut m, e, "a", now);
    assert!(matches!(m.handle(Event::Close, now), Effect::Close("a")));
    disconnected(&mut m, e, CloseReason::Local, now);
    m.handle(Event::Want, now);
    assert_eq!(m.state(), ClientState::Closed);
}

#[test]
fn attempts_run_out_then_a_new_want_starts_over() {
    let mut now = Instant::now();
    let mut m = machine(2);
    m.handle(Event::Want, now);
    for _ in 0..2 {
        failed(&mut m, now);
        assert_eq!(m.state(), ClientState::Backoff);
        now = after_backoff(&mut m, now);
    }
    failed(&mut m, now);
    assert_eq!(m.state(), ClientState::Idle);
    assert_eq!(m.gave_up(), 1);
    assert_eq!(m.last_error().kind(), io::ErrorKind::ConnectionRefused);
    m.handle(Event::Want, now);
    assert_eq!(m.state(), ClientState::Connecting);
}

#[test]
fn no_reconnect_after_a_disconnect_when_attempts_are_zero() {
    let now = Instant::now();
    let mut m = machine(0);
    m.handle(Event::Want, now);
    let e = epoch(&m);
    attached(&mut m, e, "a", now);
    disconnected(&mut m, e, CloseReason::PeerClosed, now);
    assert_eq!(m.state(), ClientState::Idle);
    assert_eq!(m.gave_up(), 0);
}

#[test]
fn a_tick_before_the_backoff_ends_does_nothing() {
    let now = Instant::now();
    let mut m = machine(-1);
    m.handle(Event::Want, now);
    failed(&mut m, now);
    m.handle(Event::Tick, now);
    assert_eq!(m.state(), ClientState::Backoff);
}

#[test]
fn the_live_connections_close_reason_is_kept_a_stale_one_is_not() {
    let now = Instant::now();
    let mut m = machine(-1);
    m.handle(Event::Want, now);
    let first = epoch(&m);
    attached(&mut m, first, "first", now);
    assert!(m.last_close().is_none());
    let silence = Duration::from_secs(3);
    disconnected(&mut m, first, CloseReason::Silent(silence), now);
    assert!(
        matches!(m.last_close(), Some(CloseReason::Silent(d)) if *d == silence),
        "{:?}",
        m.last_close()
    );
    let now = after_backoff(&mut m, now);
    let second = epoch(&m);
    attached(&mut m, second, "second", now);
    // The first connection's close, again and late: not the latest news.
    disconnected(&mut m, first, CloseReason::DeadLink, now);
    assert!(matches!(m.last_close(), Some(CloseReason::Silent(_))));
    assert_eq!(m.connection(), Some(&"second"));
    disconnected(&mut m, second, CloseReason::PeerClosed, now);
    assert!(matches!(m.last_close(), Some(CloseReason::PeerClosed)));
}

#[test]
fn a_close_records_how_the_last_connection_ended() {
    let now = Instant::now();
    let mut m = machine(-1);
    m.handle(Event::Want, now);
    let e = epoch(&m);
    attached(&mut m, e, "a", now);
    assert!(matches!(m.handle(Event::Close, now), Effect::Close("a")));
    // Closing the handed-back connection runs its close callbacks.
    disconnected(&mut m, e, CloseReason::Local, now);
    assert!(matches!(m.last_close(), Some(CloseReason::Local)));
    assert_eq!(m.state(), ClientState::Closed);
}

#[test]
fn a_connection_turned_away_leaves_no_close_reason() {
    let now = Instant::now();
    let mut m = machine(-1);
    m.handle(Event::Want, now);
    let e = epoch(&m);
    m.handle(Event::Close, now);
    assert!(matches!(
        attached(&mut m, e, "late", now),
        Effect::Close("late")
    ));
    disconnected(&mut m, e, CloseReason::Local, now);
    assert!(m.last_close().is_none());
}

/// Today the policy does not look at the reason: every reason a client
/// can see redials when reconnects are on, and goes idle when they are off.
#[test]
fn every_reason_keeps_the_configured_policy() {
    let io = || CloseReason::io(io::Error::from(io::ErrorKind::ConnectionReset));
    let bad = || CloseReason::input(walle_process::Error::NotSupported("x"));
    let reasons = [
        CloseReason::PeerClosed,
        CloseReason::Stopped,
        io(),
        bad(),
        CloseReason::input(walle_process::Error::Hook("no".into())),
        CloseReason::Panicked,
        CloseReason::Silent(Duration::from_secs(1)),
        CloseReason::DeadLink,
    ];
    for reason in reasons {
        for (attempts, after) in [(-1, ClientState::Backoff), (0, ClientState::Idle)] {
            let now = Instant::now();
            let mut m = machine(attempts);
            m.handle(Event::Want, now);
            let e = epoch(&m);
            attached(&mut m, e, "a", now);
            let name = reason.name();
            disconnected(&mut m, e, reason.clone(), now);
            assert_eq!(m.state(), after, "{name} with attempts {attempts}");
            assert_eq!(m.last_close().map(CloseReason::name), Some(name));
        }
    }
}
