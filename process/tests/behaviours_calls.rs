//! BEHAVIOURS 10-21 of the process layer, over two processes wired back
//! to back in memory: sequence ids, error responses, timeouts, cancelled
//! calls and stray responses, close, failed writes, async callbacks,
//! notify, and answering a notify.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use util::{Link, body, bytes, drain, echo_router, poll, ready, walle};
use walle_codec::{Code, RawCodec};
use walle_packet::{Cmd, DueFormat, Head, Protocol, Route};
use walle_process::{CallOptions, Context, Error, Router, Status};

/// BEHAVIOURS 10: sequence ids are unique among pending calls, also when
/// a narrow seq (due's 15 bits) wraps around.
#[test]
fn b10_unique_sequence_ids() {
    let link = Link::new(Protocol::new(DueFormat::new()), Router::new(RawCodec));
    let mut seqs = std::collections::HashSet::new();
    let mut held = Vec::new();
    for i in 0..40_000u32 {
        let call = link.client.call::<Bytes, Bytes>(1u32, &Bytes::new());
        if i % 2 == 0 {
            assert!(seqs.insert(call.seq().unwrap()), "duplicate seq");
            held.push(call);
        }
        // odd calls drop at once, freeing their seq for reuse
        if i % 1000 == 0 {
            let _ = drain(link.client.protocol(), &link.to_server);
        }
    }
    assert_eq!(held.len(), 20_000);
    assert!(seqs.iter().all(|&s| (1..=32767).contains(&s)));
    // Past the format's range: refused, not duplicated.
    let mut rest: Vec<_> = (0..20_000)
        .map(|_| link.client.call::<Bytes, Bytes>(1u32, &Bytes::new()))
        .collect();
    let _ = drain(link.client.protocol(), &link.to_server);
    let mut refused = 0;
    for call in rest.iter_mut() {
        if matches!(ready_or(call), Some(Err(Error::Overloaded(_)))) {
            refused += 1;
        }
    }
    assert_eq!(refused, 20_000 - (32767 - 20_000));
}

fn ready_or<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
    match poll(f) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// BEHAVIOURS 12: error responses become the decoded error; application
/// codes are kept; other handler errors are code 1 with their text.
#[test]
fn b12_error_responses() {
    let mut router = Router::new(RawCodec);
    router
        .route("app", |_: &mut Context, _: Bytes| -> Result<Bytes, _> {
            Err(Status::new(1042, "bad move").into())
        })
        .unwrap();
    router
        .route("io", |_: &mut Context, _: Bytes| -> Result<Bytes, _> {
            Err(std::io::Error::other("disk on fire").into())
        })
        .unwrap();
    let mut link = Link::new(walle(), router);
    let mut app = link.client.call::<Bytes, Bytes>("app", &Bytes::new());
    let mut io = link.client.call::<Bytes, Bytes>("io", &Bytes::new());
    link.pump();
    match ready(&mut app) {
        Err(e @ Error::Remote { .. }) => {
            assert_eq!(e.code(), Code(1042));
            assert!(e.to_string().contains("bad move"));
        }
        other => panic!("{other:?}"),
    }
    match ready(&mut io) {
        Err(Error::Remote { code, desc }) => {
            assert_eq!((code, desc.as_str()), (Code::UNKNOWN, "disk on fire"))
        }
        other => panic!("{other:?}"),
    }
}

/// BEHAVIOURS 13: an unanswered call times out with code 5 and leaves no
/// entry or timer.
#[test]
fn b13_timeout() {
    let link = Link::new(walle(), Router::new(RawCodec));
    let options = CallOptions {
        timeout: Some(Duration::from_millis(50)),
        ..CallOptions::default()
    };
    let mut call = link
        .client
        .call_with::<Bytes, Bytes>("silent", &Bytes::new(), options);
    assert!(poll(&mut call).is_pending());
    link.advance(Duration::from_millis(49));
    assert!(poll(&mut call).is_pending(), "not before its deadline");
    link.advance(Duration::from_millis(2));
    let err = ready(&mut call).unwrap_err();
    assert!(matches!(err, Error::Timeout));
    assert_eq!(err.code(), Code::TIMEOUT);
    let stats = link.client.stats();
    assert_eq!((stats.pending_calls, stats.timers), (0, 0));
}

