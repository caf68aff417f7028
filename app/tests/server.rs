//! BEHAVIOURS 61 with a real server on `mem://`: on stop the node goes
//! offline, a client proxy sees it while the server still accepts, then the
//! server stops and the node is deregistered.

use std::time::Duration;

use bytes::Bytes;
use walle_app::{App, ServerService, ServiceOptions};
use walle_clientproxy::{ClientProxy, EntryStatus, Error as ProxyError};
use walle_codec::RawCodec;
use walle_discovery::{Drivers, Node};
use walle_net::{Backend, Server};
use walle_process::{Context, Router};

const BOUND: Duration = Duration::from_secs(10);

async fn until<F: Future<Output = ()>>(
    what: &str,
    mut check: impl FnMut() -> bool,
    mut event: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + BOUND;
    while !check() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "timed out waiting for {what}");
        let _ = tokio::time::timeout(left.min(Duration::from_millis(50)), event()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b61_stop_goes_offline_for_the_proxy_before_the_server_stops_then_deregisters() {
    let target = "mem:///app-tests/echo";
    let mut router = Router::new(RawCodec);
    router
        .route("echo", |_: &mut Context, req: Bytes| Ok(req))
        .expect("route");
    let service = ServerService::new(
        "echo-server",
        Server::builder(router).backend(Backend::tcp()),
        "127.0.0.1:0",
    )
    .register(
        Drivers::new(),
        target,
        Node::new("").with_id("echo-1"),
        Duration::from_secs(3),
    )
    .offline_grace(Duration::from_secs(4));
    let bound = service.bound_addr();
    let app = App::builder()
        .signals(false)
        .service_with(service, ServiceOptions::default().stop_timeout(BOUND))
        .build();
    let stop = app.stop_handle();
    let run = tokio::spawn(app.run());

    let proxy = ClientProxy::builder(target, Router::new(RawCodec))
        .backend(Backend::tcp())
        .connect()
        .await
        .expect("proxy");
    until(
        "the node to appear online",
        || {
            proxy
                .stats()
                .iter()
                .any(|s| s.id == "echo-1" && s.status == EntryStatus::Idle)
        },
        || proxy.changed(),
    )
    .await;
    let addr = bound.get().expect("bound once registered");
    assert_eq!(
        proxy.stats()[0].addr,
        addr.to_string(),
        "published with the bound address"
    );
    let answer: Bytes = proxy
        .call("echo", &Bytes::from_static(b"hi"))
        .await
        .expect("call");
    assert_eq!(answer, Bytes::from_static(b"hi"));

    stop.stop();
    until(
        "the proxy to see the node offline",
        || {
            proxy
                .stats()
                .iter()
                .any(|s| s.id == "echo-1" && s.status == EntryStatus::Offline)
        },
        || proxy.changed(),
    )
    .await;
    // Offline in the proxy while the server still accepts connections.
    assert!(!run.is_finished(), "the app finished before the grace");
    tokio::net::TcpStream::connect(addr)
        .await
        .expect("the server still accepts");
    let err = proxy
        .call::<_, Bytes>("echo", &Bytes::from_static(b"hi"))
        .await
        .expect_err("an offline node is not picked");
    assert!(matches!(err, ProxyError::NoNode { .. }), "{err:?}");

    let report = tokio::time::timeout(BOUND, run)
        .await
        .expect("bound")
        .expect("join")
        .expect("run");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(
        report.sequence(),
        [
            "init echo-server",
            "start echo-server",
            "stop echo-server",
            "finish echo-server"
        ]
    );
    until(
        "the node to be deregistered",
        || proxy.stats().is_empty(),
        || proxy.changed(),
    )
    .await;
    // The tcp backend may wind down in the background: poll, bounded.
    let deadline = tokio::time::Instant::now() + BOUND;
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server still accepts"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b61_stop_waits_for_a_request_in_flight_before_stopping_the_server() {
    let mut router = Router::new(RawCodec);
    let (entered_tx, entered) = tokio::sync::oneshot::channel::<()>();
    let entered_tx = std::sync::Mutex::new(Some(entered_tx));
    router
        .route_async("slow", move |ctx: Context, req: Bytes| {
            let entered = entered_tx.lock().expect("lock").take();
            async move {
                if let Some(entered) = entered {
                    let _ = entered.send(());
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                (ctx, Ok(req))
            }
        })
        .expect("route");
    let service = ServerService::new(
        "slow-server",
        Server::builder(router).backend(Backend::tcp()),
        "127.0.0.1:0",
    );
    let bound = service.bound_addr();
    let app = App::builder()
        .signals(false)
        .service_with(service, ServiceOptions::default().stop_timeout(BOUND))
        .build();
    let stop = app.stop_handle();
    let run = tokio::spawn(app.run());
    let addr = bound.wait(BOUND).await.expect("bound");

    let client = walle_net::Client::builder(addr, Router::new(RawCodec))
        .backend(Backend::tcp())
        .connect()
        .await
        .expect("client");
    let call = tokio::spawn(async move {
        client
            .call::<Bytes, Bytes>("slow", &Bytes::from_static(b"late"))
            .await
    });
    tokio::time::timeout(BOUND, entered)
        .await
        .expect("the handler ran in time")
        .expect("entered");
    stop.stop();
    let answer = tokio::time::timeout(BOUND, call)
        .await
        .expect("bound")
        .expect("join");
    assert_eq!(
        answer.expect("answered before the server stopped"),
        Bytes::from_static(b"late")
    );
    let report = tokio::time::timeout(BOUND, run)
        .await
        .expect("bound")
        .expect("join")
        .expect("run");
    assert!(report.is_clean(), "{report:?}");
}
