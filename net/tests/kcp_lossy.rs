//! kcp through a lossy link: a relay between client and server drops 10%
//! of the datagrams both ways and delays the rest by 5 to 25 ms, which
//! reorders them. 1,000 requests with payloads up to 64 KiB, 16 at a
//! time, all come back whole and each to its own call.

mod util;

use std::time::{Duration, Instant};

use bytes::Bytes;
use util::relay::{Lossy, Relay};
use util::*;
use walle_net::{Backend, Client, ClientOptions, KcpOptions, ServerOptions};
use walle_process::CallOptions;

/// The payload of request `i`: its size (up to 64 KiB) and bytes tell it
/// from every other.
fn payload(i: u32) -> Bytes {
    let size = (i as usize * 7919) % (64 * 1024 + 1);
    let mut bytes = vec![0u8; size];
    for (k, b) in bytes.iter_mut().enumerate() {
        *b = (k as u32).wrapping_mul(31).wrapping_add(i) as u8;
    }
    if size >= 4 {
        bytes[..4].copy_from_slice(&i.to_be_bytes());
    }
    Bytes::from(bytes)
}

#[test]
fn a_thousand_large_requests_cross_a_lossy_link_whole() {
    let backend = Backend::kcp(KcpOptions::default());
    let server = server(&backend, echo_router(), ServerOptions::default());
    let relay = Relay::start(
        server.local_addr(),
        Lossy {
            drop: 0.10,
            min_delay: Duration::from_millis(5),
            jitter: Duration::from_millis(20),
            seed: 11,
        },
    );
    let client: Client<walle_codec::RawCodec> =
        client(&backend, relay.addr, ClientOptions::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let mut latencies = rt.block_on(async {
        let mut all = Vec::new();
        for batch in (0..1000u32).collect::<Vec<_>>().chunks(16) {
            let mut calls = tokio::task::JoinSet::new();
            for &i in batch {
                let client = client.clone();
                calls.spawn(async move {
                    let sent = Instant::now();
                    let options = CallOptions {
                        timeout: Some(Duration::from_secs(60)),
                        ..Default::default()
                    };
                    let answer: Bytes = client.call_with("echo", &payload(i), options).await?;
                    Ok::<_, walle_process::Error>((i, answer, sent.elapsed()))
                });
            }
            while let Some(done) = calls.join_next().await {
                // A failed call says which error it got and what the
                // server's kcp endpoint and the relay counted by then.
                let (i, answer, took) = done.expect("no panic").unwrap_or_else(|e| {
                    panic!(
                        "a call of batch {} failed after {:?}: {e:?}; server {:?}; \
                         relay dropped {} passed {}",
                        batch[0] / 16,
                        started.elapsed(),
                        server.io_stats().kcp,
                        relay.dropped.load(std::sync::atomic::Ordering::Relaxed),
                        relay.passed.load(std::sync::atomic::Ordering::Relaxed),
                    )
                });
                assert_eq!(answer, payload(i), "request {i}: its own answer, whole");
                all.push(took);
            }
        }
        all
    });
    assert_eq!(latencies.len(), 1000);
    drop(client);
    eventually("the session to end", || server.session_count() == 0);
    latencies.sort();
    let dropped = relay.dropped.load(std::sync::atomic::Ordering::Relaxed);
    let passed = relay.passed.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        dropped * 100 >= (dropped + passed) * 8,
        "the link lost about 10%: {dropped} of {}",
        dropped + passed
    );
    eprintln!(
        "lossy kcp: 1000 requests in {:?}; p50 {:?}, p99 {:?}; {dropped} datagrams dropped of {}",
        started.elapsed(),
        latencies[500],
        latencies[990],
        dropped + passed
    );
}
