//! An echo server: every request is answered with its payload (raw
//! codec) on uri `echo` (`walle`, `walle-proto`) or id 1 (`walle-id`,
//! `due`). Prints its address, runs until SIGINT or SIGTERM, then stops
//! gracefully. With `--backend kcp` it listens on the UDP port of
//! `--addr`. `--backend ws` serves WebSocket on `/` (one binary message
//! per frame; `examples/web/` is a browser client of it).
//!
//! ```text
//! cargo run --release --example echo_server -- --backend evloop|tcp|kcp|ws --addr 127.0.0.1:7000
//!     --format walle|walle-id|walle-proto|due [--dispatch inline|pool|keyed|tokio]
//! ```
#![allow(clippy::print_stdout)] // a command-line program: its output is the point

#[path = "common/mod.rs"]
mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let flags = common::Flags::parse(&[
        ("backend", "evloop"),
        ("addr", "127.0.0.1:7000"),
        ("format", "walle"),
        ("dispatch", "inline"),
    ])?;
    let server = common::echo_server(&flags, flags.str("addr"))?;
    println!(
        "echo server listening on {} (backend {}, format {}, dispatch {})",
        server.local_addr(),
        flags.str("backend"),
        flags.str("format"),
        flags.str("dispatch")
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    })?;
    println!("stopping: {} sessions", server.session_count());
    server.stop();
    Ok(())
}
