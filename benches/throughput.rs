//! Echo throughput over loopback: the `evloop`, `tcp`, `ws` and `kcp`
//! servers against a tokio + tokio-util `LengthDelimitedCodec` echo
//! server, in one run; `ws` and `kcp` are also compared with `tcp`.
//!
//! Each server runs as a child process (this bench binary, re-run with
//! `WALLE_BENCH_SERVER`), so its CPU time per message is read from
//! `/proc` apart from the load client's. One raw framed load client (a
//! single mio thread) sends pre-encoded `walle` request frames (as one
//! masked binary message each for `ws`, into a `kcp::Kcp` stream per
//! connection for `kcp`), keeps `depth` in flight per connection, and
//! counts answer frames; the baselines answer each frame with the frame
//! itself: tokio-util's codec (`baseline`), and a raw mio echo by hand,
//! one loop per core (`mio`, the raw limit the event loop is held to).
//! Two more entries drive an `evloop` server with the framework's own
//! evloop client instead, to set against the raw load client on the same
//! server: `client` runs on the bench's runtime (`caller_runtime`, its
//! connections then driven by that runtime, as a tcp client's are), and
//! `client-loops` has its connections on the shared client reactors, the
//! calls still on the bench's runtime.
//!
//! `WALLE_BENCH_ENTRIES` and `WALLE_BENCH_CONFIGS` (comma-separated) run
//! only the entries and shapes named; `WALLE_BENCH_LOOPS` and
//! `WALLE_BENCH_BUSY_US` set the evloop servers' loops and busy poll (by
//! default one loop per core and 50 µs).
#![allow(clippy::print_stdout)] // a bench report
#![allow(missing_docs)]

#[path = "throughput/client_load.rs"]
mod client_load;
#[path = "throughput/kcp_load.rs"]
mod kcp_load;
#[path = "throughput/load.rs"]
mod load;
#[path = "throughput/servers.rs"]
mod servers;

use std::time::Duration;

use client_load::ClientLoad;
use criterion::{BenchmarkId, Criterion, Throughput};
use kcp_load::KcpLoad;
use load::{Load, Wire};
use servers::{ServerProcess, serve};

/// Rounds of the interleaved comparison, and the window of each turn.
const ROUNDS: usize = 11;
const WINDOW: Duration = Duration::from_millis(1500);
/// The entries: a name, and the server it runs (the name, but for the
/// framework's clients, which drive an evloop server).
const ENTRIES: [(&str, &str); 8] = [
    ("baseline", "baseline"),
    ("mio", "mio"),
    ("evloop", "evloop"),
    ("tcp", "tcp"),
    ("ws", "ws"),
    ("kcp", "kcp"),
    ("client", "evloop"),
    ("client-loops", "evloop"),
];
/// Pairs `(entry, against)` whose median per-round ratio is reported
/// besides the ratio to the baseline: the backends beside tcp, the event
/// loop against the raw mio echo (its throughput, and its CPU per message
/// in the second table), and the framework's clients against the raw load
/// client on the same kind of server.
const PAIRS: [(&str, &str); 5] = [
    ("ws", "tcp"),
    ("kcp", "tcp"),
    ("evloop", "mio"),
    ("client", "evloop"),
    ("client-loops", "evloop"),
];

/// The load client a server takes.
enum Driver {
    Stream(Load),
    Kcp(KcpLoad),
    Client(ClientLoad),
}

impl Driver {
    fn connect(
        kind: &str,
        addr: std::net::SocketAddr,
        conns: usize,
        depth: usize,
        size: usize,
    ) -> Driver {
        use walle::net::Backend;
        match kind {
            "kcp" => Driver::Kcp(KcpLoad::connect(addr, conns, depth, size)),
            "client" | "client-loops" => Driver::Client(ClientLoad::connect(
                addr,
                Backend::evloop(),
                kind == "client",
                conns,
                depth,
                size,
            )),
            "ws" => Driver::Stream(Load::connect(addr, Wire::Ws, conns, depth, size)),
            _ => Driver::Stream(Load::connect(addr, Wire::Tcp, conns, depth, size)),
        }
    }

    fn run(&mut self, n: u64) -> Duration {
        match self {
            Driver::Stream(load) => load.run(n),
            Driver::Kcp(load) => load.run(n),
            Driver::Client(load) => load.run(n),
        }
    }

