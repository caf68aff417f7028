//! A call that reached the wire is retried only when idempotent
//! (BEHAVIOURS 58).

mod support;

use std::time::Duration;

use bytes::Bytes;
use support::{node_server, stuck_server};
use walle_clientproxy::{ClientProxy, Error, ProxyCallOptions};
use walle_codec::RawCodec;
use walle_net::Backend;
use walle_process::{CallOptions, Router};

fn calls_on(proxy: &ClientProxy<RawCodec>, addr: &str) -> (u64, u64) {
    let stats = proxy.stats();
    let entry = stats.iter().find(|s| s.addr == addr).expect("entry");
    (entry.calls, entry.failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b58_a_call_on_the_wire_is_retried_only_when_idempotent() {
    let (stuck, live) = (stuck_server(), node_server("live"));
    let (stuck_addr, live_addr) = (
        stuck.local_addr().to_string(),
        live.local_addr().to_string(),
    );
    let target = format!("static://{stuck_addr},{live_addr}");
    let proxy: ClientProxy<RawCodec> = ClientProxy::builder(&target, Router::new(RawCodec))
        .backend(Backend::tcp())
        .connect()
        .await
        .expect("proxy");
    let timeout = CallOptions {
        timeout: Some(Duration::from_millis(1000)),
        ..CallOptions::default()
    };
    let once = ProxyCallOptions::default().call(timeout);

    // Round-robin over two entries: of two plain calls one lands on the
    // stuck node and fails; it is not tried again elsewhere.
    let mut timed_out = 0;
    for _ in 0..2 {
        match proxy
            .call_with::<Bytes, Bytes>("echo", &Bytes::new(), once)
            .await
        {
            Ok(answer) => assert_eq!(answer, Bytes::from_static(b"live")),
            Err(Error::Call(walle_process::Error::Timeout)) => timed_out += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(timed_out, 1);
    assert_eq!(calls_on(&proxy, &stuck_addr), (1, 1));
    assert_eq!(
        calls_on(&proxy, &live_addr),
        (1, 0),
        "the failed call was not re-sent"
    );

    // Marked idempotent, the same calls all succeed: the one on the stuck
    // node moves on to the live one.
    let again = once.idempotent(true);
    for _ in 0..2 {
        let answer: Bytes = proxy
            .call_with("echo", &Bytes::new(), again)
            .await
            .expect("retried");
        assert_eq!(answer, Bytes::from_static(b"live"));
    }
    let (stuck_calls, stuck_failures) = calls_on(&proxy, &stuck_addr);
    assert!(
        stuck_calls >= 2,
        "an idempotent call was tried on the stuck node"
    );
    assert_eq!(stuck_failures, stuck_calls);
    assert_eq!(
        calls_on(&proxy, &live_addr),
        (3, 0),
        "each call answered once"
    );
}
