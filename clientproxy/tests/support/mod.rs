//! Echo nodes on real sockets, registered on a `mem://` target.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use walle_clientproxy::{ClientProxy, ProxyOptions};
use walle_codec::RawCodec;
use walle_discovery::{Drivers, Node, Registration};
use walle_net::{Backend, Server};
use walle_process::{Context, Router};

/// A server whose `echo` route answers with its node name.
pub fn node_server(name: &'static str) -> Server<RawCodec> {
    let mut router = Router::new(RawCodec);
    router
        .route("echo", move |_: &mut Context, _req: Bytes| {
            Ok(Bytes::from_static(name.as_bytes()))
        })
        .expect("route");
    Server::builder(router)
        .backend(Backend::tcp())
        .bind("127.0.0.1:0")
        .expect("bind")
}

/// A node that takes calls and never answers in time (a minute).
pub fn stuck_server() -> Server<RawCodec> {
    let mut router = Router::new(RawCodec);
    router
        .route_async("echo", |ctx: Context, req: Bytes| async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            (ctx, Ok(req))
        })
        .expect("route");
    Server::builder(router)
        .backend(Backend::tcp())
        .bind("127.0.0.1:0")
        .expect("bind")
}

/// A proxy of `target` with tcp clients.
pub async fn proxy(target: &str, options: ProxyOptions) -> ClientProxy<RawCodec> {
    ClientProxy::builder(target, Router::new(RawCodec))
        .backend(Backend::tcp())
        .options(options)
        .connect()
        .await
        .expect("proxy")
}

/// Registers `server` as node `name` under `target`.
pub async fn register(target: &str, name: &str, server: &Server<RawCodec>) -> Registration {
    let node = Node::new(server.local_addr().to_string()).with_id(name);
    Drivers::new()
        .register(target, node, Duration::from_secs(30))
        .await
        .expect("register")
}

/// An address nothing listens on: a listener bound and dropped.
pub fn dead_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr.to_string()
}

/// A target of its own per test, on the process-wide mem store.
pub fn target(test: &str) -> String {
    format!("mem:///clientproxy-tests/{test}")
}

/// Waits (bounded) until `check` holds, looking again after each `event`.
pub async fn until<F: Future<Output = ()>>(
    what: &str,
    mut check: impl FnMut() -> bool,
    mut event: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "timed out waiting for {what}");
        let _ = tokio::time::timeout(left.min(Duration::from_millis(50)), event()).await;
    }
}
