//! `ProxyService`: the app's start waits for the proxy's nodes (and rolls
//! back when they do not come), and its stop closes the proxy after the
//! services started after it have stopped.

use std::time::Duration;

use bytes::Bytes;
use walle_app::{App, Error, ProxyService, ServerService};
use walle_clientproxy::{ClientProxy, Error as ProxyError};
use walle_codec::RawCodec;
use walle_discovery::{Drivers, Node};
use walle_net::{Backend, Server};
use walle_process::{Context, Router};

const BOUND: Duration = Duration::from_secs(10);

async fn proxy(target: &str) -> ClientProxy<RawCodec> {
    ClientProxy::builder(target, Router::new(RawCodec))
        .backend(Backend::tcp())
        .connect()
        .await
        .expect("proxy")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_waits_for_a_node_then_stop_closes_the_proxy_after_the_server() {
    let target = "mem:///app-tests/proxy-wait";
    let proxy = proxy(target).await;
    let front = ServerService::new(
        "front",
        Server::builder(Router::new(RawCodec)).backend(Backend::tcp()),
        "127.0.0.1:0",
    );
    let front_bound = front.bound_addr();
    let app = App::builder()
        .signals(false)
        .service(ProxyService::new("nodes", proxy.clone()).wait_for_nodes(1, BOUND))
        .service(front)
        .build();
    let stop = app.stop_handle();
    let run = tokio::spawn(app.run());

    // The front server does not start before a node is online.
    let changed = proxy.changed();
    assert!(front_bound.get().is_none(), "started before any node");
    let mut router = Router::new(RawCodec);
    router
        .route("echo", |_: &mut Context, req: Bytes| Ok(req))
        .expect("route");
    let node = Server::builder(router)
        .backend(Backend::tcp())
        .bind("127.0.0.1:0")
        .expect("bind");
    let _reg = Drivers::new()
        .register(
            target,
            Node::new(node.local_addr().to_string()).with_id("n1"),
            Duration::from_secs(30),
        )
        .await
        .expect("register");
    tokio::time::timeout(BOUND, changed).await.expect("seen");
    let answer: Bytes = proxy
        .call("echo", &Bytes::from_static(b"hi"))
        .await
        .expect("call");
    assert_eq!(answer, Bytes::from_static(b"hi"));

    stop.stop();
    let report = tokio::time::timeout(BOUND, run)
        .await
        .expect("bound")
        .expect("join")
        .expect("run");
    assert_eq!(
        report.sequence(),
        [
            "init nodes",
            "init front",
            "start nodes",
            "start front",
            "stop front",
            "stop nodes",
            "finish front",
            "finish nodes"
        ]
    );
    assert!(front_bound.get().is_some());
    assert!(proxy.is_closed());
    let closed = proxy.call::<Bytes, Bytes>("echo", &Bytes::new()).await;
    assert!(
        matches!(closed, Err(ProxyError::Closed { .. })),
        "{closed:?}"
    );
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_never_comes_fails_the_start_and_rolls_back() {
    let proxy = proxy("mem:///app-tests/proxy-none").await;
    let app = App::builder()
        .signals(false)
        .service(
            ProxyService::new("nodes", proxy.clone()).wait_for_nodes(1, Duration::from_millis(100)),
        )
        .build();
    let err = tokio::time::timeout(BOUND, app.run())
        .await
        .expect("bound")
        .expect_err("no node");
    let Error::Start {
        service, source, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(service, "nodes");
    assert_eq!(
        source.to_string(),
        "0 of 1 nodes of mem:///app-tests/proxy-none online after 100ms"
    );
    assert_eq!(
        err.report().expect("report").sequence(),
        ["init nodes", "start nodes", "finish nodes"]
    );
}
