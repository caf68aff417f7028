//! A load generator for the echo route, through the framework's own
//! client: `--conns` connections with `--depth` calls in flight each, for
//! `--secs` seconds. Prints one line: `msgs_per_s=… p50_us=… p99_us=…`.
//! `--addr` is the server's endpoint: `host:port`, `tcp://host:port` or
//! `kcp://host:port` (a bare `host:port` is dialled over the backend's
//! transport: UDP for `--backend kcp`); with `--backend ws`,
//! `ws://host:port/path`, or `host:port` (then `/`).
//!
//! ```text
//! cargo run --release --example loadgen -- --addr 127.0.0.1:7000 --backend evloop|tcp|kcp|ws
//!     --format walle --conns 16 --depth 16 --size 64 --secs 5
//! ```
#![allow(clippy::print_stdout)] // a command-line program: its output is the point

#[path = "common/mod.rs"]
pub(crate) mod common;

use std::time::{Duration, Instant};

use walle::net::{Client, ClientOptions};
use walle::prelude::*;

/// Results of one load run.
#[derive(Debug)]
pub struct Load {
    /// Calls answered.
    pub messages: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Median latency.
    pub p50_us: u64,
    /// 99th percentile latency.
    pub p99_us: u64,
    /// Calls that failed.
    pub errors: u64,
}

/// Drives `route` on the endpoint `addr` (`host:port`, `tcp://host:port`)
/// and measures.
#[allow(clippy::too_many_arguments)]
pub fn run(
    addr: &str,
    backend: walle::net::Backend,
    protocol: Protocol,
    route: Route<'static>,
    conns: usize,
    depth: usize,
    size: usize,
    secs: f64,
) -> Result<Load, Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    // Connected inside the runtime, and run on it: the calls and their
    // connections' io share its worker.
    let clients = runtime.block_on(async {
        let mut clients: Vec<Client<RawCodec>> = Vec::with_capacity(conns);
        for _ in 0..conns {
            let client = Client::builder(addr, Router::new(RawCodec))
                .backend(backend.clone())
                .protocol(protocol.clone())
                .options(ClientOptions::default().caller_runtime(true))
                .connect()
                .await?;
            clients.push(client);
        }
        Ok::<_, walle::net::NetError>(clients)
    })?;
    let payload = Bytes::from(vec![0x5a; size]);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = clients
        .iter()
        .flat_map(|client| (0..depth).map(move |_| client.clone()))
        .map(|client| {
            let payload = payload.clone();
            runtime.spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    match client.call::<Bytes, Bytes>(route, &payload).await {
                        Ok(_) => latencies.push(sent.elapsed().as_micros() as u64),
                        Err(_) => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, e) = runtime.block_on(task)?;
        all.extend(latencies);
        errors += e;
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Ok(Load {
        messages: all.len() as u64,
        elapsed,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        errors,
    })
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let flags = common::Flags::parse(&[
        ("addr", "127.0.0.1:7000"),
        ("backend", "evloop"),
        ("format", "walle"),
        ("conns", "16"),
        ("depth", "16"),
        ("size", "64"),
        ("secs", "5"),
    ])?;
    let (protocol, route) = flags.format()?;
    let load = run(
        flags.str("addr"),
        flags.backend()?,
        protocol,
        route,
        flags.num("conns")? as usize,
        flags.num("depth")? as usize,
        flags.num("size")? as usize,
        flags.num("secs")? as f64,
    )?;
    let rate = load.messages as f64 / load.elapsed.as_secs_f64();
    println!(
        "msgs_per_s={rate:.0} p50_us={} p99_us={} errors={}",
        load.p50_us, load.p99_us, load.errors
    );
    Ok(())
}
