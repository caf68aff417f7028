//! Call timeouts at the edge of the clock, and sequence ids on `due`
//! connections, where packets do not say request or response.

mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use util::{Link, bytes, poll, ready, walle};
use walle_codec::RawCodec;
use walle_packet::{DueFormat, Protocol};
use walle_process::{CallOptions, Context, Error, ProcessOptions, Router, SeqRange};

/// `Duration::MAX` once panicked on `Instant + Duration`; it now means no
/// timeout: the call waits, sets no timer, and ends on close.
#[test]
fn a_call_with_duration_max_waits_and_ends_on_close() {
    let link = Link::new(walle(), Router::new(RawCodec));
    let options = CallOptions {
        timeout: Some(Duration::MAX),
        ..CallOptions::default()
    };
    let mut call = link
        .client
        .call_with::<Bytes, Bytes>("silent", &Bytes::new(), options);
    assert!(poll(&mut call).is_pending());
    assert_eq!(link.client.poll_timeout(), None, "no timer for no timeout");
    link.advance(Duration::from_secs(365 * 24 * 3600));
    assert!(poll(&mut call).is_pending(), "no timeout fired");
    let stats = link.client.stats();
    assert_eq!((stats.pending_calls, stats.timers), (1, 0));
    link.client.close();
    assert!(matches!(ready(&mut call), Err(Error::SessionClosed)));
    assert_eq!(link.client.stats().pending_calls, 0);
}

/// The same through the default timeout, and answered normally.
#[test]
fn a_default_timeout_of_duration_max_still_gets_its_answer() {
    let mut router = Router::new(RawCodec);
    router
        .route("echo", |_: &mut Context, req: Bytes| Ok(req))
        .unwrap();
    let options = ProcessOptions::default().call_timeout(Duration::MAX);
    let mut link = Link::with(
        walle(),
        Router::new(RawCodec),
        router,
        |b| b.options(options),
        |b| b,
    );
    let mut call = link.client.call::<Bytes, Bytes>("echo", &bytes("hi"));
    link.pump();
    assert_eq!(ready(&mut call).unwrap(), bytes("hi"));
    let stats = link.client.stats();
    assert_eq!((stats.pending_calls, stats.timers), (0, 0));
}

/// A `due` link whose two sides both call: the server calls the client's
/// "ping" while the client calls the server's "echo".
fn due_link(client: SeqRange, server: SeqRange) -> (Link, Arc<AtomicUsize>) {
    let served = Arc::new(AtomicUsize::new(0));
    let mut server_router = Router::new(RawCodec);
    let s = served.clone();
    server_router
        .route_id(1, move |_: &mut Context, req: Bytes| {
            s.fetch_add(1, Ordering::SeqCst);
            Ok(req)
        })
        .unwrap();
    let mut client_router = Router::new(RawCodec);
    client_router
        .route_id(2, |_: &mut Context, _: Bytes| Ok(bytes("pong")))
        .unwrap();
    let link = Link::with(
        Protocol::new(DueFormat::new()),
        client_router,
        server_router,
        |b| b.options(ProcessOptions::default().seq_range(client)),
        |b| b.options(ProcessOptions::default().seq_range(server)),
    );
    (link, served)
}

/// With one seq space for both sides, the server's pending call and the
/// client's request both take seq 1, and the request is taken as the
/// call's answer: the ambiguity the seq ranges remove.
#[test]
fn due_without_split_ranges_mistakes_a_request_for_an_answer() {
    let (mut link, served) = due_link(SeqRange::All, SeqRange::All);
    let mut from_server = link.server.call::<Bytes, Bytes>(2u32, &bytes("ping"));
    let from_client = link.client.call::<Bytes, Bytes>(1u32, &bytes("hello"));
    assert_eq!((from_server.seq(), from_client.seq()), (Some(1), Some(1)));
    link.pump();
    // The client's request settled the server's call ...
    assert_eq!(ready(&mut from_server).unwrap(), bytes("hello"));
    // ... and was never served.
    assert_eq!(served.load(Ordering::SeqCst), 0);
    drop(from_client);
}