    fn run_for(&mut self, window: Duration) -> u64 {
        match self {
            Driver::Stream(load) => load.run_for(window),
            Driver::Kcp(load) => load.run_for(window),
            Driver::Client(load) => load.run_for(window),
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn throughput(c: &mut Criterion) {
    let configs = [(256usize, 16usize, 1024usize), (16, 16, 64)];
    // `WALLE_BENCH_CONFIGS=16x16x64B` runs only the configurations named.
    let only = std::env::var("WALLE_BENCH_CONFIGS").ok();
    // `WALLE_BENCH_ENTRIES=evloop,client` runs only the entries named
    // (and the baseline, which every round's ratios are against).
    let named = std::env::var("WALLE_BENCH_ENTRIES").ok();
    let entries: Vec<(&str, &str)> = ENTRIES
        .into_iter()
        .filter(|(name, _)| {
            *name == "baseline"
                || named
                    .as_deref()
                    .is_none_or(|n| n.split(',').any(|e| e == *name))
        })
        .collect();
    let pairs_run: Vec<(&str, &str)> = PAIRS
        .into_iter()
        .filter(|(a, b)| [a, b].iter().all(|k| entries.iter().any(|e| e.0 == **k)))
        .collect();
    let mut report = Vec::new();
    let mut pairs = Vec::new();
    for (conns, depth, size) in configs {
        let config = format!("{conns}x{depth}x{size}B");
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|c| c == config))
        {
            continue;
        }
        let mut group = c.benchmark_group(format!("echo/{config}"));
        group.throughput(Throughput::Elements(1));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4));
        let mut servers: Vec<(ServerProcess, Driver)> = entries
            .iter()
            .map(|(name, kind)| {
                let process = ServerProcess::start(kind);
                let mut load = Driver::connect(name, process.addr, conns, depth, size);
                load.run(10_000); // connections warm
                (process, load)
            })
            .collect();
        for ((kind, _), (_, load)) in entries.iter().zip(servers.iter_mut()) {
            group.bench_function(BenchmarkId::from_parameter(kind), |b| {
                b.iter_custom(|iters| load.run(iters))
            });
        }
        group.finish();
        // The machine is shared and noisy: the servers take turns, round
        // after round, and each round's ratios are against that round's
        // baseline; the medians are reported.
        let mut rates = vec![Vec::new(); entries.len()];
        let mut cpus = vec![Vec::new(); entries.len()];
        let mut ratios = vec![Vec::new(); entries.len()];
        let mut pair_ratios = vec![Vec::new(); pairs_run.len()];
        let mut pair_cpus = vec![Vec::new(); pairs_run.len()];
        for _ in 0..ROUNDS {
            let mut round = Vec::new();
            for (i, (process, load)) in servers.iter_mut().enumerate() {
                let cpu0 = process.cpu();
                let n = load.run_for(WINDOW);
                let cpu = process.cpu() - cpu0;
                round.push(n as f64 / WINDOW.as_secs_f64());
                rates[i].push(n as f64 / WINDOW.as_secs_f64());
                cpus[i].push(cpu.as_secs_f64() * 1e6 / n.max(1) as f64);
            }
            for i in 0..entries.len() {
                ratios[i].push(round[i] / round[0]);
            }
            for (p, (a, b)) in pairs_run.iter().enumerate() {
                let at = |k: &str| entries.iter().position(|s| s.0 == k).expect("an entry");
                pair_ratios[p].push(round[at(a)] / round[at(b)]);
                let last = |k: &str| cpus[at(k)].last().copied().unwrap_or(f64::NAN);
                pair_cpus[p].push(last(a) / last(b));
            }
        }
        let spread = |v: &[f64]| {
            let mut sorted = v.to_vec();
            sorted.sort_by(f64::total_cmp);
            format!(
                "{:>5.2}x ({:.2}-{:.2})",
                median(v.to_vec()),
                sorted[0],
                sorted[sorted.len() - 1]
            )
        };
        for (p, (a, b)) in pairs_run.iter().enumerate() {
            pairs.push(format!(
                "{a} vs {b} {config:<14} {}   CPU/msg {}",
                spread(&pair_ratios[p]),
                spread(&pair_cpus[p])
            ));
        }
        for i in 0..entries.len() {
            report.push(format!(
                "{:<9} {:<14} {:>11.0}   {}   {:>8.3}",
                entries[i].0,
                config,
                median(rates[i].clone()),
                spread(&ratios[i]),
                median(cpus[i].clone())
            ));
        }
    }
    println!("\nmedians of {ROUNDS} interleaved rounds of {WINDOW:?} each");
    println!("server    config           msgs/s     vs baseline (min-max)   server CPU us/msg");
    for line in report {
        println!("{line}");
    }
    println!("\nmedian per-round ratios (min-max): throughput, server CPU per message");
    for line in pairs {
        println!("{line}");
    }
}

fn main() {
    if let Ok(kind) = std::env::var("WALLE_BENCH_SERVER") {
        if let Err(e) = serve(&kind) {
            eprintln!("server failed: {e}");
            std::process::exit(1);
        }
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    throughput(&mut criterion);
    criterion.final_summary();
}
