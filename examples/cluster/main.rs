//! The shape of a game cluster: a gate in front, nodes behind, found
//! through discovery and called through client proxies.
//!
//! ```text
//! cargo run --release --example cluster                 # all in one process on mem://
//! cargo run --release --example cluster -- node --target URL --addr HOST:PORT --name NAME
//! cargo run --release --example cluster -- gate --target URL --listen HOST:PORT
//! cargo run --release --example cluster -- client --gate HOST:PORT --conns N --depth D --secs S
//! ```
//!
//! - `node`: a server (walle format) registered under the target as NAME
//!   with a 3 s TTL; `echo` answers `NAME:<payload>`, `count` keeps a
//!   counter per user (the payload) and answers `NAME:<count>`.
//! - `gate`: a server that forwards every request to a node through a
//!   client proxy: `echo` round-robin, `count` by consistent hash on the
//!   user id, so a user's counter stays on one node.
//! - `client`: load on `echo` through the gate; one line a second with the
//!   calls answered and failed in that second, then a summary.
//!
//! SIGTERM or Ctrl-C stops a node or the gate gracefully (offline in
//! discovery, a grace for proxies, drain, deregister). `mem://` works only
//! within one process; separate processes need `etcd://host:port/prefix`
//! and a build with `--features etcd`.
#![allow(clippy::print_stdout)] // a command-line program: its output is the point

mod cluster;

use std::collections::HashMap;
use std::process::ExitCode;

use walle::discovery::Drivers;

type BoxError = cluster::BoxError;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BoxError::from)
        .and_then(|runtime| runtime.block_on(run(command.as_deref(), &rest)));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cluster: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(command: Option<&str>, args: &[String]) -> Result<ExitCode, BoxError> {
    let say = |line: &str| println!("{line}");
    match command {
        None => {
            let report = cluster::run_local("mem:///cluster/nodes", 3.0, &say).await?;
            Ok(success(report.load.failed == 0 && report.clean))
        }
        Some("node") => {
            let flags = flags(
                args,
                &[("target", ""), ("addr", "127.0.0.1:0"), ("name", "")],
            )?;
            let (target, addr, name) = (
                flag(&flags, "target")?,
                &flags["addr"],
                flag(&flags, "name")?,
            );
            let drivers = Drivers::new();
            cluster::check_target(&drivers, target)?;
            let service = cluster::node_service(drivers, target, addr, name);
            let bound = service.bound_addr();
            let app = cluster::node_app(service, true);
            let run = tokio::spawn(app.run());
            let addr = cluster::bound(&bound, std::time::Duration::from_secs(10)).await;
            if let Ok(addr) = addr {
                println!("node {name}: listening on {addr}, registered under {target}");
            }
            let report = run.await??;
            println!("node {name}: stopped ({})", report.sequence().join(", "));
            Ok(success(report.is_clean()))
        }
        Some("gate") => {
            let flags = flags(args, &[("target", ""), ("listen", "127.0.0.1:7100")])?;
            let target = flag(&flags, "target")?;
            let drivers = Drivers::new();
            cluster::check_target(&drivers, target)?;
            let proxies = cluster::GateProxies::connect(&drivers, target).await?;
            let service = cluster::gate_service(&proxies, &flags["listen"])?;
            let bound = service.bound_addr();
            let app = cluster::gate_app(
                &proxies,
                service,
                1,
                std::time::Duration::from_secs(30),
                true,
            );
            let run = tokio::spawn(app.run());
            if let Ok(addr) = cluster::bound(&bound, std::time::Duration::from_secs(10)).await {
                println!("gate: listening on {addr}, forwarding to {target}");
            }
            let report = run.await??;
            println!("gate: stopped ({})", report.sequence().join(", "));
            Ok(success(report.is_clean()))
        }
        Some("client") => {
            let flags = flags(
                args,
                &[
                    ("gate", "127.0.0.1:7100"),
                    ("conns", "4"),
                    ("depth", "8"),
                    ("secs", "5"),
                ],
            )?;
            let num = |name: &str| {
                flags[name]
                    .parse::<f64>()
                    .map_err(|e| format!("--{name}: {e}"))
            };
            let (conns, depth, secs) = (num("conns")?, num("depth")?, num("secs")?);
            let report =
                cluster::load::run(&flags["gate"], conns as usize, depth as usize, secs, &say)
                    .await?;
            println!("{}", report.line());
            Ok(success(report.failed == 0 && report.ok > 0))
        }
        Some(other) => {
            Err(format!("unknown subcommand {other:?}; known: node, gate, client").into())
        }
    }
}

fn success(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `--name value` pairs over `defaults` (an empty default: required).
fn flags(args: &[String], defaults: &[(&str, &str)]) -> Result<HashMap<String, String>, String> {
    let mut map: HashMap<String, String> = defaults
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let name = arg
            .strip_prefix("--")
            .filter(|name| map.contains_key(*name))
            .ok_or_else(|| {
                let known: Vec<_> = defaults.iter().map(|(k, _)| format!("--{k}")).collect();
                format!("unknown flag {arg}; known: {}", known.join(" "))
            })?;
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        map.insert(name.to_string(), value.clone());
    }
    Ok(map)
}

fn flag<'a>(flags: &'a HashMap<String, String>, name: &str) -> Result<&'a str, String> {
    match flags[name].as_str() {
        "" => Err(format!("--{name} is required")),
        value => Ok(value),
    }
}