/// With the client on the lower half and the server on the upper, a
/// request from the peer never carries the seq of one of our pending
/// calls: both calls get their own answers and both handlers run.
#[test]
fn due_with_split_ranges_keeps_requests_and_answers_apart() {
    for (client, server) in [
        (SeqRange::Lower, SeqRange::Upper),
        (SeqRange::Upper, SeqRange::Lower),
    ] {
        let (mut link, served) = due_link(client, server);
        for _ in 0..100 {
            let mut from_server = link.server.call::<Bytes, Bytes>(2u32, &bytes("ping"));
            let mut from_client = link.client.call::<Bytes, Bytes>(1u32, &bytes("hello"));
            let (s, c) = (from_server.seq().unwrap(), from_client.seq().unwrap());
            let (lo, hi) = (client.bounds(32767), server.bounds(32767));
            assert!((lo.0..=lo.1).contains(&c), "client seq {c}");
            assert!((hi.0..=hi.1).contains(&s), "server seq {s}");
            link.pump();
            assert_eq!(ready(&mut from_server).unwrap(), bytes("pong"));
            assert_eq!(ready(&mut from_client).unwrap(), bytes("hello"));
        }
        assert_eq!(served.load(Ordering::SeqCst), 100);
        assert_eq!(link.server.stats().stray_responses, 0);
        assert_eq!(link.client.stats().stray_responses, 0);
    }
}

/// A range wraps within itself; a format too narrow to split has an
/// empty half (calls in it are refused with `NotSupported`).
#[test]
fn seq_ranges_wrap_within_themselves_and_refuse_when_empty() {
    assert_eq!(SeqRange::Lower.bounds(127), (1, 63));
    assert_eq!(SeqRange::Upper.bounds(127), (64, 127));
    assert_eq!(SeqRange::All.bounds(127), (1, 127));
    let narrow = Protocol::new(DueFormat::new().seq_bytes(1));
    let link = Link::with(
        narrow,
        Router::new(RawCodec),
        Router::new(RawCodec),
        |b| b.options(ProcessOptions::default().seq_range(SeqRange::Upper)),
        |b| b,
    );
    let mut seen = Vec::new();
    for _ in 0..130 {
        let call = link.client.call::<Bytes, Bytes>(1u32, &Bytes::new());
        seen.push(call.seq().expect("a free seq"));
    }
    assert!(seen.iter().all(|s| (64..=127).contains(s)), "{seen:?}");
    assert_eq!(seen[64], 64, "wrapped to the start of the range");

    // One id in all: the lower half is empty.
    let range = SeqRange::Lower.bounds(1);
    assert!(range.0 > range.1, "{range:?}");
}

/// `unclaimed_answers` counts the outcomes that have arrived and that
/// their futures have not taken yet, whatever the outcome: an answer, a
/// timeout, the close; taking one, or dropping its future, uncounts it.
#[test]
fn unclaimed_answers_count_outcomes_their_futures_have_not_taken() {
    let mut router = Router::new(RawCodec);
    router
        .route("echo", |_: &mut Context, req: Bytes| Ok(req))
        .unwrap();
    let mut link = Link::with(walle(), Router::new(RawCodec), router, |b| b, |b| b);
    let client = link.client.clone();
    let mut first = client.call::<Bytes, Bytes>("echo", &bytes("a"));
    let mut second = client.call::<Bytes, Bytes>("echo", &bytes("b"));
    let dropped = client.call::<Bytes, Bytes>("echo", &bytes("c"));
    assert!(poll(&mut first).is_pending());
    assert_eq!(client.unclaimed_answers(), 0, "nothing answered yet");
    link.pump();
    assert_eq!(client.unclaimed_answers(), 3, "three answers arrived");
    assert_eq!(ready(&mut first).unwrap(), bytes("a"));
    assert_eq!(client.unclaimed_answers(), 2);
    drop(dropped);
    assert_eq!(client.unclaimed_answers(), 1, "a dropped future's answer");
    assert_eq!(ready(&mut second).unwrap(), bytes("b"));
    assert_eq!(client.unclaimed_answers(), 0);

    let options = CallOptions {
        timeout: Some(Duration::from_secs(1)),
        ..CallOptions::default()
    };
    let mut timed = client.call_with::<Bytes, Bytes>("silent", &Bytes::new(), options);
    let mut also_timed = client.call_with::<Bytes, Bytes>("silent", &Bytes::new(), options);
    link.advance(Duration::from_millis(500));
    let mut later = client.call_with::<Bytes, Bytes>("silent", &Bytes::new(), options);
    link.advance(Duration::from_millis(600));
    assert_eq!(client.unclaimed_answers(), 2, "two calls timed out");
    assert!(matches!(ready(&mut timed), Err(Error::Timeout)));
    assert_eq!(client.unclaimed_answers(), 1);
    client.close();
    assert_eq!(client.unclaimed_answers(), 2, "the close settled the third");
    assert!(matches!(ready(&mut also_timed), Err(Error::Timeout)));
    assert!(matches!(ready(&mut later), Err(Error::SessionClosed)));
    assert_eq!(client.unclaimed_answers(), 0);
}
