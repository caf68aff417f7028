//! `walle serve --config FILE`: an echo server from a TOML file.
//!
//! ```toml
//! addr = "127.0.0.1:7000"
//! format = "walle"                 # walle, walle-id, walle-proto, due
//! backend = "evloop"               # or a [backend] table: kind = "evloop", loops = 2, ...
//!
//! [server]                         # walle::net::ServerOptions
//! max_sessions = 10000
//!
//! [register]                       # announce the server in discovery
//! target = "etcd://127.0.0.1:2379/services/echo"
//! ttl_secs = 10
//!
//! [metrics]                        # Prometheus text format on /metrics
//! addr = "127.0.0.1:9100"
//!
//! [tls]                            # TLS (rustls), on the evloop and tcp backends
//! cert = "cert.pem"
//! key = "key.pem"
//! ```

use std::time::Duration;

use serde::Deserialize;
use walle::codec::RawCodec;
use walle::discovery::{Drivers, Node, reachable_addr};
use walle::net::{Backend, Server, ServerOptions, TlsOptions};
use walle::prelude::*;

use crate::common::{self, Failure};

/// The arguments of `walle serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The TOML file describing the server.
    #[arg(long)]
    pub config: std::path::PathBuf,
}

/// The file's keys; all but `addr` optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    addr: String,
    #[serde(default)]
    format: Option<toml::Spanned<String>>,
    /// A backend's name, or a table with `kind` and its options.
    #[serde(default)]
    backend: Option<toml::Spanned<toml::Value>>,
    #[serde(default)]
    server: ServerOptions,
    #[serde(default)]
    register: Option<Register>,
    #[serde(default)]
    metrics: Option<MetricsConfig>,
    #[serde(default)]
    tls: Option<toml::Spanned<TlsConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsConfig {
    /// The certificate chain, a PEM file.
    cert: std::path::PathBuf,
    /// The private key, a PEM file.
    key: std::path::PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsConfig {
    /// Where `/metrics` is served, `host:port` (port 0: any free one).
    addr: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    target: String,
    #[serde(default = "default_ttl")]
    ttl_secs: u64,
}

fn default_ttl() -> u64 {
    10
}

/// A server ready to run, from a configuration file's text.
#[derive(Debug)]
pub struct Plan {
    /// The address to bind.
    pub addr: String,
    /// The wire format's name.
    pub format: String,
    /// The backend with its options.
    pub backend: Backend,
    /// The server's options.
    pub server: ServerOptions,
    /// Where to register, and with what lease.
    pub register: Option<(String, Duration)>,
    /// Where to serve `/metrics`.
    pub metrics: Option<String>,
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Reads a configuration; an unknown key or a bad value is an error that
/// names the key and its line in `file`.
pub fn plan(file: &str, text: &str) -> Result<Plan, Failure> {
    let config: Config =
        toml::from_str(text).map_err(|e| Failure::Other(format!("{file}: {e}")))?;
    let at = |span: std::ops::Range<usize>| format!("{file}:{}", line_of(text, span.start));
    let format = match &config.format {
        Some(f) => {
            common::format(f.get_ref())
                .map_err(|e| Failure::Other(format!("{}: format: {e}", at(f.span()))))?;
            f.get_ref().clone()
        }
        None => "walle".into(),
    };
    let backend = match &config.backend {
        None => Backend::evloop(),
        Some(spanned) => match spanned.get_ref() {
            toml::Value::String(name) => common::backend(name)
                .map_err(|e| Failure::Other(format!("{}: backend: {e}", at(spanned.span()))))?,
            table @ toml::Value::Table(_) => table.clone().try_into::<Backend>().map_err(|e| {
                Failure::Other(format!(
                    "{}: [backend]: {}",
                    at(spanned.span()),
                    e.message()
                ))
            })?,
            other => {
                return Err(Failure::Other(format!(
                    "{}: backend: a name or a table, not {}",
                    at(spanned.span()),
                    other.type_str()
                )));
            }
        },
    };
    let backend = match (config.tls, backend) {
        (None, backend) => backend,
        (Some(tls), Backend::Tcp(options)) => {
            let TlsConfig { cert, key } = tls.into_inner();
            Backend::Tcp(options.tls(TlsOptions::server(cert, key)))
        }
        (Some(tls), Backend::Evloop(options)) => {
            let TlsConfig { cert, key } = tls.into_inner();
            Backend::Evloop(options.tls(TlsOptions::server(cert, key)))
        }
        (Some(tls), other) => {
            return Err(Failure::Other(format!(
                "{}: [tls]: TLS is served by the evloop and tcp backends, not {}",
                at(tls.span()),
                other.name()
            )));
        }
    };
    Ok(Plan {
        addr: config.addr,
        format,
        backend,
        server: config.server,
        register: config
            .register
            .map(|r| (r.target, Duration::from_secs(r.ttl_secs.max(1)))),
        metrics: config.metrics.map(|m| m.addr),
    })
}

/// The echo routes: uri `echo` and id 1, raw codec.
fn echo_router() -> Router<RawCodec> {
    let mut router = Router::new(RawCodec);
    let echo = |_: &mut Context, req: Bytes| Ok(req);
    if router.route("echo", echo).is_err() || router.route_id(1, echo).is_err() {
        unreachable!("a fresh router takes both routes");
    }
    router
}

/// The network a node of `backend` is dialled over, as discovery says.
fn net_of(backend: &Backend) -> &'static str {
    match backend {
        Backend::Kcp(_) => "kcp",
        Backend::Ws(_) => "ws",
        _ => "tcp",
    }
}

/// Serves until SIGINT or SIGTERM.
#[allow(clippy::print_stdout)] // the command's output
pub async fn run(args: &ServeArgs) -> Result<(), Failure> {
    let file = args.config.display().to_string();
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| Failure::Other(format!("{file}: {e}")))?;
    let plan = plan(&file, &text)?;
    let (protocol, _) = common::format(&plan.format)?;
    // Before the server: its handles register with the recorder at build.
    let metrics = match &plan.metrics {
        Some(addr) => Some(crate::metrics_http::install(addr)?),
        None => None,
    };
    let mut options = plan.server.clone();
    if metrics.is_some() {
        // Served metrics include the request duration histogram.
        options.conn.process.request_durations = true;
    }
    let server = Server::builder(echo_router())
        .backend(plan.backend.clone())
        .protocol(protocol)
        .options(options)
        .bind(plan.addr.as_str())
        .map_err(|e| Failure::Other(format!("binding {}: {e}", plan.addr)))?;
    let local = server.local_addr();
    println!(
        "serving echo on {local} (backend {}, format {})",
        plan.backend.name(),
        plan.format
    );
    if let Some(bound) = metrics {
        println!("metrics on http://{bound}/metrics");
    }
    let mut registration = None;
    if let Some((target, ttl)) = &plan.register {
        let addr = reachable_addr(&local.to_string())
            .map_err(|e| Failure::Other(format!("the address to register: {e}")))?;
        let node = Node::new(addr).with_net(net_of(&plan.backend));
        let r = Drivers::new()
            .register(target, node, *ttl)
            .await
            .map_err(|e| Failure::Unreachable(format!("registering in {target}: {e}")))?;
        println!("registered {} at {} in {target}", r.id(), r.node().addr);
        registration = Some(r);
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Failure::Other(e.to_string()))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    if let Some(r) = registration {
        if let Err(e) = r.deregister().await {
            tracing::warn!(error = %e, "deregistering");
        }
    }
    println!("stopping: {} sessions", server.session_count());
    server.stop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_reads() {
        let plan = plan(
            "f.toml",
            "addr = \"127.0.0.1:0\"\nformat = \"due\"\n[backend]\nkind = \"evloop\"\nloops = 2\n\
             [server]\nmax_sessions = 5\n[register]\ntarget = \"static://x:1\"\nttl_secs = 3\n",
        )
        .expect("reads");
        assert_eq!(plan.format, "due");
        assert!(matches!(&plan.backend, Backend::Evloop(o) if o.loops == 2));
        assert_eq!(plan.server.max_sessions, 5);
        assert_eq!(
            plan.register,
            Some(("static://x:1".into(), Duration::from_secs(3)))
        );
    }

    #[test]
    fn a_backend_by_name_and_defaults() {
        let plan = plan("f.toml", "addr = \"127.0.0.1:0\"\nbackend = \"tcp\"\n").expect("reads");
        assert_eq!(
            (plan.backend.name(), plan.format.as_str()),
            ("tcp", "walle")
        );
    }

    fn error(text: &str) -> String {
        plan("f.toml", text).expect_err("refused").to_string()
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key_and_line() {
        let e = error("addr = \"a:1\"\n\n[server]\nmax_sesions = 3\n");
        assert!(e.contains("line 4") && e.contains("max_sesions"), "{e}");
        let e = error("addr = \"a:1\"\ncolour = 1\n");
        assert!(e.contains("line 2") && e.contains("colour"), "{e}");
        let e = error("addr = \"a:1\"\nformat = \"xml\"\n");
        assert!(
            e.starts_with("f.toml:2: format") && e.contains("xml"),
            "{e}"
        );
        let e = error("addr = \"a:1\"\nbackend = \"quic\"\n");
        assert!(
            e.starts_with("f.toml:2: backend") && e.contains("quic"),
            "{e}"
        );
        let e = error("addr = \"a:1\"\n[backend]\nkind = \"evloop\"\nlops = 2\n");
        assert!(
            e.starts_with("f.toml:2: [backend]") && e.contains("lops"),
            "{e}"
        );
        let e = error("addr = \"a:1\"\n[server]\nmax_sessions = \"many\"\n");
        assert!(e.contains("line 3") && e.contains("max_sessions"), "{e}");
        let e =
            error("addr = \"a:1\"\nbackend = \"kcp\"\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n");
        assert!(e.starts_with("f.toml:3: [tls]") && e.contains("kcp"), "{e}");
        let e = error("format = \"walle\"\n");
        assert!(e.contains("addr"), "{e}");
    }
}
