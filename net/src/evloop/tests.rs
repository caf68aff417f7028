//! The loop with sources that are not TCP: the stream connection over a
//! Unix socket pair, with a real process, and a socketless driver owning
//! timers and commands for many sub-sessions. Both go through the same
//! `Cmd`s the TCP drivers use.

use std::sync::Arc;
use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant};

use walle_process::CloseReason;

use super::driver::{Ctx, Driver, Op, Ready, TimerKind, Turn};
use super::stream::StreamConn;
use super::{Cmd, Key, LoopHandle, Loops};
use crate::options::{ConnOptions, EvloopOptions};
use crate::testing::{
    PATIENCE, PEER, Peer, answers_then_ends_as_the_peer_did, closes_with_their_reasons, echo,
    eventually,
};

fn loops() -> Loops {
    Loops::start(1, &EvloopOptions::default(), "walle-evloop-test").expect("a loop")
}

/// Hands a Unix socket to the loop of `handle` as a stream connection
/// whose process echoes.
fn connect(handle: &LoopHandle, opts: ConnOptions) -> Peer {
    let (stream, attach, peer) = echo();
    let stream = mio::net::UnixStream::from_std(stream);
    let opts = Arc::new(opts);
    handle.send(Cmd::Add(Box::new(move |cx: &mut Ctx<'_>| {
        StreamConn::start(cx, stream, PEER, &attach, opts)
    })));
    peer.attached()
}

#[test]
fn a_unix_stream_connection_answers_and_ends_as_its_peer_did() {
    let loops = loops();
    let mut peer = connect(&loops.handles()[0], ConnOptions::default());
    eventually("the connection to count", || loops.stats().connections == 1);
    answers_then_ends_as_the_peer_did(&mut peer);
    eventually("the connection to leave", || loops.stats().connections == 0);
    assert_eq!(loops.stats().read_buffers_held, 0);
    loops.stop(Instant::now());
}

#[test]
fn closes_of_every_origin_reach_the_process_with_their_reason() {
    let loops = loops();
    let handle = &loops.handles()[0];
    closes_with_their_reasons(|opts| connect(handle, opts));
    let mut stopped = connect(handle, ConnOptions::default());
    assert_eq!(&stopped.round_trip(1, b"still here")[..], b"still here");
    loops.stop(Instant::now() + PATIENCE);
    assert!(matches!(stopped.close_reason(), CloseReason::Stopped));
    assert!(stopped.sees_end());
}

/// What the socketless driver saw.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Timer(u64),
    Command(Op, u64),
    Stopping,
    Closed(&'static str),
}

/// A source with no socket, standing for an endpoint of many sessions:
/// a timer per session, commands for a session.
struct Sessions {
    seen: Sender<Seen>,
}

const UPDATE: TimerKind = TimerKind(9);

impl Driver for Sessions {
    fn ready(&mut self, _cx: &mut Ctx<'_>, _ready: Ready) -> Turn {
        Ok(())
    }
    fn timer(&mut self, cx: &mut Ctx<'_>, kind: TimerKind, sub: u64) -> Turn {
        assert_eq!(kind, UPDATE);
        let _ = self.seen.send(Seen::Timer(sub));
        if sub == 3 {
            // A session's next update, set from its own.
            cx.set_timer(cx.now, UPDATE, 30);
        }
        Ok(())
    }
    fn command(&mut self, _cx: &mut Ctx<'_>, op: Op, sub: u64) -> Turn {
        let _ = self.seen.send(Seen::Command(op, sub));
        match op {
            Op::Close => Err(CloseReason::DeadLink),
            _ => Ok(()),
        }
    }
    fn stop(&mut self, _cx: &mut Ctx<'_>) -> Turn {
        let _ = self.seen.send(Seen::Stopping);
        Ok(())
    }
    fn closed(self: Box<Self>, _cx: &mut Ctx<'_>, reason: CloseReason) {
        let _ = self.seen.send(Seen::Closed(reason.name()));
    }
}

