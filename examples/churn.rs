//! The churn benchmark: `--nodes` nodes are registered one after the other,
//! then deregistered, while a watcher follows the service; for each phase it
//! prints how long the writes took and when the watcher had seen every
//! change, on the embedded `MemStore` and on etcd.
//!
//! ```text
//! cargo run --release --example churn -- [--nodes 1000] [--etcd host:port]
//! ```
//!
//! Without `--etcd`, a throwaway etcd is started on loopback (Debian's
//! `etcd-server`); the etcd figures then include loopback gRPC round trips.

#![allow(clippy::print_stdout)] // a command-line program: its output is the point

use std::sync::Arc;
use std::time::{Duration, Instant};

use walle::discovery::{Change, Discovery, Node, Registration, Registry, StoreRegistry};
use walle::kvstore::testing::Etcd;
use walle::kvstore::{EtcdStore, MemStore, Store};

const PREFIX: &str = "/bench/churn";
const TTL: Duration = Duration::from_secs(60);
const LIMIT: Duration = Duration::from_secs(120);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The figures of one store.
struct Row {
    store: &'static str,
    nodes: usize,
    register_written: Duration,
    register_seen: Duration,
    deregister_written: Duration,
    deregister_seen: Duration,
}

/// Waits (in a task) until the watcher has seen `count` changes matching
/// `wanted`; returns the watcher and when it saw the last one.
fn count_changes(
    mut discovery: Discovery,
    count: usize,
    wanted: fn(&Change) -> bool,
) -> tokio::task::JoinHandle<Result<(Discovery, Instant), String>> {
    tokio::spawn(async move {
        let mut seen = 0;
        while seen < count {
            match tokio::time::timeout(LIMIT, discovery.next()).await {
                Ok(Some(change)) if wanted(&change) => seen += 1,
                Ok(Some(_)) => {}
                Ok(None) => return Err("the watch ended".to_owned()),
                Err(_) => return Err(format!("saw {seen} of {count} changes in {LIMIT:?}")),
            }
        }
        Ok((discovery, Instant::now()))
    })
}

async fn churn(
    name: &'static str,
    registrant: Arc<dyn Store>,
    watcher: &dyn Store,
    nodes: usize,
) -> Result<Row, BoxError> {
    let registry: Arc<dyn Registry> = Arc::new(StoreRegistry::new(registrant, PREFIX));
    let discovery = Discovery::watch(watcher, PREFIX).await?;
    assert!(discovery.nodes().is_empty(), "{PREFIX} must start empty");

    let inserts = count_changes(discovery, nodes, |c| matches!(c, Change::Insert(_)));
    let started = Instant::now();
    let mut registrations = Vec::with_capacity(nodes);
    for i in 0..nodes {
        let addr = format!("10.0.{}.{}:7000", i / 250, i % 250 + 1);
        let node = Node::new(addr).with_id(format!("n{i:05}"));
        registrations.push(Registration::register(registry.clone(), node, TTL).await?);
    }
    let register_written = started.elapsed();
    let (discovery, at) = inserts.await??;
    let register_seen = at - started;
    assert_eq!(discovery.nodes().len(), nodes);

    let removes = count_changes(discovery, nodes, |c| matches!(c, Change::Remove(_)));
    let started = Instant::now();
    for registration in registrations {
        registration.deregister().await?;
    }
    let deregister_written = started.elapsed();
    let (discovery, at) = removes.await??;
    assert!(discovery.nodes().is_empty());
    Ok(Row {
        store: name,
        nodes,
        register_written,
        register_seen,
        deregister_written,
        deregister_seen: at - started,
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn print(rows: &[Row]) {
    println!(
        "{:<9} {:>6} | {:>12} {:>12} | {:>12} {:>12}",
        "store", "nodes", "reg. writes", "reg. seen", "dereg. writes", "dereg. seen"
    );
    for r in rows {
        println!(
            "{:<9} {:>6} | {:>12} {:>12} | {:>12} {:>12}",
            r.store,
            r.nodes,
            ms(r.register_written),
            ms(r.register_seen),
            ms(r.deregister_written),
            ms(r.deregister_seen)
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let (mut nodes, mut endpoint) = (1000, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--nodes" => nodes = value.parse()?,
            "--etcd" => endpoint = Some(value),
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }

    let mem = MemStore::new();
    let mut rows = vec![churn("MemStore", Arc::new(mem.client()), &mem, nodes).await?];

    let _harness; // kept running until the end
    let endpoint = match endpoint {
        Some(endpoint) => endpoint,
        None => {
            let etcd = Etcd::start()?;
            let endpoint = etcd.endpoint();
            _harness = etcd;
            endpoint
        }
    };
    let connect = || EtcdStore::builder().endpoint(endpoint.clone()).connect();
    let (registrant, watcher) = (connect().await?, connect().await?);
    watcher.delete_tree(PREFIX).await?;
    rows.push(churn("etcd", Arc::new(registrant), &watcher, nodes).await?);

    println!(
        "churn: {nodes} nodes registered one by one, then deregistered; \
         'seen' is when the watcher had seen the last change, from the first write"
    );
    print(&rows);
    Ok(())
}
