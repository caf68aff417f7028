//! `ClientProxy::async_call`: the callback runs exactly once, with the
//! answer, the call's error, or `NoRuntime` when the runtime goes first;
//! and a call waiting for a node wakes when an entry's backoff ends.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use support::{dead_addr, node_server, proxy, stuck_server};
use walle_clientproxy::{ClientProxy, Error, HealthOptions, ProxyCallOptions, ProxyOptions};
use walle_codec::RawCodec;
use walle_net::{Backend, Server};
use walle_process::{Context, Router};

const BOUND: Duration = Duration::from_secs(10);

type Answer = Result<Bytes, Error>;

/// Starts an async call and returns where its callback's runs arrive.
fn start(proxy: &ClientProxy<RawCodec>, options: ProxyCallOptions<'_>) -> mpsc::Receiver<Answer> {
    let (tx, rx) = mpsc::channel();
    proxy.async_call("echo", Bytes::from_static(b"hi"), options, move |answer| {
        tx.send(answer).expect("the test waits");
    });
    rx
}

/// The one run of the callback; a second run would be a second message.
async fn only(rx: mpsc::Receiver<Answer>) -> Answer {
    tokio::task::spawn_blocking(move || {
        let answer = rx.recv_timeout(BOUND).expect("the callback ran");
        assert!(
            rx.recv_timeout(Duration::from_millis(1)).is_err(),
            "the callback ran twice"
        );
        answer
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_call_answers_through_its_callback_after_failing_over() {
    let live = node_server("live");
    let target = format!("static://{},{}", dead_addr(), live.local_addr());
    let proxy = proxy(&target, ProxyOptions::default()).await;
    for _ in 0..4 {
        let answer = only(start(&proxy, ProxyCallOptions::default())).await;
        assert_eq!(answer.expect("answered"), Bytes::from_static(b"live"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_call_with_no_node_runs_its_callback_with_no_node() {
    let target = support::target("async-none");
    let proxy = proxy(&target, ProxyOptions::default()).await;
    let answer = only(start(&proxy, ProxyCallOptions::default().key(b"user-7"))).await;
    assert!(answer.expect_err("no node").is_no_node());
}

#[test]
fn async_call_cut_by_its_runtime_shutting_down_runs_its_callback_once() {
    let serving = tokio::runtime::Runtime::new().expect("runtime");
    let stuck = serving.block_on(async { stuck_server() });
    let calling = tokio::runtime::Runtime::new().expect("runtime");
    let target = format!("static://{}", stuck.local_addr());
    let proxy = calling.block_on(proxy(&target, ProxyOptions::default()));
    let rx = start(&proxy, ProxyCallOptions::default());
    // The call is under way (dialling, or held by the node) when the runtime goes.
    let deadline = std::time::Instant::now() + BOUND;
    while proxy.stats()[0].in_flight == 0 {
        assert!(std::time::Instant::now() < deadline, "never in flight");
        std::thread::yield_now();
    }
    drop(calling);
    let answer = rx.recv_timeout(BOUND).expect("the callback ran");
    assert!(matches!(answer, Err(Error::NoRuntime)), "{answer:?}");
    assert!(
        rx.recv_timeout(Duration::from_millis(1)).is_err(),
        "ran twice"
    );
    drop(proxy);
    stuck.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_waiting_for_a_node_dials_again_when_the_backoff_ends() {
    let addr = dead_addr();
    let backoff = Duration::from_millis(300);
    let options = ProxyOptions::default()
        .health(HealthOptions::default().base(backoff).cap(backoff))
        .wait_for_node(BOUND);
    let proxy = proxy(&format!("static://{addr}"), options).await;
    let refused = proxy.call::<Bytes, Bytes>("echo", &Bytes::new()).await;
    assert!(matches!(refused, Err(Error::Connect { .. })), "{refused:?}");
    // The node comes up where nothing listened; no discovery event says so.
    let mut router = Router::new(RawCodec);
    router
        .route("echo", |_: &mut Context, _: Bytes| {
            Ok(Bytes::from_static(b"up"))
        })
        .expect("route");
    let server = Server::builder(router)
        .backend(Backend::tcp())
        .bind(addr.as_str())
        .expect("bind the freed port");
    let answer = tokio::time::timeout(BOUND, proxy.call::<Bytes, Bytes>("echo", &Bytes::new()))
        .await
        .expect("the waiting call ended in time");
    assert_eq!(
        answer.expect("answered after the backoff"),
        Bytes::from_static(b"up")
    );
    assert_eq!(proxy.stats()[0].failures, 1);
    server.stop();
}
