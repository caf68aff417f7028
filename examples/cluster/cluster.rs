//! The parts of the cluster: a node, a gate, and all of them (plus a load
//! client) in one process on `mem://`.
#![allow(dead_code)] // the integration test uses only part of it

#[path = "load.rs"]
pub mod load;

use std::collections::HashMap;
use std::error::Error;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use walle::app::{
    App, BoundAddr, ProxyService, RunReport, ServerService, ServiceOptions, StopHandle,
};
use walle::clientproxy::{ClientProxy, ProxyOptions};
use walle::discovery::{Drivers, Node, Target};
use walle::net::{Dispatcher, Server, Strategy};
use walle::prelude::*;

/// The boxed error every part returns.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// How long a node's registration lives without renewal.
pub const NODE_TTL: Duration = Duration::from_secs(3);

/// Fails at once with the driver's error when `target` cannot work in
/// this build (an unknown scheme; `etcd://` without the `etcd` feature).
pub fn check_target(drivers: &Drivers, target: &str) -> Result<(), walle::discovery::Error> {
    drivers.driver(&Target::parse(target)?).map(|_| ())
}

/// A node's routes: `echo` answers `<name>:<payload>`; `count` keeps a
/// counter per user (the payload, as text) and answers `<name>:<count>`.
pub fn node_router(name: &str) -> Router<RawCodec> {
    let mut router = Router::new(RawCodec);
    let prefix = format!("{name}:").into_bytes();
    router
        .route("echo", move |_: &mut Context, req: Bytes| {
            let mut answer = Vec::with_capacity(prefix.len() + req.len());
            answer.extend_from_slice(&prefix);
            answer.extend_from_slice(&req);
            Ok(Bytes::from(answer))
        })
        .expect("fresh router");
    let counters: Mutex<HashMap<String, u64>> = Mutex::new(HashMap::new());
    let name = name.to_owned();
    router
        .route("count", move |_: &mut Context, req: Bytes| {
            let user = String::from_utf8_lossy(&req).into_owned();
            let mut counters = counters.lock().map_err(|_| "counter table poisoned")?;
            let count = counters.entry(user).or_insert(0);
            *count += 1;
            Ok(Bytes::from(format!("{name}:{count}")))
        })
        .expect("fresh router");
    router
}

/// A node as a service: serves [`node_router`] on `addr` and registers as
/// `name` under `target` with [`NODE_TTL`].
pub fn node_service(
    drivers: Drivers,
    target: &str,
    addr: &str,
    name: &str,
) -> ServerService<RawCodec> {
    ServerService::new(
        format!("node {name}"),
        Server::builder(node_router(name)),
        addr,
    )
    .register(drivers, target, Node::new("").with_id(name), NODE_TTL)
}

/// A node's app: the service with a stop bound that covers its grace.
pub fn node_app(service: ServerService<RawCodec>, signals: bool) -> App {
    App::builder()
        .signals(signals)
        .service_with(
            service,
            ServiceOptions::default().stop_timeout(Duration::from_secs(10)),
        )
        .build()
}

/// The gate's two proxies of the node target: `echo` round-robin, `count`
/// by consistent hash on the user id, so one user's counter stays on one
/// node.
#[derive(Debug, Clone)]
pub struct GateProxies {
    /// Balances stateless calls.
    pub round_robin: ClientProxy<RawCodec>,
    /// Sends one user to one node.
    pub by_user: ClientProxy<RawCodec>,
}

impl GateProxies {
    /// Resolves `target` and starts following it (connects to nothing yet).
    pub async fn connect(drivers: &Drivers, target: &str) -> Result<GateProxies, BoxError> {
        let proxy = |balancer: &str| {
            ClientProxy::builder(target, Router::new(RawCodec))
                .drivers(drivers.clone())
                .options(
                    ProxyOptions::default()
                        .balancer(balancer)
                        .wait_for_node(Duration::from_secs(1)),
                )
                .connect()
        };
        Ok(GateProxies {
            round_robin: proxy("round_robin").await?,
            by_user: proxy("consistent_hash").await?,
        })
    }
}

/// The gate's routes: every request forwarded to a node and its answer
/// sent back. The handlers are async: they await the proxies' calls.
pub fn gate_router(proxies: &GateProxies) -> Router<RawCodec> {
    let mut router = Router::new(RawCodec);
    let proxy = proxies.round_robin.clone();
    router
        .route_async("echo", move |ctx: Context, req: Bytes| {
            let proxy = proxy.clone();
            async move {
                let answer = proxy.call::<Bytes, Bytes>("echo", &req).await;
                (ctx, answer.map_err(|e| Box::new(e) as HandlerError))
            }
        })
        .expect("fresh router");
    let proxy = proxies.by_user.clone();
    router
        .route_async("count", move |ctx: Context, user: Bytes| {
            let proxy = proxy.clone();
            async move {
                let answer = proxy
                    .call_keyed::<Bytes, Bytes>(&user, "count", &user)
                    .await;
                (ctx, answer.map_err(|e| Box::new(e) as HandlerError))
            }
        })
        .expect("fresh router");
    router
}

