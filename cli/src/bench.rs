//! `walle bench`: load a route with many connections and calls in flight,
//! then report latency percentiles, throughput and errors by code.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use walle::codec::RawCodec;
use walle::net::{Client, ClientOptions};
use walle::process::{Error, Router};

use crate::common::{self, Failure};

/// The arguments of `walle bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The server: `host:port`, `tcp://`, `kcp://` or `ws://host:port/path`.
    pub addr: String,
    /// The wire format: walle, walle-id, walle-proto or due.
    #[arg(long, default_value = "walle")]
    pub format: String,
    /// The io backend: evloop, tcp, kcp or ws.
    #[arg(long, default_value = "evloop")]
    pub backend: String,
    /// The route (raw codec): `echo`, or 1 on the numeric formats, unless
    /// given.
    #[arg(long)]
    pub route: Option<String>,
    /// Connections.
    #[arg(long, default_value_t = 16)]
    pub conns: usize,
    /// Calls in flight per connection.
    #[arg(long, default_value_t = 16)]
    pub depth: usize,
    /// Payload bytes per request.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 5.0)]
    pub secs: f64,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tls: common::TlsArgs,
}

/// What a run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Calls answered.
    pub ok: u64,
    /// Calls failed, by error code.
    pub errors: BTreeMap<u32, u64>,
    /// Wall time, seconds.
    pub secs: f64,
    /// Answered calls per second.
    pub msgs_per_s: f64,
    /// Latency percentiles of answered calls, microseconds.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// The slowest answered call.
    pub max_us: u64,
}

/// Runs the load; returns what to print.
pub fn run(args: &BenchArgs) -> Result<String, Failure> {
    if args.conns == 0 || args.depth == 0 || !args.secs.is_finite() || args.secs <= 0.0 {
        return Err(Failure::Other(
            "--conns, --depth and --secs must be above 0".into(),
        ));
    }
    let (protocol, numeric) = common::format(&args.format)?;
    let route_text = args
        .route
        .clone()
        .unwrap_or_else(|| common::echo_route(numeric).into());
    // One string for the life of the command: every task's calls borrow it.
    let route_text: &'static str = Box::leak(route_text.into_boxed_str());
    let route = common::route(route_text, numeric)?;
    let backend = common::client_backend(&args.backend, &args.tls)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(e.to_string()))?;
    // Connected inside the runtime and run on it, as the `loadgen`
    // example does: the calls and their connections share its worker.
    let clients = runtime.block_on(async {
        let mut clients: Vec<Client<RawCodec>> = Vec::with_capacity(args.conns);
        for _ in 0..args.conns {
            let client = Client::builder(args.addr.as_str(), Router::new(RawCodec))
                .backend(backend.clone())
                .protocol(protocol.clone())
                .options(ClientOptions::default().caller_runtime(true))
                .connect()
                .await
                .map_err(|e| Failure::Unreachable(format!("{}: {e}", args.addr)))?;
            clients.push(client);
        }
        Ok::<_, Failure>(clients)
    })?;
    let payload = Bytes::from(vec![0x5a; args.size]);
    let done = Arc::new(AtomicU64::new(0));
    let window = Duration::from_secs_f64(args.secs);
    let progress = Progress::start(window, done.clone());
    let started = Instant::now();
    let deadline = started + window;
    let tasks: Vec<_> = clients
        .iter()
        .flat_map(|client| (0..args.depth).map(move |_| client.clone()))
        .map(|client| {
            let (payload, done) = (payload.clone(), done.clone());
            runtime.spawn(async move {
                let mut latencies = Vec::new();
                let mut errors: BTreeMap<u32, u64> = BTreeMap::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    match client.call::<Bytes, Bytes>(route, &payload).await {
                        Ok(_) => latencies.push(sent.elapsed().as_micros() as u64),
                        Err(e) => *errors.entry(Error::code(&e).0).or_default() += 1,
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors: BTreeMap<u32, u64> = BTreeMap::new();
    for task in tasks {
        let (latencies, e) = runtime
            .block_on(task)
            .map_err(|e| Failure::Other(format!("a load task failed: {e}")))?;
        all.extend(latencies);
        for (code, n) in e {
            *errors.entry(code).or_default() += n;
        }
    }
    let elapsed = started.elapsed();
    progress.finish();
    for client in &clients {
        client.close();
    }
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let report = Report {
        ok: all.len() as u64,
        errors,
        secs: elapsed.as_secs_f64(),
        msgs_per_s: all.len() as f64 / elapsed.as_secs_f64(),
        p50_us: pct(0.50),
        p90_us: pct(0.90),
        p99_us: pct(0.99),
        p999_us: pct(0.999),
        max_us: all.last().copied().unwrap_or(0),
    };
    if args.json {
        return serde_json::to_string_pretty(&report).map_err(|e| Failure::Other(e.to_string()));
    }
    Ok(table(args, &report))
}

fn table(args: &BenchArgs, r: &Report) -> String {
    let mut out = format!(
        "{} conns x {} in flight, {} B, {:.1} s on {} ({}, {})\n",
        args.conns, args.depth, args.size, r.secs, args.addr, args.backend, args.format
    );
    out += &format!("{:<12}{:>12}\n", "latency", "us");
    for (name, us) in [
        ("p50", r.p50_us),
        ("p90", r.p90_us),
        ("p99", r.p99_us),
        ("p99.9", r.p999_us),
        ("max", r.max_us),
    ] {
        out += &format!("{name:<12}{us:>12}\n");
    }
    out += &format!("{:<12}{:>12}\n", "answered", r.ok);
    out += &format!("{:<12}{:>12.0}\n", "msgs/s", r.msgs_per_s);
    if r.errors.is_empty() {
        out += &format!("{:<12}{:>12}\n", "errors", 0);
    }
    for (code, n) in &r.errors {
        out += &format!("{:<12}{n:>12}\n", format!("error {code}"));
    }
    out += &format!(
        "msgs_per_s={:.0} p50_us={} p99_us={}",
        r.msgs_per_s, r.p50_us, r.p99_us
    );
    out
}

/// A progress bar on stderr, fed from the calls' counter by a thread of
/// its own (hidden when stderr is not a terminal).
struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(window: Duration, done: Arc<AtomicU64>) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let ms = window.as_millis() as u64;
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(ms),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:40} {elapsed}/{duration} {msg}")
            {
                bar.set_style(style);
            }
            let started = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                let calls = done.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                bar.set_position((started.elapsed().as_millis() as u64).min(ms));
                bar.set_message(format!("{calls} calls, {:.0}/s", calls as f64 / secs));
                std::thread::park_timeout(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        Progress {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
