//! The `walle` command: call, load, inspect and serve walle services from
//! the shell.
//!
//! ```text
//! walle call 127.0.0.1:7000 echo hello --codec raw
//! walle bench 127.0.0.1:7000 --conns 16 --depth 16 --size 64 --secs 5
//! walle discover etcd://127.0.0.1:2379/services/echo --watch
//! walle serve --config server.toml
//! ```
//!
//! Exit status: 0 on success; 1 when the peer answered with an error
//! (printed as `error <code>: <description>` on stderr) or on a bad
//! argument or file; 2 when the peer was not reached or did not answer in
//! time. Logs go to stderr, filtered by `RUST_LOG` (default `error`);
//! `--log-json` writes them as JSON lines.

mod bench;
mod call;
mod common;
mod discover;
mod metrics_http;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::common::Failure;

#[derive(Debug, Parser)]
#[command(
    name = "walle",
    version,
    about = "Call, load, inspect and serve walle services."
)]
struct Cli {
    /// Write logs to stderr as JSON lines.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sends one request and prints the answer.
    Call(call::CallArgs),
    /// Loads a route and reports latency percentiles and throughput.
    Bench(bench::BenchArgs),
    /// Lists the nodes of a discovery target, and follows its changes.
    Discover(discover::DiscoverArgs),
    /// Runs an echo server described by a TOML file.
    Serve(serve::ServeArgs),
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(format!("starting a runtime: {e}")))
}

#[allow(clippy::print_stdout)] // the command's output
fn execute(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Call(args) => {
            let answer = runtime()?.block_on(call::run(&args))?;
            println!("{answer}");
        }
        Command::Bench(args) => println!("{}", bench::run(&args)?),
        Command::Discover(args) => runtime()?.block_on(discover::run(&args))?,
        Command::Serve(args) => runtime()?.block_on(serve::run(&args))?,
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::init_logs(cli.log_json);
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