/// BEHAVIOURS 14: a dropped call removes its entry; its late answer is a
/// stray (BEHAVIOURS 21).
#[test]
fn b14_b21_cancelled_call_and_stray_response() {
    let mut link = Link::new(walle(), echo_router());
    let call = link.client.call::<Bytes, Bytes>("echo", &bytes("x"));
    assert_eq!(link.client.stats().pending_calls, 1);
    drop(call);
    let stats = link.client.stats();
    assert_eq!((stats.pending_calls, stats.timers), (0, 0));
    link.pump(); // the server still answers: a stray now
    assert_eq!(link.client.stats().stray_responses, 1);

    // A duplicate response: dropped and counted, never a crash.
    let protocol = walle();
    let mut call = link.client.call::<Bytes, Bytes>("echo", &bytes("y"));
    let seq = call.seq().unwrap();
    let request = link
        .client
        .protocol()
        .decode(body(
            &protocol,
            &Head::request(Route::Uri("echo"), seq),
            b"",
        ))
        .unwrap();
    let response = Head::response_to(&request).unwrap();
    link.client
        .handle_frame(body(&protocol, &response, b"first"))
        .unwrap();
    link.client
        .handle_frame(body(&protocol, &response, b"second"))
        .unwrap();
    assert_eq!(ready(&mut call).unwrap(), bytes("first"));
    link.client
        .handle_frame(body(&protocol, &response, b"third"))
        .unwrap();
    assert_eq!(link.client.stats().stray_responses, 3);
}

