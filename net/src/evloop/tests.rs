//! The loop with sources that are not TCP: the stream connection over a
//! Unix socket pair, with a real process, and a socketless driver owning
//! timers and commands for many sub-sessions. Both go through the same
//! `Cmd`s the TCP drivers use.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use bytes::Bytes;
use walle_codec::RawCodec;
use walle_packet::{Head, Protocol, Route, WalleFormat};
use walle_process::{CloseReason, Context, Process, Router, Session};

use super::driver::{Ctx, Driver, Op, Ready, TimerKind, Turn};
use super::stream::StreamConn;
use super::{Cmd, Key, LoopHandle, Loops};
use crate::conn::{Attach, Handler};
use crate::options::{ConnOptions, EvloopOptions};

/// The bound of every wait for an event.
const PATIENCE: Duration = Duration::from_secs(30);

fn loops() -> Loops {
    Loops::start(1, &EvloopOptions::default(), "walle-evloop-test").expect("a loop")
}

fn protocol() -> Protocol {
    Protocol::new(WalleFormat::new())
}

fn echo_router() -> Router<RawCodec> {
    let mut router = Router::new(RawCodec);
    router
        .route("echo", |_: &mut Context, req: Bytes| Ok(req))
        .unwrap();
    router
}

/// The test's end of a connection the loop serves over a Unix socket.
struct Peer {
    stream: UnixStream,
    process: Process<RawCodec>,
    closed: Receiver<CloseReason>,
}

impl Peer {
    /// Hands one end of a socket pair to `handle` as a stream connection
    /// whose process echoes.
    fn connect(handle: &LoopHandle, opts: ConnOptions) -> Peer {
        let (ours, theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        theirs.set_read_timeout(Some(PATIENCE)).unwrap();
        let (closed_tx, closed) = mpsc::channel();
        let (process_tx, process) = mpsc::channel();
        let attach: Attach = Arc::new(move |transport, _peer| {
            let process = Process::builder(protocol(), echo_router())
                .transport(transport)
                .session(Session::new(7))
                .build()
                .ok()?;
            let closed_tx = closed_tx.clone();
            process.session().on_close(move |reason| {
                let _ = closed_tx.send(reason.clone());
            });
            let _ = process_tx.send(process.clone());
            Some(Arc::new(process) as Arc<dyn Handler>)
        });
        let stream = mio::net::UnixStream::from_std(ours);
        // A Unix socket has no inet address; sessions and logs get this.
        let peer = SocketAddr::from(([127, 0, 0, 1], 0));
        let opts = Arc::new(opts);
        handle.send(Cmd::Add(Box::new(move |cx: &mut Ctx<'_>| {
            StreamConn::start(cx, stream, peer, &attach, opts)
        })));
        Peer {
            stream: theirs,
            process: process.recv_timeout(PATIENCE).expect("attached"),
            closed,
        }
    }

    /// A request to `echo` and its answer's payload.
    fn round_trip(&mut self, seq: u64, payload: &[u8]) -> Bytes {
        let mut wire = Vec::new();
        protocol()
            .encode(&Head::request(Route::Uri("echo"), seq), payload, &mut wire)
            .unwrap();
        self.stream.write_all(&wire).unwrap();
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).unwrap();
        let answer = protocol().decode(Bytes::from(body)).unwrap();
        assert_eq!(answer.seq(), seq);
        answer.payload()
    }

    fn close_reason(&self) -> CloseReason {
        self.closed.recv_timeout(PATIENCE).expect("closed")
    }

    /// The loop's end closed: the next read sees the end of the stream.
    fn sees_end(&mut self) -> bool {
        let mut rest = Vec::new();
        self.stream.read_to_end(&mut rest).is_ok() && rest.is_empty()
    }
}

fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_unix_stream_connection_answers_and_ends_as_its_peer_did() {
    let loops = loops();
    let handle = &loops.handles()[0];
    let mut peer = Peer::connect(handle, ConnOptions::default());
    eventually("the connection to count", || loops.stats().connections == 1);
    assert_eq!(
        &peer.round_trip(1, b"over a unix socket")[..],
        b"over a unix socket"
    );
    assert_eq!(&peer.round_trip(2, &[9; 100_000])[..], &[9; 100_000][..]);
    peer.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let reason = peer.close_reason();
    assert!(matches!(reason, CloseReason::PeerClosed), "{reason:?}");
    eventually("the connection to leave", || loops.stats().connections == 0);
    assert_eq!(loops.stats().read_buffers_held, 0);
    loops.stop(Instant::now());
}

#[test]
fn closes_of_every_origin_reach_the_process_with_their_reason() {
    let loops = loops();
    let handle = &loops.handles()[0];

    let mut local = Peer::connect(handle, ConnOptions::default());
    assert_eq!(&local.round_trip(1, b"before")[..], b"before");
    local.process.close();
    assert!(matches!(local.close_reason(), CloseReason::Local));
    assert!(local.sees_end(), "a local close ends the stream");

    let mut malformed = Peer::connect(handle, ConnOptions::default());
    malformed
        .stream
        .write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff])
        .unwrap();
    let reason = malformed.close_reason();
    assert!(matches!(reason, CloseReason::Malformed(_)), "{reason:?}");
    assert!(malformed.sees_end());

    let quiet = ConnOptions {
        read_timeout: Duration::from_millis(50),
        ..ConnOptions::default()
    };
    let mut silent = Peer::connect(handle, quiet);
    let reason = silent.close_reason();
    assert!(
        matches!(reason, CloseReason::Silent(limit) if limit == Duration::from_millis(50)),
        "{reason:?}"
    );
    assert!(silent.sees_end());

    let mut stopped = Peer::connect(handle, ConnOptions::default());
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
