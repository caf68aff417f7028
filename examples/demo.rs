//! The main job: an echo server on loopback (event-loop backend, `walle`
//! format, inline dispatch), registered in the embedded discovery store,
//! found again through it, and loaded by the framework's own clients for
//! a few seconds. Prints what it did and how fast. No etcd needed.
//!
//! ```text
//! cargo run --release --example demo -- [--backend evloop|tcp|kcp|ws] [--format walle|walle-id|walle-proto|due]
//!     [--conns 16] [--depth 16] [--size 64] [--secs 3]
//! ```
#![allow(clippy::print_stdout)] // a command-line program: its output is the point

#[path = "loadgen.rs"]
mod loadgen;

use loadgen::common;

use std::time::Duration;

use walle::discovery::{Drivers, Node};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let flags = common::Flags::parse(&[
        ("backend", "evloop"),
        ("format", "walle"),
        ("dispatch", "inline"),
        ("conns", "16"),
        ("depth", "16"),
        ("size", "64"),
        ("secs", "3"),
    ])?;
    let (protocol, route) = flags.format()?;
    let server = common::echo_server(&flags, "127.0.0.1:0")?;
    println!(
        "server: {} backend, {} format, listening on {}",
        flags.str("backend"),
        flags.str("format"),
        server.local_addr()
    );

    // Register in the embedded store and find the server through it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let target = "mem:///services/echo";
    let drivers = Drivers::new();
    let node = Node::new(server.local_addr().to_string()).with_id("echo-1");
    let (registration, addr) = runtime.block_on(async {
        let registration = drivers
            .register(target, node, Duration::from_secs(10))
            .await?;
        let discovery = drivers.resolve(target).await?;
        let found = discovery.online().next().map(|n| n.addr.clone());
        Ok::<_, walle::discovery::Error>((registration, found))
    })?;
    let addr = addr.ok_or("the registered node was not found")?;
    println!(
        "discovery: registered node {} under {target}, resolved to {addr}",
        registration.id()
    );

    let (conns, depth, size) = (
        flags.num("conns")? as usize,
        flags.num("depth")? as usize,
        flags.num("size")? as usize,
    );
    let secs = flags.num("secs")? as f64;
    println!("load: {conns} connections x {depth} calls in flight, {size} B payloads, {secs} s");
    let load = loadgen::run(
        &addr,
        flags.backend()?,
        protocol,
        route,
        conns,
        depth,
        size,
        secs,
    )?;
    let rate = load.messages as f64 / load.elapsed.as_secs_f64();
    println!(
        "result: {} calls answered, {} failed: {rate:.0} calls/s, p50 {} us, p99 {} us",
        load.messages, load.errors, load.p50_us, load.p99_us
    );
    println!(
        "server: {} sessions open, io {:?}",
        server.session_count(),
        server.io_stats()
    );
    runtime.block_on(registration.deregister())?;
    server.stop();
    println!("stopped: deregistered, sessions closed");
    if load.errors > 0 || load.messages == 0 {
        return Err("some calls failed".into());
    }
    Ok(())
}
