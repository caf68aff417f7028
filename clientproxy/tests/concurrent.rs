//! Many calls at once through one proxy; a target no driver knows.

mod support;

use bytes::Bytes;
use support::{node_server, register, target, until};
use walle_clientproxy::{ClientProxy, Error, ProxyOptions};
use walle_codec::RawCodec;
use walle_net::Backend;
use walle_process::Router;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_picks_share_one_dial_per_entry() {
    let target = target("concurrent");
    let servers = [node_server("a"), node_server("b"), node_server("c")];
    let mut regs = Vec::new();
    for (name, server) in ["a", "b", "c"].into_iter().zip(&servers) {
        regs.push(register(&target, name, server).await);
    }
    for balancer in ["least_outstanding", "random", "round_robin"] {
        let proxy: ClientProxy<RawCodec> = ClientProxy::builder(&target, Router::new(RawCodec))
            .backend(Backend::tcp())
            .options(ProxyOptions::default().balancer(balancer))
            .connect()
            .await
            .expect("proxy");
        let calls: Vec<_> = (0..300)
            .map(|_| {
                let proxy = proxy.clone();
                tokio::spawn(async move { proxy.call::<Bytes, Bytes>("echo", &Bytes::new()).await })
            })
            .collect();
        for call in calls {
            call.await.expect("task").expect("every call succeeds");
        }
        let stats = proxy.stats();
        assert_eq!(stats.iter().map(|s| s.calls).sum::<u64>(), 300, "{stats:?}");
        assert!(
            stats.iter().all(|s| s.failures == 0 && s.in_flight == 0),
            "{stats:?}"
        );
        for server in &servers {
            assert_eq!(
                server.session_count(),
                1,
                "one connection per entry: {stats:?}"
            );
        }
        drop(proxy);
        until(
            "the dropped proxy's clients to close",
            || servers.iter().all(|s| s.session_count() == 0),
            || tokio::time::sleep(std::time::Duration::from_millis(5)),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b59_an_unknown_scheme_is_a_discovery_error_naming_the_known_ones() {
    let err = ClientProxy::builder("consul://127.0.0.1:8500/echo", Router::new(RawCodec))
        .connect()
        .await
        .expect_err("unknown scheme");
    assert!(matches!(err, Error::Discovery(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("consul") && text.contains("mem") && text.contains("static"),
        "{text}"
    );

    let err = ClientProxy::builder("mem:///x", Router::new(RawCodec))
        .options(ProxyOptions::default().balancer("fastest"))
        .connect()
        .await
        .expect_err("unknown balancer");
    assert!(matches!(err, Error::UnknownBalancer { .. }), "{err:?}");
}
