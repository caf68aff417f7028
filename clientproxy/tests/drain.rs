//! A removed entry's client closes once its calls in flight end, or at the
//! drain bound (BEHAVIOURS 55).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use support::{register, target, until};
use walle_clientproxy::{ClientProxy, Error, ProxyOptions};
use walle_codec::RawCodec;
use walle_net::{Backend, Server};
use walle_process::{Context, Router};

/// A node whose `echo` answers after `delay`, and the count of requests
/// its handler has taken (so a test knows a call reached the node).
fn slow_server(delay: Duration) -> (Server<RawCodec>, Arc<AtomicUsize>) {
    let taken = Arc::new(AtomicUsize::new(0));
    let counter = taken.clone();
    let mut router = Router::new(RawCodec);
    router
        .route_async("echo", move |ctx: Context, req: Bytes| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(delay).await;
                (ctx, Ok(req))
            }
        })
        .expect("route");
    let server = Server::builder(router)
        .backend(Backend::tcp())
        .bind("127.0.0.1:0")
        .expect("bind");
    (server, taken)
}

async fn removed_during_a_call(
    test: &str,
    delay: Duration,
    drain: Duration,
) -> (Result<Bytes, Error>, Server<RawCodec>) {
    let target = target(test);
    let (server, taken) = slow_server(delay);
    let reg = register(&target, "slow", &server).await;
    let proxy: ClientProxy<RawCodec> = ClientProxy::builder(&target, Router::new(RawCodec))
        .backend(Backend::tcp())
        .options(ProxyOptions::default().drain(drain))
        .connect()
        .await
        .expect("proxy");
    let call = {
        let proxy = proxy.clone();
        tokio::spawn(async move {
            proxy
                .call::<Bytes, Bytes>("echo", &Bytes::from_static(b"x"))
                .await
        })
    };
    until(
        "the call to reach the node",
        || taken.load(Ordering::SeqCst) == 1,
        || tokio::time::sleep(Duration::from_millis(2)),
    )
    .await;
    reg.deregister().await.expect("deregister");
    until(
        "the entry to leave",
        || proxy.stats().is_empty(),
        || proxy.changed(),
    )
    .await;
    let result = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("bounded")
        .expect("task");
    (result, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b55_a_removed_entry_finishes_its_calls_then_closes() {
    let (result, server) = removed_during_a_call(
        "drain-ok",
        Duration::from_millis(300),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        result.expect("the pending call ends normally"),
        Bytes::from_static(b"x")
    );
    until(
        "the client to close",
        || server.session_count() == 0,
        || tokio::time::sleep(Duration::from_millis(5)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b55_a_removed_entry_closes_at_the_drain_bound() {
    let (result, server) = removed_during_a_call(
        "drain-bound",
        Duration::from_secs(30),
        Duration::from_millis(100),
    )
    .await;
    let err = result.expect_err("closed at the bound");
    assert!(
        matches!(err, Error::Call(walle_process::Error::SessionClosed)),
        "{err:?}"
    );
    until(
        "the client to close",
        || server.session_count() == 0,
        || tokio::time::sleep(Duration::from_millis(5)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_lets_the_call_in_flight_finish_then_refuses_calls_and_closes_clients() {
    let target = target("close");
    let (server, taken) = slow_server(Duration::from_millis(300));
    let _reg = register(&target, "slow", &server).await;
    let proxy: ClientProxy<RawCodec> = ClientProxy::builder(&target, Router::new(RawCodec))
        .backend(Backend::tcp())
        .connect()
        .await
        .expect("proxy");
    let call = {
        let proxy = proxy.clone();
        tokio::spawn(async move {
            proxy
                .call::<Bytes, Bytes>("echo", &Bytes::from_static(b"x"))
                .await
        })
    };
    until(
        "the call to reach the node",
        || taken.load(Ordering::SeqCst) == 1,
        || tokio::time::sleep(Duration::from_millis(2)),
    )
    .await;
    tokio::time::timeout(Duration::from_secs(10), proxy.close())
        .await
        .expect("close ended within its drain bound");
    // Answered, not cut: close waited for the call before closing its client.
    let answered = call.await.expect("task");
    assert_eq!(answered.expect("answered"), Bytes::from_static(b"x"));
    assert!(proxy.is_closed());
    let refused = proxy
        .call::<Bytes, Bytes>("echo", &Bytes::from_static(b"y"))
        .await
        .expect_err("closed");
    assert!(matches!(refused, Error::Closed { .. }), "{refused:?}");
    assert_eq!(
        refused.to_string(),
        format!("the client proxy of {target} is closed")
    );
    until(
        "the server to see the client go",
        || server.session_count() == 0,
        || tokio::time::sleep(Duration::from_millis(5)),
    )
    .await;
    // A second close resolves at once.
    tokio::time::timeout(Duration::from_secs(1), proxy.close())
        .await
        .expect("second close");
}
