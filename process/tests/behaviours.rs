//! BEHAVIOURS 1-23 of the process layer, over two processes wired back to
//! back in memory. Each test names its behaviour number.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use util::{Link, body, bytes, drain, poll, ready, walle};
use walle_codec::{Code, RawCodec};
use walle_packet::{Cmd, DueFormat, Head, Metadata, PacketEncoder, ProtoFormat, Protocol, Route};
use walle_process::{
    CallOptions, Context, DispatchHook, Error, FrameNext, HandlerError, LoadLimit, Next,
    RouteError, Router, Session, Status,
};

fn echo_router() -> Router<RawCodec> {
    let mut router = Router::new(RawCodec);
    router
        .route("echo", |_: &mut Context, req: Bytes| Ok(req))
        .unwrap();
    router
}

type Log = Arc<Mutex<Vec<String>>>;

fn note(log: &Log, s: &str) {
    log.lock().unwrap().push(s.to_string());
}

#[derive(Debug)]
struct Tag(&'static str, Log);
impl PacketEncoder for Tag {
    fn name(&self) -> &'static str {
        self.0
    }
    fn encode(&self, body: &[u8], dst: &mut Vec<u8>) -> Result<(), walle_codec::BoxError> {
        dst.push(self.0.as_bytes()[0]);
        dst.extend_from_slice(body);
        Ok(())
    }
    fn decode(&self, body: Bytes) -> Result<Bytes, walle_codec::BoxError> {
        note(&self.1, &format!("decode {}", self.0));
        match body.first() {
            Some(&b) if b == self.0.as_bytes()[0] => Ok(body.slice(1..)),
            _ => Err("wrong order".into()),
        }
    }
}

#[derive(Debug)]
struct LogHook(Log);
impl DispatchHook for LogHook {
    fn on_frame(&self, frame: Bytes, next: FrameNext) -> Result<(), HandlerError> {
        note(&self.0, "frame");
        Ok(next.run(frame)?)
    }
}

/// BEHAVIOURS 1: framing -> packet decoders (reversed) -> format -> router
/// -> middleware -> handler; after-code runs as the chain unwinds.
#[test]
fn b01_inbound_order_and_unwinding() {
    let log: Log = Arc::default();
    let protocol = walle()
        .with_encoder(Tag("a", log.clone()))
        .with_encoder(Tag("b", log.clone()));
    let mut router = Router::new(RawCodec);
    let l = log.clone();
    router
        .route("x", move |_: &mut Context, req: Bytes| {
            note(&l, "handler");
            Ok(req)
        })
        .unwrap()
        .layer({
            let l = log.clone();
            move |ctx: &mut Context, next: Next<'_>| {
                note(&l, "route before");
                let r = next.run(ctx);
                note(&l, "route after");
                r
            }
        });
    let l = log.clone();
    router.middleware(move |ctx: &mut Context, next: Next<'_>| {
        note(&l, "global before");
        let r = next.run(ctx);
        note(&l, "global after");
        r
    });
    let hook = Arc::new(LogHook(log.clone()));
    let mut link = Link::with(
        protocol,
        Router::new(RawCodec),
        router,
        |b| b,
        |b| b.hook(hook),
    );
    let mut call = link.client.call::<Bytes, Bytes>("x", &bytes("q"));
    link.pump();
    assert_eq!(ready(&mut call).unwrap(), bytes("q"));
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "frame", // framing cut the frame, the hook saw it first
            "decode b",
            "decode a", // encoders undone in reverse
            "global before",
            "route before",
            "handler",
            "route after",
            "global after",
            "decode b", // the client undoes the encoders of the response
            "decode a",
        ]
    );
}

#[derive(Debug)]
enum HookMode {
    Drop,
    Rewrite,
    Defer,
    Fail,
}

