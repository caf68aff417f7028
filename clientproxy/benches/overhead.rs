//! What a `ClientProxy` with one entry costs over a plain `Client`: the
//! same 64 B echo calls to one server on loopback, through each, in one
//! run.
//!
//! Two cases: `depth16` (16 tasks, each looping calls, so 16 in flight;
//! throughput) and `sequential` (one call at a time; latency). Criterion
//! measures each; then, since the machine is shared and noisy, the two
//! callers take turns over interleaved rounds of half a second, and the
//! median of the rounds' ratios (each round's proxy calls/s over its
//! client calls/s, so a slow patch of the machine hits both) is printed
//! per case, with the range and the ratio of the median rates.
#![allow(clippy::print_stdout)] // a bench report
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use tokio::runtime::Runtime;
use walle_clientproxy::ClientProxy;
use walle_codec::RawCodec;
use walle_net::{Backend, Client, Server};
use walle_process::{Context, Router};

/// Rounds of the interleaved comparison, and the window of each turn.
const ROUNDS: usize = 21;
const WINDOW: Duration = Duration::from_millis(500);
const PAYLOAD: usize = 64;

/// One of the two ways to call the server.
#[derive(Clone)]
enum Caller {
    Proxy(ClientProxy<RawCodec>),
    Client(Client<RawCodec>),
}

impl Caller {
    fn name(&self) -> &'static str {
        match self {
            Caller::Proxy(_) => "proxy",
            Caller::Client(_) => "client",
        }
    }

    async fn call(&self, req: &Bytes) {
        let resp: Bytes = match self {
            Caller::Proxy(p) => p.call("echo", req).await.expect("proxy call"),
            Caller::Client(c) => c.call("echo", req).await.expect("client call"),
        };
        debug_assert_eq!(resp.len(), req.len());
    }
}

/// `depth` tasks share `calls` calls (or, with `calls == 0`, call until
/// `deadline`); returns the calls made and the time taken.
async fn run(
    caller: &Caller,
    depth: usize,
    calls: u64,
    deadline: Option<Instant>,
) -> (u64, Duration) {
    let req = Bytes::from(vec![7u8; PAYLOAD]);
    let left = Arc::new(AtomicU64::new(calls));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..depth)
        .map(|_| {
            let (caller, req, left, done) =
                (caller.clone(), req.clone(), left.clone(), done.clone());
            tokio::spawn(async move {
                loop {
                    match deadline {
                        Some(d) if Instant::now() >= d => break,
                        Some(_) => {}
                        None => {
                            if left
                                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                                    n.checked_sub(1)
                                })
                                .is_err()
                            {
                                break;
                            }
                        }
                    }
                    caller.call(&req).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    (done.load(Ordering::Relaxed), started.elapsed())
}

/// Sequential calls on the calling task (no spawn per batch).
async fn run_sequential(caller: &Caller, calls: u64, deadline: Option<Instant>) -> (u64, Duration) {
    let req = Bytes::from(vec![7u8; PAYLOAD]);
    let started = Instant::now();
    let mut done = 0;
    loop {
        match deadline {
            Some(d) if Instant::now() >= d => break,
            Some(_) => {}
            None if done >= calls => break,
            None => {}
        }
        caller.call(&req).await;
        done += 1;
    }
    (done, started.elapsed())
}

fn measure(
    rt: &Runtime,
    caller: &Caller,
    depth: usize,
    calls: u64,
    deadline: Option<Instant>,
) -> (u64, Duration) {
    if depth == 1 {
        rt.block_on(run_sequential(caller, calls, deadline))
    } else {
        rt.block_on(run(caller, depth, calls, deadline))
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (_server, callers) = rt.block_on(async {
        let mut router = Router::new(RawCodec);
        router
            .route("echo", |_: &mut Context, req: Bytes| Ok(req))
            .expect("route");
        let server = Server::builder(router)
            .backend(Backend::tcp())
            .bind("127.0.0.1:0")
            .expect("bind");
        let addr = server.local_addr();
        let proxy = ClientProxy::builder(format!("static://{addr}"), Router::new(RawCodec))
            .backend(Backend::tcp())
            .connect()
            .await
            .expect("proxy");
        let client = Client::builder(addr.to_string(), Router::new(RawCodec))
            .backend(Backend::tcp())
            .connect()
            .await
            .expect("client");
        (server, [Caller::Proxy(proxy), Caller::Client(client)])
    });
    let mut report = Vec::new();
    for (case, depth) in [("depth16", 16usize), ("sequential", 1)] {
        for caller in &callers {
            measure(&rt, caller, depth, 10_000, None); // connected, warm
        }
        let mut group = c.benchmark_group(format!("overhead/{case}"));
        group.throughput(Throughput::Elements(1));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        for caller in &callers {
            group.bench_function(BenchmarkId::from_parameter(caller.name()), |b| {
                b.iter_custom(|iters| measure(&rt, caller, depth, iters, None).1)
            });
        }
        group.finish();
        // The callers take turns, round after round; the order flips each
        // round so neither always runs first.
        let mut rates = [Vec::new(), Vec::new()];
        let mut ratios = Vec::new();
        for round in 0..ROUNDS {
            let mut rate = [0.0; 2];
            for k in 0..2 {
                let i = if round % 2 == 0 { k } else { 1 - k };
                let (n, took) = measure(&rt, &callers[i], depth, 0, Some(Instant::now() + WINDOW));
                rate[i] = n as f64 / took.as_secs_f64();
                rates[i].push(rate[i]);
            }
            ratios.push(rate[0] / rate[1]);
        }
        let (proxy, client) = (median(rates[0].clone()), median(rates[1].clone()));
        let mut sorted = ratios.clone();
        sorted.sort_by(f64::total_cmp);
        report.push(format!(
            "{case:<11} proxy {proxy:>9.0} calls/s   client {client:>9.0} calls/s   \
             proxy/client ratio: {:.3} (rounds {:.3}-{:.3}; ratio of medians {:.3})",
            median(ratios),
            sorted[0],
            sorted[sorted.len() - 1],
            proxy / client,
        ));
    }
    println!("\nmedians of {ROUNDS} interleaved rounds of {WINDOW:?} each ({PAYLOAD} B echo)");
    for line in report {
        println!("{line}");
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    overhead(&mut criterion);
    criterion.final_summary();
}