/// BEHAVIOURS 15 and 30-31: close fails pending calls at once, runs close
/// callbacks once, and later writes fail with SessionClosed.
#[test]
fn b15_close_fails_pending_promptly() {
    let link = Link::new(walle(), Router::new(RawCodec));
    let closed = Arc::new(AtomicUsize::new(0));
    let c = closed.clone();
    link.client.session().on_close(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    let mut call = link.client.call::<Bytes, Bytes>("never", &Bytes::new());
    let result = Arc::new(Mutex::new(None));
    let r = result.clone();
    link.client.async_call::<Bytes, Bytes, _>(
        "never",
        &Bytes::new(),
        CallOptions::default(),
        move |res| {
            *r.lock().unwrap() = Some(res.map(|_| ()));
        },
    );
    link.client.close();
    link.client.close();
    assert!(matches!(ready(&mut call), Err(Error::SessionClosed)));
    assert!(matches!(
        *result.lock().unwrap(),
        Some(Err(Error::SessionClosed))
    ));
    assert_eq!(closed.load(Ordering::SeqCst), 1, "close callbacks run once");
    assert!(matches!(
        link.client.notify("x", &Bytes::new()),
        Err(Error::SessionClosed)
    ));
    let mut late = link.client.call::<Bytes, Bytes>("x", &Bytes::new());
    assert!(matches!(ready(&mut late), Err(Error::SessionClosed)));
    assert_eq!(link.client.stats().pending_calls, 0);
}

/// BEHAVIOURS 16: a call whose write fails returns that error and leaves
/// no pending entry.
#[test]
fn b16_failed_write_leaves_no_entry() {
    let protocol = walle().with_max_frame(64);
    let link = Link::new(protocol, Router::new(RawCodec));
    let mut call = link
        .client
        .call::<Bytes, Bytes>("echo", &Bytes::from(vec![0u8; 100]));
    let err = ready(&mut call).unwrap_err();
    assert_eq!(err.code(), Code::PACKET_SIZE, "{err}");
    let stats = link.client.stats();
    assert_eq!((stats.pending_calls, stats.timers), (0, 0));
    assert_eq!(
        link.to_server.queued(),
        0,
        "nothing was sent (BEHAVIOURS 25)"
    );
}

/// BEHAVIOURS 17 and 18: async_call's callback runs exactly once (response,
/// timeout or close), the timer is released on an early response, and a
/// callback may itself call.
#[test]
fn b17_b18_async_call_callbacks() {
    let mut link = Link::new(walle(), echo_router());
    let runs = Arc::new(Mutex::new(Vec::new()));
    let client = link.client.clone();
    let r = runs.clone();
    link.client.async_call::<Bytes, Bytes, _>(
        "echo",
        &bytes("one"),
        CallOptions::default(),
        move |res| {
            r.lock()
                .unwrap()
                .push(format!("{:?}", res.map(|b| b.to_vec())));
            // A call from inside a callback: would deadlock if a lock were held.
            let r2 = r.clone();
            client.async_call::<Bytes, Bytes, _>(
                "echo",
                &bytes("two"),
                CallOptions::default(),
                move |res| {
                    r2.lock()
                        .unwrap()
                        .push(format!("{:?}", res.map(|b| b.to_vec())));
                },
            );
        },
    );
    link.pump();
    assert_eq!(
        *runs.lock().unwrap(),
        ["Ok([111, 110, 101])", "Ok([116, 119, 111])"]
    );
    assert_eq!(
        link.client.stats().timers,
        0,
        "early responses release their timers"
    );

    let timeouts = Arc::new(AtomicUsize::new(0));
    let t = timeouts.clone();
    let options = CallOptions {
        timeout: Some(Duration::from_millis(10)),
        ..CallOptions::default()
    };
    link.client
        .async_call::<Bytes, Bytes, _>("echo", &bytes("late"), options, move |res| {
            assert!(matches!(res, Err(Error::Timeout)));
            t.fetch_add(1, Ordering::SeqCst);
        });
    link.advance(Duration::from_millis(20));
    link.pump(); // the answer arrives after the timeout: a stray, not a second run
    link.advance(Duration::from_secs(10));
    assert_eq!(timeouts.load(Ordering::SeqCst), 1);
    assert_eq!(link.client.stats().stray_responses, 1);
}

/// BEHAVIOURS 19: notify runs the handler and sends nothing back.
#[test]
fn b19_notify_is_one_way() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut router = Router::new(RawCodec);
    let s = seen.clone();
    router
        .route("chat", move |ctx: &mut Context, msg: Bytes| {
            assert_eq!(ctx.cmd(), Cmd::Notify);
            s.lock().unwrap().push(msg.clone());
            Ok(msg)
        })
        .unwrap();
    let link = Link::new(walle(), router);
    link.client.notify("chat", &bytes("hello")).unwrap();
    let frames = drain(&walle(), &link.to_server);
    assert_eq!(frames[0].cmd(), Cmd::Notify);
    let frame = body(&walle(), &Head::notify(Route::Uri("chat")), b"hello");
    link.server.handle_frame(frame).unwrap();
    assert_eq!(*seen.lock().unwrap(), [bytes("hello")]);
    assert_eq!(link.to_client.queued(), 0, "no response to a notify");
}

/// BEHAVIOURS 20: answering anything but a request fails with code 7.
#[test]
fn b20_respond_to_notify_is_code_7() {
    let result = Arc::new(Mutex::new(None));
    let mut router = Router::new(RawCodec);
    let r = result.clone();
    router
        .route("n", move |ctx: &mut Context, msg: Bytes| {
            *r.lock().unwrap() = Some(ctx.respond(&RawCodec, &msg).map_err(|e| e.code()));
            Ok(msg)
        })
        .unwrap();
    let link = Link::new(walle(), router);
    link.server
        .handle_frame(body(&walle(), &Head::notify(Route::Uri("n")), b""))
        .unwrap();
    assert_eq!(*result.lock().unwrap(), Some(Err(Code::UNEXPECTED)));
}
