//! What the subcommands share: formats, backends and routes by name, and
//! how a command fails.

use std::fmt;

use walle::net::Backend;
use walle::packet::{DueFormat, ProtoFormat, Protocol, Route, WalleFormat};

/// How a command failed, and so its exit status.
#[derive(Debug)]
pub enum Failure {
    /// The peer answered with an error (exit 1).
    Answered {
        /// The error code the peer sent.
        code: u32,
        /// Its description.
        desc: String,
    },
    /// The peer was not reached, or did not answer in time (exit 2).
    Unreachable(String),
    /// Anything else: bad arguments, a bad configuration file (exit 1).
    Other(String),
}

impl Failure {
    /// The process exit status for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Answered { .. } | Failure::Other(_) => 1,
            Failure::Unreachable(_) => 2,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Answered { code, desc } => write!(f, "error {code}: {desc}"),
            Failure::Unreachable(why) => write!(f, "unreachable: {why}"),
            Failure::Other(why) => f.write_str(why),
        }
    }
}

impl From<String> for Failure {
    fn from(why: String) -> Self {
        Failure::Other(why)
    }
}

/// The wire formats by name; the second value tells whether routes are
/// numeric (`walle-id`, `due`).
pub fn format(name: &str) -> Result<(Protocol, bool), Failure> {
    Ok(match name {
        "walle" => (Protocol::new(WalleFormat::new()), false),
        "walle-id" => (Protocol::new(WalleFormat::with_ids()), true),
        "walle-proto" => (Protocol::new(ProtoFormat::new()), false),
        "due" => (Protocol::new(DueFormat::new()), true),
        other => {
            return Err(Failure::Other(format!(
                "--format: walle, walle-id, walle-proto or due, not {other}"
            )));
        }
    })
}

/// The backends by name, with their default options.
pub fn backend(name: &str) -> Result<Backend, Failure> {
    Backend::parse(name)
        .ok_or_else(|| Failure::Other(format!("--backend: evloop, tcp, kcp or ws, not {name}")))
}

/// TLS for a client: the authorities to trust and the name to check.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Speak TLS (evloop and tcp backends), trusting the authorities in
    /// this PEM file.
    #[arg(long = "tls-ca", value_name = "PEM")]
    pub ca: Option<std::path::PathBuf>,
    /// The name the server's certificate must carry (default: the
    /// address's host).
    #[arg(long = "tls-name", value_name = "NAME", requires = "ca")]
    pub name: Option<String>,
}

/// The client backend by name, with TLS when asked for.
pub fn client_backend(name: &str, tls: &TlsArgs) -> Result<Backend, Failure> {
    let backend = backend(name)?;
    let Some(ca) = &tls.ca else {
        return Ok(backend);
    };
    let mut options = walle::net::TlsOptions::client(ca);
    if let Some(name) = &tls.name {
        options = options.server_name(name);
    }
    match backend {
        Backend::Tcp(tcp) => Ok(Backend::Tcp(tcp.tls(options))),
        Backend::Evloop(evloop) => Ok(Backend::Evloop(evloop.tls(options))),
        other => Err(Failure::Other(format!(
            "--tls-ca: TLS is spoken by the evloop and tcp backends, not {}",
            other.name()
        ))),
    }
}

/// A route as the format takes it: a number on numeric formats, else a
/// name (`echo`, `game.Room/Join`).
pub fn route(text: &str, numeric: bool) -> Result<Route<'_>, Failure> {
    if !numeric {
        return Ok(Route::Uri(text));
    }
    text.parse::<u32>().map(Route::Id).map_err(|_| {
        Failure::Other(format!(
            "route {text:?}: this format routes by number (walle-id, due take e.g. 1)"
        ))
    })
}

/// The route `echo` answers on in `format`: uri `echo`, or id 1 where
/// routes are numeric.
pub fn echo_route(numeric: bool) -> &'static str {
    if numeric { "1" } else { "echo" }
}

/// Whether `addr` is a discovery target (a URL of a driver's scheme:
/// `mem://`, `static://`, `etcd://`) rather than a server's endpoint.
pub fn is_discovery_target(addr: &str) -> bool {
    let Some((scheme, _)) = addr.split_once("://") else {
        return false;
    };
    walle::discovery::Drivers::new()
        .schemes()
        .any(|known| known == scheme)
}

/// Installs the log subscriber: `RUST_LOG` filters (default `error`: the
/// command reports its own failures),
/// written to stderr, as JSON lines with `json`.
pub fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
}
