//! The dispatch strategies run the same handlers: Inline, Pool(n),
//! Keyed(n) (per-key order) and Tokio, plus async handlers and full queues.

mod util;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use util::{Link, bytes, ready, walle};
use walle_codec::{Code, RawCodec};
use walle_process::{Context, Dispatch, Dispatcher, Error, Router, Session};

const WALL: Duration = Duration::from_secs(10);

fn router(log: Arc<Mutex<Vec<(String, u64)>>>) -> Router<RawCodec> {
    let mut router = Router::new(RawCodec);
    router
        .route("echo", move |ctx: &mut Context, req: Bytes| {
            let thread = std::thread::current().name().unwrap_or("?").to_string();
            log.lock().unwrap().push((thread, ctx.session().id()));
            Ok(req)
        })
        .unwrap();
    router
        .route_async("async", |ctx: Context, req: Bytes| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            (ctx, Ok(req))
        })
        .unwrap();
    router
}

fn link(dispatcher: Dispatcher, log: Arc<Mutex<Vec<(String, u64)>>>, session: u64) -> Link {
    let dispatcher = Arc::new(dispatcher);
    Link::with(
        walle(),
        Router::new(RawCodec),
        router(log),
        |b| b,
        |b| b.dispatcher(dispatcher).session(Session::new(session)),
    )
}

#[test]
fn every_strategy_answers_the_same() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let strategies = [
        Dispatch::Inline,
        Dispatch::Pool(3),
        Dispatch::Keyed(3),
        Dispatch::Tokio,
    ];
    for strategy in strategies {
        let log = Arc::default();
        let dispatcher = Dispatcher::new(strategy, 64)
            .unwrap()
            .with_runtime(runtime.handle().clone());
        let mut link = link(dispatcher, log, 1);
        for i in 0..50u32 {
            let payload = Bytes::from(i.to_be_bytes().to_vec());
            let mut call = link.client.call::<Bytes, Bytes>("echo", &payload);
            let answer = link.drive(&mut call, WALL).expect("answered in time");
            assert_eq!(answer.unwrap(), payload, "{strategy:?}");
            let mut call = link.client.call::<Bytes, Bytes>("async", &payload);
            let answer = link.drive(&mut call, WALL).expect("answered in time");
            assert_eq!(answer.unwrap(), payload, "{strategy:?} async");
        }
    }
}

#[test]
fn pool_runs_on_workers_and_inline_on_the_caller() {
    let log: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let mut link = link(
        Dispatcher::new(Dispatch::Pool(2), 64).unwrap(),
        log.clone(),
        1,
    );
    let mut call = link.client.call::<Bytes, Bytes>("echo", &bytes("x"));
    link.drive(&mut call, WALL).unwrap().unwrap();
    assert!(log.lock().unwrap()[0].0.starts_with("walle-worker-"));

    let log: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let mut link = link_inline(log.clone());
    let mut call = link.client.call::<Bytes, Bytes>("echo", &bytes("x"));
    link.pump();
    ready(&mut call).unwrap();
    let me = std::thread::current().name().unwrap_or("?").to_string();
    assert_eq!(log.lock().unwrap()[0].0, me);
}

fn link_inline(log: Arc<Mutex<Vec<(String, u64)>>>) -> Link {
    link(Dispatcher::inline(), log, 1)
}

/// Keyed dispatch keeps each key's requests in order on one worker, while
/// different keys spread over the workers.
#[test]
fn keyed_keeps_per_key_order() {
    let dispatcher = Arc::new(Dispatcher::new(Dispatch::Keyed(4), 1024).unwrap());
    let seen: Arc<Mutex<Vec<(u64, u32, String)>>> = Arc::default();
    let mut links = Vec::new();
    for session in 0..8u64 {
        let mut router = Router::new(RawCodec);
        let s = seen.clone();
        router
            .route("step", move |ctx: &mut Context, req: Bytes| {
                let n = u32::from_be_bytes(req[..4].try_into().unwrap());
                let worker = std::thread::current().name().unwrap_or("?").to_string();
                s.lock().unwrap().push((ctx.session().id(), n, worker));
                Ok(req)
            })
            .unwrap();
        let d = dispatcher.clone();
        links.push(Link::with(
            walle(),
            Router::new(RawCodec),
            router,
            |b| b,
            |b| b.dispatcher(d).session(Session::new(session)),
        ));
    }
    for n in 0..200u32 {
        for link in &links {
            link.client
                .notify("step", &Bytes::from(n.to_be_bytes().to_vec()))
                .unwrap();
        }
    }
    for link in &mut links {
        link.pump();
    }
    let deadline = std::time::Instant::now() + WALL;
    while seen.lock().unwrap().len() < 1600 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1600);
    let mut workers = std::collections::HashSet::new();
    for session in 0..8u64 {
        let steps: Vec<_> = seen.iter().filter(|(s, ..)| *s == session).collect();
        let order: Vec<u32> = steps.iter().map(|(_, n, _)| *n).collect();
        assert_eq!(
            order,
            (0..200).collect::<Vec<_>>(),
            "session {session} out of order"
        );
        let on: std::collections::HashSet<_> = steps.iter().map(|(.., w)| w.clone()).collect();
        assert_eq!(on.len(), 1, "one key, one worker");
        workers.extend(on);
    }
    assert!(workers.len() > 1, "keys spread over workers");
}

/// A full worker queue refuses with code 10 instead of blocking or growing.
#[test]
fn full_queue_answers_overloaded() {
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let mut router = Router::new(RawCodec);
    let g = gate.clone();
    router
        .route("slow", move |_: &mut Context, req: Bytes| {
            drop(g.lock().unwrap());
            Ok(req)
        })
        .unwrap();
    let dispatcher = Arc::new(Dispatcher::new(Dispatch::Pool(1), 2).unwrap());
    let mut link = Link::with(
        walle(),
        Router::new(RawCodec),
        router,
        |b| b,
        |b| b.dispatcher(dispatcher),
    );
    let mut calls: Vec<_> = (0..10)
        .map(|_| link.client.call::<Bytes, Bytes>("slow", &bytes("x")))
        .collect();
    link.pump();
    // One running, two queued, the rest refused at once.
    let mut refused = 0;
    for call in &mut calls {
        if let std::task::Poll::Ready(Err(Error::Remote { code, .. })) = util::poll(call) {
            assert_eq!(code, Code::OVERLOADED);
            refused += 1;
        }
    }
    assert!(refused >= 7, "refused {refused}");
    drop(held);
    for call in &mut calls {
        let _ = link.drive(call, WALL).expect("every call ends");
    }
    assert_eq!(link.server.stats().rejected, refused);
}

#[test]
fn async_handler_without_runtime_is_not_supported() {
    let mut link = link_inline(Arc::default());
    let mut call = link.client.call::<Bytes, Bytes>("async", &bytes("x"));
    link.pump();
    match ready(&mut call) {
        Err(Error::Remote { code, desc }) => {
            assert_eq!(code, Code::NOT_SUPPORTED);
            assert!(desc.contains("runtime"), "{desc}");
        }
        other => panic!("{other:?}"),
    }
}