#[derive(Debug)]
struct ModeHook(HookMode);
impl DispatchHook for ModeHook {
    fn on_frame(&self, frame: Bytes, next: FrameNext) -> Result<(), HandlerError> {
        match self.0 {
            HookMode::Drop => Ok(()),
            HookMode::Rewrite => {
                let protocol = walle();
                let p = protocol.decode(frame).unwrap();
                let mut head = Head::request(Route::Uri("echo"), p.seq());
                head.cmd = p.cmd();
                Ok(next.run(util::body(&protocol, &head, b"rewritten"))?)
            }
            HookMode::Defer => {
                std::thread::spawn(move || next.run(frame).unwrap())
                    .join()
                    .unwrap();
                Ok(())
            }
            HookMode::Fail => Err("refused by hook".into()),
        }
    }
}

/// BEHAVIOURS 2: a dispatch hook drops, defers or rewrites a frame; its
/// error stops the frame and is reported.
#[test]
fn b02_dispatch_hook_drop_defer_rewrite_error() {
    for mode in [
        HookMode::Drop,
        HookMode::Rewrite,
        HookMode::Defer,
        HookMode::Fail,
    ] {
        let name = format!("{mode:?}");
        let hook = Arc::new(ModeHook(mode));
        let mut link = Link::with(
            walle(),
            Router::new(RawCodec),
            echo_router(),
            |b| b,
            |b| b.hook(hook),
        );
        let mut call = link.client.call::<Bytes, Bytes>("echo", &bytes("orig"));
        let frame = {
            let packets = drain(&walle(), &link.to_server);
            assert_eq!(packets.len(), 1);
            body(
                &walle(),
                &Head::request(Route::Uri("echo"), packets[0].seq()),
                b"orig",
            )
        };
        let result = link.server.handle_frame(frame);
        link.pump();
        match name.as_str() {
            "Drop" => {
                assert!(result.is_ok());
                assert!(poll(&mut call).is_pending(), "dropped frame: no answer");
            }
            "Rewrite" => assert_eq!(ready(&mut call).unwrap(), bytes("rewritten")),
            "Defer" => assert_eq!(ready(&mut call).unwrap(), bytes("orig")),
            "Fail" => {
                let err = result.unwrap_err();
                assert!(matches!(err, Error::Hook(_)), "{err}");
                assert!(err.to_string().contains("refused by hook"));
                assert!(poll(&mut call).is_pending());
            }
            _ => unreachable!(),
        }
    }
}

