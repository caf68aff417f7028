//! TLS against plain TCP, same run, on the tcp and evloop backends: the
//! framework's own client (tokio backend, `caller_runtime`) at 256
//! connections x 16 calls in flight x 1 KiB, against a plain echo server
//! and a TLS one (rustls, a certificate made by rcgen) of each backend.
//! Interleaved rounds, starting with a different one each round; the
//! median per-round ratio (TLS / plain, per backend) is printed with its
//! min-max range.
//!
//! `cargo bench --bench tls` (`-- --test`: one short round, 4 connections).
#![allow(clippy::print_stdout)] // a bench report

#[path = "throughput/client_load.rs"]
#[allow(dead_code)] // shared with the throughput bench, which uses all of it
mod client_load;

use std::time::Duration;

use client_load::ClientLoad;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use walle::net::{Backend, EvloopOptions, Server, TcpOptions, TlsOptions};
use walle::prelude::*;

fn echo_server(backend: Backend) -> Server<RawCodec> {
    let mut router = Router::new(RawCodec);
    router
        .route("echo", |_: &mut Context, req: Bytes| Ok(req))
        .expect("a fresh router");
    Server::builder(router)
        .backend(backend)
        .bind("127.0.0.1:0")
        .expect("bind")
}

/// A CA and a server certificate for `localhost` it signed, as PEM files.
fn pki(dir: &std::path::Path) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "walle bench CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("a key")).expect("a CA");
    let key = KeyPair::generate().expect("a key");
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("a certificate");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write");
    std::fs::write(dir.join("cert.pem"), leaf.pem()).expect("write");
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("write");
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let (rounds, window, conns) = match quick {
        true => (1, Duration::from_millis(200), 4),
        false => (9, Duration::from_millis(1500), 256),
    };
    let (depth, size) = (16, 1024);
    let dir = tempfile::tempdir().expect("a temp dir");
    pki(dir.path());
    let path = |name: &str| dir.path().join(name);
    let server_tls = || TlsOptions::server(path("cert.pem"), path("key.pem"));
    let servers = [
        ("tcp", echo_server(Backend::tcp())),
        (
            "tcp+tls",
            echo_server(Backend::Tcp(TcpOptions::default().tls(server_tls()))),
        ),
        ("evloop", echo_server(Backend::evloop())),
        (
            "evloop+tls",
            echo_server(Backend::Evloop(EvloopOptions::default().tls(server_tls()))),
        ),
    ];
    let tls_client = Backend::Tcp(
        TcpOptions::default().tls(TlsOptions::client(path("ca.pem")).server_name("localhost")),
    );
    let mut loads: Vec<ClientLoad> = servers
        .iter()
        .map(|(name, server)| {
            let client = match name.ends_with("+tls") {
                true => tls_client.clone(),
                false => Backend::tcp(),
            };
            ClientLoad::connect(server.local_addr(), client, true, conns, depth, size)
        })
        .collect();
    // Warm up every load (handshakes done, buffers grown).
    for load in &mut loads {
        load.run_for(window / 4);
    }
    let n = loads.len();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); n];
    for round in 0..rounds {
        for k in 0..n {
            let which = (round + k) % n;
            let answered = loads[which].run_for(window);
            rates[which].push(answered as f64 / window.as_secs_f64());
        }
    }
    println!(
        "{conns}x{depth}x{size} B, {rounds} interleaved rounds of {window:?}, the tcp backend's client"
    );
    for (i, (name, _)) in servers.iter().enumerate() {
        println!(
            "{name:>12}: {:.0} msgs/s (median)",
            median(rates[i].clone())
        );
    }
    for (plain, sealed) in [(0, 1), (2, 3)] {
        let ratios: Vec<f64> = (0..rounds)
            .map(|r| rates[sealed][r] / rates[plain][r])
            .collect();
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        println!(
            "{} / {}: {:.2}x ({lo:.2}-{hi:.2})",
            servers[sealed].0,
            servers[plain].0,
            median(ratios)
        );
    }
}