/// Starts a [`Sessions`] source with a timer for sessions 1, 2 and 3;
/// returns its key.
fn start_sessions(handle: &LoopHandle, seen: Sender<Seen>) -> Key {
    let (key_tx, key) = mpsc::channel();
    handle.send(Cmd::Add(Box::new(move |cx: &mut Ctx<'_>| {
        let _ = key_tx.send(cx.key);
        for sub in [3, 1, 2] {
            cx.set_timer(cx.now + Duration::from_millis(10 * sub), UPDATE, sub);
        }
        Some(Box::new(Sessions { seen }) as Box<dyn Driver>)
    })));
    key.recv_timeout(PATIENCE).expect("started")
}

#[test]
fn one_source_owns_timers_and_commands_of_many_sessions() {
    let loops = loops();
    let handle = &loops.handles()[0];
    let (seen_tx, seen) = mpsc::channel();
    let first = start_sessions(handle, seen_tx.clone());
    let next = || seen.recv_timeout(PATIENCE).expect("an event");
    let mut timers: Vec<Seen> = (0..4).map(|_| next()).collect();
    timers.sort_by_key(|s| match s {
        Seen::Timer(sub) => *sub,
        _ => u64::MAX,
    });
    let subs = [1, 2, 3, 30].map(Seen::Timer);
    assert_eq!(timers, subs, "each session's timer, and one it set");
    let send = |key, sub, op| handle.send(Cmd::Source { key, sub, op });
    send(first, 5, Op::Flush);
    assert_eq!(next(), Seen::Command(Op::Flush, 5));
    send(first, 6, Op::Close);
    assert_eq!(next(), Seen::Command(Op::Close, 6));
    assert_eq!(next(), Seen::Closed("dead_link"));

    // The freed token goes to the next source, under a new generation:
    // what was meant for the first one reaches no one.
    let second = start_sessions(handle, seen_tx);
    assert_eq!(second.token, first.token);
    assert_ne!(second.generation, first.generation);
    send(first, 7, Op::Arm);
    send(second, 8, Op::Arm);
    let events: Vec<Seen> = (0..5).map(|_| next()).collect();
    let commands: Vec<&Seen> = events
        .iter()
        .filter(|s| matches!(s, Seen::Command(..)))
        .collect();
    assert_eq!(commands, [&Seen::Command(Op::Arm, 8)], "{events:?}");
    loops.stop(Instant::now());
    assert_eq!(next(), Seen::Stopping);
    assert_eq!(next(), Seen::Closed("stopped"));
}

/// Commands from other threads reach a reactor that has nothing else to
/// wake it (no source, no timer: it sleeps until told), however they fall
/// against its going to sleep: sent at once, while it busy-polls, just as
/// it stops polling, or while it sleeps. A command left unseen would
/// leave its sender waiting for good.
#[test]
fn commands_from_other_threads_always_wake_an_idle_reactor() {
    for busy_poll in [Duration::ZERO, Duration::from_micros(20)] {
        let loops = Loops::start(
            1,
            &EvloopOptions::default().busy_poll(busy_poll),
            "walle-evloop-test",
        )
        .expect("a loop");
        let handle = &loops.handles()[0];
        std::thread::scope(|s| {
            for sender in 0..3u64 {
                s.spawn(move || {
                    let (done, ran) = mpsc::sync_channel(1);
                    for i in 0..4000u64 {
                        let done = done.clone();
                        handle.send(Cmd::Add(Box::new(move |_cx: &mut Ctx<'_>| {
                            let _ = done.send(());
                            None
                        })));
                        ran.recv_timeout(PATIENCE).unwrap_or_else(|_| {
                            panic!("sender {sender}: command {i} never ran ({busy_poll:?})")
                        });
                        // Waits from none to past the busy poll, so sends
                        // land before, during and after the reactor's
                        // decision to sleep.
                        let wait = Duration::from_micros((i * 7 + sender * 13) % 60);
                        let until = Instant::now() + wait;
                        while Instant::now() < until {
                            std::hint::spin_loop();
                        }
                    }
                });
            }
        });
        loops.stop(Instant::now());
    }
}
