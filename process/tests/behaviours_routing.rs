//! BEHAVIOURS 4-9 and 22-23 of the process layer, over two processes
//! wired back to back in memory: unknown routes, route choice, duplicate
//! registrations, global middleware, abort, session values and metadata in
//! the context, and the load limit.

mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use util::{Link, body, bytes, drain, echo_router, ready, walle};
use walle_codec::{Code, RawCodec};
use walle_packet::{Head, Metadata, ProtoFormat, Protocol, Route};
use walle_process::{
    CallOptions, Context, Error, LoadLimit, Next, RouteError, Router, Session, Status,
};

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
