//! Registers one node, prints its id, keeps the registration alive until
//! SIGINT or SIGTERM, then deregisters and exits.
//!
//! ```text
//! cargo run --example register -- --target etcd://127.0.0.1:2379/services/echo \
//!     --addr 127.0.0.1:7000 --ttl 3 [--id ID] [--balancer NAME]
//! cargo run --example register -- --target mem:///services/echo --addr 0.0.0.0:7000
//! ```
//!
//! The first line of output is `registered <id> at <address> in <target>`.

#![allow(clippy::print_stdout)] // a command-line program: its output is the point

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use walle::discovery::{Drivers, Node};

struct Args {
    target: String,
    addr: String,
    ttl: Duration,
    id: Option<String>,
    balancer: String,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        target: "mem:///services/echo".into(),
        addr: "127.0.0.1:7000".into(),
        ttl: Duration::from_secs(3),
        id: None,
        balancer: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--target" => args.target = value,
            "--addr" => args.addr = value,
            "--ttl" => {
                let secs: f64 = value.parse().map_err(|e| format!("--ttl: {e}"))?;
                args.ttl = Duration::try_from_secs_f64(secs).map_err(|e| format!("--ttl: {e}"))?;
            }
            "--id" => args.id = Some(value),
            "--balancer" => args.balancer = value,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = parse()?;
    let mut node = Node::new(args.addr).with_balancer(args.balancer);
    if let Some(id) = args.id {
        node = node.with_id(id);
    }
    let (mut interrupt, mut terminate) = (
        signal(SignalKind::interrupt())?,
        signal(SignalKind::terminate())?,
    );

    let drivers = Drivers::new();
    let registration = drivers.register(&args.target, node, args.ttl).await?;
    let (id, addr) = (
        registration.id().to_owned(),
        registration.node().addr.clone(),
    );
    println!("registered {id} at {addr} in {}", args.target);

    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    registration.deregister().await?;
    println!("deregistered {id}");
    Ok(())
}