/// BEHAVIOURS 4: unknown route: a request gets code 4, a notify is dropped
/// and counted.
#[test]
fn b04_unknown_route() {
    let mut link = Link::new(walle(), echo_router());
    let mut call = link.client.call::<Bytes, Bytes>("nowhere", &bytes("?"));
    link.client.notify("nowhere", &bytes("!")).unwrap();
    link.pump();
    match ready(&mut call) {
        Err(Error::Remote { code, desc }) => {
            assert_eq!(code, Code::NOT_SUPPORTED);
            assert!(desc.contains("nowhere"), "{desc}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(link.server.stats().unrouted_notifies, 1);
}

/// BEHAVIOURS 5: numeric route when non-zero, else uri, else fallback.
#[test]
fn b05_numeric_then_uri_then_fallback() {
    let protocol = Protocol::new(ProtoFormat::new());
    let mut router = Router::new(RawCodec);
    router
        .route("by-name", |_: &mut Context, _: Bytes| Ok(bytes("name")))
        .unwrap();
    router
        .route_id(9, |_: &mut Context, _: Bytes| Ok(bytes("id")))
        .unwrap();
    router
        .fallback(|_: &mut Context, _: Bytes| Ok(bytes("fallback")))
        .unwrap();
    let link = Link::new(protocol.clone(), router);
    let cases = [
        ("by-name", 9, "id"),
        ("by-name", 0, "name"),
        ("", 0, "fallback"),
        ("other", 0, "fallback"),
    ];
    for (seq, (uri, id, want)) in cases.into_iter().enumerate() {
        let mut head = Head::request(Route::Uri(uri), seq as u64 + 1);
        head.id = id;
        link.server
            .handle_frame(body(&protocol, &head, b""))
            .unwrap();
        let out = drain(&protocol, &link.to_client);
        assert_eq!(
            &out[0].payload()[..],
            want.as_bytes(),
            "uri {uri:?} id {id}"
        );
    }
}

/// BEHAVIOURS 6: duplicate name, duplicate id, second fallback.
#[test]
fn b06_duplicate_registrations_fail() {
    let mut router = Router::new(RawCodec);
    let h = |_: &mut Context, r: Bytes| Ok(r);
    router.route("a", h).unwrap();
    router.route_id(1, h).unwrap();
    router.fallback(h).unwrap();
    assert_eq!(
        router.route("a", h).unwrap_err(),
        RouteError::DuplicateName("a".into())
    );
    assert_eq!(
        router.route_id(1, h).unwrap_err(),
        RouteError::DuplicateId(1)
    );
    assert_eq!(
        router.fallback(h).unwrap_err(),
        RouteError::DuplicateFallback
    );
    assert_eq!(router.route_id(0, h).unwrap_err(), RouteError::ZeroId);
    assert_eq!(router.route("", h).unwrap_err(), RouteError::EmptyName);
}

/// BEHAVIOURS 7: global middleware covers routes registered before and
/// after it.
#[test]
fn b07_global_middleware_covers_every_route() {
    let seen = Arc::new(AtomicUsize::new(0));
    let mut router = Router::new(RawCodec);
    router
        .route("before", |_: &mut Context, r: Bytes| Ok(r))
        .unwrap();
    let s = seen.clone();
    router.middleware(move |ctx: &mut Context, next: Next<'_>| {
        s.fetch_add(1, Ordering::SeqCst);
        next.run(ctx)
    });
    router
        .route("after", |_: &mut Context, r: Bytes| Ok(r))
        .unwrap();
    let mut link = Link::new(walle(), router);
    let mut a = link.client.call::<Bytes, Bytes>("before", &bytes("1"));
    let mut b = link.client.call::<Bytes, Bytes>("after", &bytes("2"));
    link.pump();
    ready(&mut a).unwrap();
    ready(&mut b).unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

/// BEHAVIOURS 8 and 22: abort stops the chain, answers with its error and
/// releases the load count.
#[test]
fn b08_b22_abort_stops_chain_and_releases_load() {
    let load = LoadLimit::new(0);
    let ran = Arc::new(AtomicUsize::new(0));
    let mut router = Router::new(RawCodec);
    let r = ran.clone();
    router
        .route("guarded", move |_: &mut Context, q: Bytes| {
            r.fetch_add(1, Ordering::SeqCst);
            Ok(q)
        })
        .unwrap();
    let l = load.clone();
    router.middleware(move |ctx: &mut Context, next: Next<'_>| {
        assert_eq!(l.current(), 1, "the request holds its place while handled");
        if ctx.metadata().get("token").is_none() {
            ctx.abort(Status::new(1003, "no token"));
        }
        next.run(ctx) // does nothing after abort
    });
    let mut link = Link::with(
        walle(),
        Router::new(RawCodec),
        router,
        |b| b,
        |b| b.load_limit(load.clone()),
    );
    let mut call = link.client.call::<Bytes, Bytes>("guarded", &bytes("x"));
    link.pump();
    match ready(&mut call) {
        Err(Error::Remote { code, desc }) => {
            assert_eq!((code, desc.as_str()), (Code(1003), "no token"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the handler must not run");
    assert_eq!(load.current(), 0, "the load count is released");

    let md: Metadata = [("token", "t")].into_iter().collect();
    let options = CallOptions {
        metadata: Some(&md),
        ..CallOptions::default()
    };
    let mut call = link
        .client
        .call_with::<Bytes, Bytes>("guarded", &bytes("y"), options);
    link.pump();
    assert_eq!(ready(&mut call).unwrap(), bytes("y"));
    assert_eq!((ran.load(Ordering::SeqCst), load.current()), (1, 0));
}

#[derive(Clone, Debug, PartialEq)]
struct UserId(u64);

/// BEHAVIOURS 9: session values and request metadata reach the handler.
#[test]
fn b09_session_values_and_metadata_in_context() {
    let mut router = Router::new(RawCodec);
    router
        .route("whoami", |ctx: &mut Context, _: Bytes| {
            let user = ctx.session().get::<UserId>().ok_or("no user")?;
            let lang = ctx.metadata().get("lang").unwrap_or("?");
            Ok(Bytes::from(format!(
                "{} {lang} {}",
                user.0,
                ctx.session().id()
            )))
        })
        .unwrap();
    let session = Session::new(77);
    session.insert(UserId(5));
    let mut link = Link::with(
        walle(),
        Router::new(RawCodec),
        router,
        |b| b,
        |b| b.session(session),
    );
    let md: Metadata = [("lang", "fr")].into_iter().collect();
    let options = CallOptions {
        metadata: Some(&md),
        ..CallOptions::default()
    };
    let mut call = link
        .client
        .call_with::<Bytes, Bytes>("whoami", &Bytes::new(), options);
    link.pump();
    assert_eq!(ready(&mut call).unwrap(), bytes("5 fr 77"));
}

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

/// BEHAVIOURS 22 and 23: the load count follows requests however they end;
/// a rejection is an error response with code 10 and leaks no count.
#[test]
fn b22_b23_load_limit() {
    let load = LoadLimit::new(1);
    let mut router = Router::new(RawCodec);
    router
        .route("fail", |_: &mut Context, _: Bytes| -> Result<Bytes, _> {
            Err("boom".into())
        })
        .unwrap();
    let link = Link::with(
        walle(),
        Router::new(RawCodec),
        router,
        |b| b,
        |b| b.load_limit(load.clone()),
    );

    // An error ends the request: the count is released.
    link.server
        .handle_frame(body(&walle(), &Head::request(Route::Uri("fail"), 1), b""))
        .unwrap();
    assert_eq!(load.current(), 0);

    // Hold the only place, then send another request.
    let guard = load.try_acquire().unwrap();
    link.server
        .handle_frame(body(&walle(), &Head::request(Route::Uri("fail"), 2), b""))
        .unwrap();
    let out = drain(&walle(), &link.to_client);
    let refused = out.iter().find(|p| p.seq() == 2).unwrap();
    assert!(refused.is_error());
    let (code, _) = walle()
        .wrapper()
        .decode_error(refused.payload_ref())
        .unwrap();
    assert_eq!(code, Code::OVERLOADED);
    assert_eq!(load.current(), 1, "the refusal took no place");
    drop(guard);
    assert_eq!(load.current(), 0);
    assert_eq!(link.server.stats().rejected, 1);
}

/// DESIGN: middleware can move the rest of the chain to another executor;
/// the request is answered from there, and its errors too.
#[test]
fn middleware_moves_the_chain_to_another_thread() {
    let mut router = Router::new(RawCodec);
    router
        .route("where", |_: &mut Context, _: Bytes| {
            Ok(Bytes::from(
                std::thread::current().name().unwrap_or("?").to_string(),
            ))
        })
        .unwrap();
    router
        .route("fails", |_: &mut Context, _: Bytes| -> Result<Bytes, _> {
            Err(Status::new(1500, "no").into())
        })
        .unwrap();
    router.middleware(|ctx: &mut Context, next: Next<'_>| {
        let next = next.into_owned(ctx);
        let mut owned = ctx.defer();
        std::thread::Builder::new()
            .name("elsewhere".into())
            .spawn(move || {
                if let Err(e) = next.run(&mut owned) {
                    owned.abort(e);
                }
            })
            .unwrap()
            .join()
            .unwrap();
        Ok(())
    });
    let mut link = Link::new(walle(), router);
    let mut here = link.client.call::<Bytes, Bytes>("where", &Bytes::new());
    let mut fails = link.client.call::<Bytes, Bytes>("fails", &Bytes::new());
    link.pump();
    assert_eq!(ready(&mut here).unwrap(), bytes("elsewhere"));
    assert_eq!(ready(&mut fails).unwrap_err().code(), Code(1500));
}
