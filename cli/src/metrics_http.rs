//! `[metrics]` of `walle serve`: the Prometheus recorder, and `/metrics`
//! in the text format on a listener of our own (so that port 0 works and
//! the bound address is printed).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::common::Failure;

/// Request duration buckets, seconds: 50 us to 2.5 s.
const BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    2.5,
];

/// Installs the recorder (before any server is built, so that their
/// handles record) and serves `/metrics` on `addr`; returns the bound
/// address.
pub fn install(addr: &str) -> Result<SocketAddr, Failure> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&BUCKETS)
        .map_err(|e| Failure::Other(format!("[metrics]: {e}")))?
        .install_recorder()
        .map_err(|e| Failure::Other(format!("[metrics]: {e}")))?;
    let listener = TcpListener::bind(addr)
        .map_err(|e| Failure::Other(format!("[metrics] addr {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::Other(e.to_string()))?;
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("walle-metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            }
        })
        .map_err(|e| Failure::Other(e.to_string()))?;
    std::thread::Builder::new()
        .name("walle-metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = answer(stream, &handle) {
                    tracing::debug!(error = %e, "a /metrics request failed");
                }
            }
        })
        .map_err(|e| Failure::Other(e.to_string()))?;
    Ok(bound)
}

/// Answers one HTTP/1.x request: `GET /metrics` with the text format,
/// anything else with 404; then closes.
fn answer(stream: TcpStream, handle: &PrometheusHandle) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // The headers, up to the blank line; the bodies of GETs are empty.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut parts = request.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, kind, body) =
        if method == "GET" && (path == "/metrics" || path.starts_with("/metrics?")) {
            // The pools' counters are read when asked for.
            walle::net::record_pool_metrics();
            handle.run_upkeep();
            ("200 OK", "text/plain; version=0.0.4", handle.render())
        } else {
            (
                "404 Not Found",
                "text/plain",
                "not found: try /metrics\n".to_owned(),
            )
        };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}