/// The gate as a service: [`gate_router`] served on `listen`, its async
/// handlers on the current tokio runtime.
pub fn gate_service(
    proxies: &GateProxies,
    listen: &str,
) -> Result<ServerService<RawCodec>, BoxError> {
    let dispatcher =
        Dispatcher::new(Strategy::Tokio, 65_536)?.with_runtime(tokio::runtime::Handle::current());
    let builder = Server::builder(gate_router(proxies)).dispatcher(Arc::new(dispatcher));
    Ok(ServerService::new("gate", builder, listen))
}

/// The gate's app: its two proxies (which wait, up to `within`, for
/// `min_nodes` online nodes before the gate serves), then the gate's
/// server. Stopping runs in reverse: the server stops and drains its
/// forwarded calls, then the proxies close.
pub fn gate_app(
    proxies: &GateProxies,
    gate: ServerService<RawCodec>,
    min_nodes: usize,
    within: Duration,
    signals: bool,
) -> App {
    App::builder()
        .signals(signals)
        .service(
            ProxyService::new("proxy echo", proxies.round_robin.clone())
                .wait_for_nodes(min_nodes, within),
        )
        .service(
            ProxyService::new("proxy count", proxies.by_user.clone())
                .wait_for_nodes(min_nodes, within),
        )
        .service_with(
            gate,
            ServiceOptions::default().stop_timeout(Duration::from_secs(10)),
        )
        .build()
}

/// Waits (up to `within`) for a started service's bound address.
pub async fn bound(addr: &BoundAddr, within: Duration) -> Result<SocketAddr, BoxError> {
    addr.wait(within)
        .await
        .ok_or_else(|| format!("not bound after {within:?}").into())
}

/// What the in-process cluster did.
#[derive(Debug)]
pub struct LocalReport {
    /// The load run through the gate.
    pub load: load::LoadReport,
    /// `(user, answer)` of the `count` calls, in order.
    pub counts: Vec<(String, String)>,
    /// Whether every app stopped with every phase clean.
    pub clean: bool,
}

/// A gate, three nodes and a load client in this process on `target` (a
/// `mem://` URL), for `secs` seconds of load; tells `say` what happens.
/// Runs in a multi-threaded tokio runtime.
pub async fn run_local(
    target: &str,
    secs: f64,
    say: &(dyn Fn(&str) + Sync),
) -> Result<LocalReport, BoxError> {
    let drivers = Drivers::new();
    let bound_within = Duration::from_secs(10);
    let mut nodes: Vec<(String, StopHandle, tokio::task::JoinHandle<_>)> = Vec::new();
    for name in ["node-1", "node-2", "node-3"] {
        let service = node_service(drivers.clone(), target, "127.0.0.1:0", name)
            .offline_grace(Duration::from_millis(200));
        let addr = service.bound_addr();
        let app = node_app(service, false);
        let stop = app.stop_handle();
        let run = tokio::spawn(app.run());
        say(&format!(
            "node {name}: listening on {}, registered under {target}",
            bound(&addr, bound_within).await?
        ));
        nodes.push((name.to_owned(), stop, run));
    }

    let proxies = GateProxies::connect(&drivers, target).await?;
    let gate = gate_service(&proxies, "127.0.0.1:0")?;
    let gate_addr = gate.bound_addr();
    let gate_app = gate_app(&proxies, gate, 3, bound_within, false);
    let gate_stop = gate_app.stop_handle();
    let gate_run = tokio::spawn(gate_app.run());
    let gate_addr = bound(&gate_addr, bound_within).await?.to_string();
    say(&format!(
        "gate: listening on {gate_addr}, 3 nodes online through {target}"
    ));

    let (conns, depth) = (4, 8);
    say(&format!(
        "client: {conns} connections x {depth} calls in flight, echo through the gate, {secs} s"
    ));
    let load = load::run(&gate_addr, conns, depth, secs, say).await?;
    say(&format!("client: {}", load.line()));

    // The stateful route: each user twice, on the node its id hashes to.
    let client = walle::net::Client::builder(gate_addr.as_str(), Router::new(RawCodec)).build()?;
    let mut counts = Vec::new();
    for user in ["alice", "bob", "carol", "alice", "bob", "carol"] {
        let answer: Bytes = client.call("count", &Bytes::from(user)).await?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        say(&format!("count {user}: {answer}"));
        counts.push((user.to_owned(), answer));
    }
    drop(client);
    for entry in proxies.round_robin.stats() {
        say(&format!(
            "proxy entry {} at {}: {} calls, {} failures",
            entry.id, entry.addr, entry.calls, entry.failures
        ));
    }

    let mut clean = true;
    gate_stop.stop();
    let report: RunReport = gate_run.await??;
    clean &= report.is_clean();
    say(&format!("gate: stopped ({})", report.sequence().join(", ")));
    drop(proxies);
    for (name, stop, run) in nodes {
        stop.stop();
        let report: RunReport = run.await??;
        clean &= report.is_clean();
        say(&format!(
            "node {name}: stopped, deregistered ({})",
            report.sequence().join(", ")
        ));
    }
    say(if clean {
        "cluster: stopped cleanly"
    } else {
        "cluster: a phase failed while stopping"
    });
    Ok(LocalReport {
        load,
        counts,
        clean,
    })
}
