//! The dispatch strategies run the same handlers: Inline, Pool(n),
//! Keyed(n) (per-key order) and Tokio, plus async handlers and full queues.
//! Processes are linked in memory, with the process layer's own test
//! link: where handlers run needs no socket.

#[path = "../../process/tests/util/mod.rs"]
mod link;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use link::{Link, bytes, ready, walle};
use walle_codec::{Code, RawCodec};
use walle_net::{DEFAULT_MAX_TASKS, DispatchOptions, Dispatcher, Strategy};
use walle_process::{Context, Error, Router, Session};

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
        Strategy::Inline,
        Strategy::Pool(3),
        Strategy::Keyed(3),
        Strategy::Tokio,
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
        Dispatcher::new(Strategy::Pool(2), 64).unwrap(),
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
    let dispatcher = Arc::new(Dispatcher::new(Strategy::Keyed(4), 1024).unwrap());
    let seen: Arc<Mutex<Vec<(u64, u32, String)>>> = Arc::default();
    let (stepped, steps) = std::sync::mpsc::channel::<()>();
    let mut links = Vec::new();
    for session in 0..8u64 {
        let mut router = Router::new(RawCodec);
        let s = seen.clone();
        let stepped = stepped.clone();
        router
            .route("step", move |ctx: &mut Context, req: Bytes| {
                let n = u32::from_be_bytes(req[..4].try_into().unwrap());
                let worker = std::thread::current().name().unwrap_or("?").to_string();
                s.lock().unwrap().push((ctx.session().id(), n, worker));
                let _ = stepped.send(());
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
    // Wait for each step itself, not for a while.
    let end = Instant::now() + WALL;
    for _ in 0..1600 {
        let left = end.saturating_duration_since(Instant::now());
        steps.recv_timeout(left).expect("every step runs in time");
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
    let dispatcher = Arc::new(Dispatcher::new(Strategy::Pool(1), 2).unwrap());
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
        if let std::task::Poll::Ready(Err(Error::Remote { code, .. })) = link::poll(call) {
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

/// A gate async handlers wait at until the test opens it.
#[derive(Default)]
struct Gate {
    open: AtomicBool,
    waiting: Mutex<Vec<Waker>>,
}

impl Gate {
    async fn pass(&self) {
        std::future::poll_fn(|cx| {
            let mut waiting = self.waiting.lock().unwrap();
            if self.open.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            waiting.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    fn open(&self) {
        let mut waiting = self.waiting.lock().unwrap();
        self.open.store(true, Ordering::SeqCst);
        waiting.drain(..).for_each(Waker::wake);
    }
}

/// Polls `done` every millisecond until it holds or `WALL` passes.
fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + WALL;
    while !done() {
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

fn gated_router(gate: Arc<Gate>) -> Router<RawCodec> {
    let mut router = Router::new(RawCodec);
    router
        .route_async("gated", move |ctx: Context, req: Bytes| {
            let gate = gate.clone();
            async move {
                gate.pass().await;
                (ctx, Ok(req))
            }
        })
        .unwrap();
    router
}

/// Async handlers (and `Strategy::Tokio`) are bounded by default, and a
/// request over the bound is answered with code 10 at once.
#[test]
fn tokio_tasks_are_bounded_and_refused_with_overloaded() {
    assert_eq!(DispatchOptions::default().max_tasks, DEFAULT_MAX_TASKS);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for kind in [Strategy::Inline, Strategy::Tokio] {
        let gate = Arc::new(Gate::default());
        let options = DispatchOptions::default().max_tasks(2);
        let dispatcher = Arc::new(
            Dispatcher::with_options(kind, options)
                .unwrap()
                .with_runtime(runtime.handle().clone()),
        );
        let d = dispatcher.clone();
        let mut link = Link::with(
            walle(),
            Router::new(RawCodec),
            gated_router(gate.clone()),
            |b| b,
            |b| b.dispatcher(d),
        );
        let mut calls: Vec<_> = (0..6)
            .map(|_| link.client.call::<Bytes, Bytes>("gated", &bytes("x")))
            .collect();
        let mut results: Vec<Option<Result<Bytes, Error>>> = (0..6).map(|_| None).collect();
        let mut settle = |link: &mut Link, results: &mut Vec<Option<Result<Bytes, Error>>>| {
            link.pump();
            for (call, result) in calls.iter_mut().zip(results.iter_mut()) {
                if result.is_none() {
                    if let Poll::Ready(r) = link::poll(call) {
                        *result = Some(r);
                    }
                }
            }
            results.iter().filter(|r| r.is_some()).count()
        };
        // At most two handlers hold a place at the gate: the rest are
        // answered at once.
        assert!(wait_for(|| settle(&mut link, &mut results) >= 4));
        let refused = results.iter().flatten().count();
        for result in results.iter().flatten() {
            match result {
                Err(Error::Remote { code, .. }) => assert_eq!(*code, Code::OVERLOADED),
                other => panic!("{kind:?}: {other:?}"),
            }
        }
        assert!(dispatcher.tasks_in_flight() <= 2 + 2, "{kind:?}");
        gate.open();
        assert!(wait_for(|| settle(&mut link, &mut results) == 6));
        let answered = results
            .iter()
            .flatten()
            .filter(|r| matches!(r, Ok(answer) if *answer == bytes("x")))
            .count();
        assert_eq!(answered + refused, 6, "{kind:?}: {results:?}");
        assert!(answered >= 1, "{kind:?}: the bound let nothing through");
        assert!(
            wait_for(|| dispatcher.tasks_in_flight() == 0),
            "a place leaked"
        );
        assert_eq!(link.server.stats().rejected, refused as u64);
    }
}

/// `Strategy::Tokio` with no runtime anywhere answers with code 4 and a
/// message that names what is missing, not "dispatch queue full"; the
/// dispatcher can say so before any request.
#[test]
fn tokio_dispatch_without_runtime_says_what_is_missing() {
    let dispatcher = Dispatcher::new(Strategy::Tokio, 64).unwrap();
    let err = dispatcher.check_runtime().expect_err("no runtime here");
    assert!(matches!(err, Error::NoRuntime(_)), "{err}");
    assert!(err.to_string().contains("Strategy::Tokio"), "{err}");
    let mut link = link(dispatcher, Arc::default(), 1);
    let mut call = link.client.call::<Bytes, Bytes>("echo", &bytes("x"));
    link.pump();
    match ready(&mut call) {
        Err(Error::Remote { code, desc }) => {
            assert_eq!(code, Code::NOT_SUPPORTED);
            assert!(desc.contains("need a tokio runtime"), "{desc}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(link.server.stats().rejected, 1);
}

/// A dispatcher made inside a runtime keeps it, so io threads that have
/// none (the event loop's) can dispatch to it.
#[test]
fn a_dispatcher_made_inside_a_runtime_uses_it_from_other_threads() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dispatcher = {
        let _inside = runtime.enter();
        Dispatcher::new(Strategy::Tokio, 64).unwrap()
    };
    dispatcher.check_runtime().expect("kept the runtime");
    let log: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let mut link = link(dispatcher, log.clone(), 1);
    for name in ["echo", "async"] {
        let mut call = link.client.call::<Bytes, Bytes>(name, &bytes("x"));
        let answer = link.drive(&mut call, WALL).expect("answered in time");
        assert_eq!(answer.unwrap(), bytes("x"), "{name}");
    }
    assert_eq!(log.lock().unwrap().len(), 1);
}

/// A current-thread runtime runs tasks only while its owner polls it: a
/// dispatcher made inside one does not keep it, so it reports a missing
/// runtime where none is current instead of sending tasks that may never
/// run.
#[test]
fn a_dispatcher_made_inside_a_current_thread_runtime_does_not_keep_it() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dispatcher = {
        let _inside = runtime.enter();
        Dispatcher::new(Strategy::Tokio, 64).unwrap()
    };
    assert!(matches!(
        dispatcher.check_runtime(),
        Err(walle_process::Error::NoRuntime(_))
    ));
}
