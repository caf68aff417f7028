//! The load client: `conns` connections to the gate with `depth` `echo`
//! calls in flight each, one line a second, a summary at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use walle::net::Client;
use walle::prelude::*;

/// What a load run saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Calls made.
    pub calls: u64,
    /// Calls answered.
    pub ok: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Median latency of the answered calls.
    pub p50_us: u64,
    /// 99th percentile latency of the answered calls.
    pub p99_us: u64,
    /// The distinct node names that answered, sorted.
    pub nodes: Vec<String>,
}

impl LoadReport {
    /// The summary line.
    pub fn line(&self) -> String {
        format!(
            "calls={} ok={} failed={} p50_us={} p99_us={} nodes={}",
            self.calls,
            self.ok,
            self.failed,
            self.p50_us,
            self.p99_us,
            self.nodes.join(",")
        )
    }
}

/// Calls `echo` through the gate at `gate` for `secs` seconds, telling
/// `say` once a second how many calls were answered and failed in that
/// second (`t=<s> ok=<n> failed=<n>`). Runs in a tokio runtime.
pub async fn run(
    gate: &str,
    conns: usize,
    depth: usize,
    secs: f64,
    say: &(dyn Fn(&str) + Sync),
) -> Result<LoadReport, Box<dyn std::error::Error + Send + Sync>> {
    let clients: Vec<Client<RawCodec>> = (0..conns.max(1))
        .map(|_| Client::builder(gate, Router::new(RawCodec)).build())
        .collect::<Result<_, _>>()?;
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for (c, client) in clients.iter().enumerate() {
        for d in 0..depth.max(1) {
            let (client, ok, failed) = (client.clone(), ok.clone(), failed.clone());
            let payload = Bytes::from(format!("hello from {c}.{d}"));
            tasks.push(tokio::spawn(async move {
                let mut latencies: Vec<u32> = Vec::new();
                let mut nodes: Vec<Bytes> = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    match client.call::<Bytes, Bytes>("echo", &payload).await {
                        Ok(answer) => {
                            latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                            ok.fetch_add(1, Ordering::Relaxed);
                            let name = node_of(&answer);
                            if !nodes.iter().any(|n| n == &name) {
                                nodes.push(name);
                            }
                        }
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                (latencies, nodes)
            }));
        }
    }

    // One line a second, from this task, until the deadline.
    let (mut last_ok, mut last_failed, mut t) = (0, 0, 0u64);
    loop {
        let next = started + Duration::from_secs(t + 1);
        if next > deadline {
            break;
        }
        tokio::time::sleep_until(next.into()).await;
        t += 1;
        let (now_ok, now_failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
        say(&format!(
            "t={t} ok={} failed={}",
            now_ok - last_ok,
            now_failed - last_failed
        ));
        (last_ok, last_failed) = (now_ok, now_failed);
    }

    let mut latencies = Vec::new();
    let mut nodes: Vec<String> = Vec::new();
    for task in tasks {
        let (l, n) = task.await?;
        latencies.extend(l);
        for name in n {
            let name = String::from_utf8_lossy(&name).into_owned();
            if !nodes.contains(&name) {
                nodes.push(name);
            }
        }
    }
    latencies.sort_unstable();
    nodes.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).copied().map_or(0, u64::from)
    };
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    Ok(LoadReport {
        calls: ok + failed,
        ok,
        failed,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        nodes,
    })
}

/// The node name an answer starts with (`<name>:...`).
fn node_of(answer: &Bytes) -> Bytes {
    let end = answer
        .iter()
        .position(|&b| b == b':')
        .unwrap_or(answer.len());
    answer.slice(..end)
}
