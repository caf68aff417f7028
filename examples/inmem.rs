//! The main job, in memory: a server process and a client process wired
//! back to back, no socket. The client drives `--calls` echo requests
//! (`--depth` in flight) through the chosen format and dispatch strategy,
//! then prints what happened and how fast.
//!
//! ```text
//! cargo run --release --example inmem -- [--format walle|walle-id|walle-proto|due]
//!     [--dispatch inline|pool|keyed|tokio] [--calls 200000] [--size 64] [--depth 16]
//! ```

#![allow(clippy::print_stdout)] // a command-line program: its output is the point

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as Task, Poll, Waker};
use std::time::{Duration, Instant};

use walle::mempool::Pool;
use walle::prelude::*;
use walle::process::mem::{MemPipe, MemTransport};
use walle::process::{CallFuture, LoadLimit};

struct Args {
    format: String,
    dispatch: String,
    calls: usize,
    size: usize,
    depth: usize,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        format: "walle".into(),
        dispatch: "inline".into(),
        calls: 200_000,
        size: 64,
        depth: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--format" => args.format = value.clone(),
            "--dispatch" => args.dispatch = value.clone(),
            "--calls" => args.calls = number()?,
            "--size" => args.size = number()?,
            "--depth" => args.depth = number()?.max(1),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

fn protocol(format: &str) -> Result<(Protocol, Route<'static>), String> {
    Ok(match format {
        "walle" => (Protocol::new(WalleFormat::new()), Route::Uri("echo")),
        "walle-id" => (Protocol::new(WalleFormat::with_ids()), Route::Id(1)),
        "walle-proto" => (Protocol::new(ProtoFormat::new()), Route::Uri("echo")),
        "due" => (Protocol::new(DueFormat::new()), Route::Id(1)),
        other => return Err(format!("unknown format {other}")),
    })
}

fn dispatch(name: &str) -> Result<Strategy, String> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    Ok(match name {
        "inline" => Strategy::Inline,
        "pool" => Strategy::Pool(workers),
        "keyed" => Strategy::Keyed(workers),
        "tokio" => Strategy::Tokio,
        other => return Err(format!("unknown dispatch {other}")),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = parse()?;
    let (protocol, route) = protocol(&args.format)?;
    let kind = dispatch(&args.dispatch)?;
    let runtime = tokio_runtime()?;
    let dispatcher =
        Arc::new(Dispatcher::new(kind, 65_536)?.with_runtime(runtime.handle().clone()));

    let mut router = Router::new(RawCodec);
    router.route("echo", |_: &mut Context, req: Bytes| Ok(req))?;
    router.route_id(1, |_: &mut Context, req: Bytes| Ok(req))?;
    let pool = Arc::new(SizedPool::new());
    let load = LoadLimit::new(0);
    let to_server = Arc::new(MemTransport::new(64 << 20));
    let to_client = Arc::new(MemTransport::new(64 << 20));
    let server = Process::builder(protocol.clone(), router)
        .transport(to_client.clone())
        .dispatcher(dispatcher)
        .pool(pool.clone())
        .load_limit(load)
        .build()?;
    let client = Process::builder(protocol.clone(), Router::new(RawCodec))
        .transport(to_server.clone())
        .pool(pool.clone())
        .build()?;
    let (mut up, mut down) = (MemPipe::new(&protocol), MemPipe::new(&protocol));

    let payload = Bytes::from(vec![0x5a; args.size]);
    let mut in_flight: Vec<CallFuture<RawCodec, Bytes>> = Vec::with_capacity(args.depth);
    let (mut sent, mut answered, mut errors) = (0usize, 0usize, 0usize);
    let mut task = Task::from_waker(Waker::noop());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120);
    while answered + errors < args.calls && Instant::now() < deadline {
        while in_flight.len() < args.depth && sent < args.calls {
            in_flight.push(client.call(route, &payload));
            sent += 1;
        }
        up.pump(&to_server, &server)?;
        down.pump(&to_client, &client)?;
        in_flight.retain_mut(|call| match Pin::new(call).poll(&mut task) {
            Poll::Pending => true,
            Poll::Ready(Ok(answer)) => {
                debug_assert_eq!(answer.len(), payload.len());
                answered += 1;
                false
            }
            Poll::Ready(Err(_)) => {
                errors += 1;
                false
            }
        });
        if kind != Strategy::Inline && in_flight.len() == args.depth {
            std::thread::yield_now();
        }
    }
    let elapsed = started.elapsed();
    let rate = answered as f64 / elapsed.as_secs_f64();
    println!(
        "walle in memory: format={} dispatch={} payload={}B depth={}",
        args.format, args.dispatch, args.size, args.depth
    );
    println!("client sent {sent} requests; {answered} answered, {errors} failed");
    println!(
        "elapsed {:.3} s: {:.0} calls/s, {:.2} us per call",
        elapsed.as_secs_f64(),
        rate,
        1e6 / rate.max(1e-9)
    );
    let stats = pool.stats();
    println!(
        "pool: {} allocated, {} reused, {} outstanding, {} KiB retained",
        stats.allocated,
        stats.reused,
        stats.outstanding,
        stats.retained_bytes / 1024
    );
    if answered != args.calls {
        return Err(format!("only {answered} of {} calls answered", args.calls).into());
    }
    Ok(())
}

fn tokio_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}
