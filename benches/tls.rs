//! TLS on the tcp backend against plain tcp, same run: the framework's
//! own client (tokio backend, `caller_runtime`) at 256 connections x 16
//! calls in flight x 1 KiB, against a plain tcp echo server and a TLS one
//! (rustls, a certificate made by rcgen). Interleaved rounds, starting
//! with a different one each round; the median per-round ratio (TLS /
//! plain) is printed with its min-max range.
//!
//! `cargo bench --bench tls` (`-- --test`: one short round, 4 connections).
#![allow(clippy::print_stdout)] // a bench report

#[path = "throughput/client_load.rs"]
#[allow(dead_code)] // shared with the throughput bench, which uses all of it
mod client_load;

use std::time::Duration;

use client_load::ClientLoad;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use walle::net::{Backend, Server, TcpOptions, TlsOptions};
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
    let plain = echo_server(Backend::tcp());
    let sealed = echo_server(Backend::Tcp(
        TcpOptions::default().tls(TlsOptions::server(path("cert.pem"), path("key.pem"))),
    ));
    let tls_client = Backend::Tcp(
        TcpOptions::default().tls(TlsOptions::client(path("ca.pem")).server_name("localhost")),
    );
    let mut loads = [
        ClientLoad::connect(plain.local_addr(), Backend::tcp(), conns, depth, size),
        ClientLoad::connect(sealed.local_addr(), tls_client, conns, depth, size),
    ];
    // Warm up both (handshakes done, buffers grown).
    for load in &mut loads {
        load.run_for(window / 4);
    }
    let mut rates: [Vec<f64>; 2] = Default::default();
    for round in 0..rounds {
        for k in 0..2 {
            let which = (round + k) % 2;
            let answered = loads[which].run_for(window);
            rates[which].push(answered as f64 / window.as_secs_f64());
        }
    }
    let ratios: Vec<f64> = (0..rounds).map(|r| rates[1][r] / rates[0][r]).collect();
    let (lo, hi) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    println!(
        "tcp backend, {conns}x{depth}x{size} B, {rounds} interleaved rounds of {window:?}: \
         plain {:.0} msgs/s, tls {:.0} msgs/s (medians)",
        median(rates[0].clone()),
        median(rates[1].clone())
    );
    println!("tls / plain: {:.2}x ({lo:.2}-{hi:.2})", median(ratios));
}
