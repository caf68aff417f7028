//! Flags and settings shared by the echo examples.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use walle::net::{Backend, Server};
use walle::prelude::*;

/// `--name value` pairs, with defaults.
pub struct Flags(HashMap<String, String>);

impl Flags {
    pub fn parse(defaults: &[(&str, &str)]) -> Result<Flags, String> {
        let mut map: HashMap<String, String> = defaults
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let name = flag
                .strip_prefix("--")
                .ok_or(format!("expected --flag, got {flag}"))?;
            if !map.contains_key(name) {
                let known: Vec<_> = defaults.iter().map(|(k, _)| format!("--{k}")).collect();
                return Err(format!("unknown flag {flag}; known: {}", known.join(" ")));
            }
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            map.insert(name.to_string(), value);
        }
        Ok(Flags(map))
    }

    pub fn str(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn num(&self, name: &str) -> Result<u64, String> {
        self.str(name).parse().map_err(|e| format!("--{name}: {e}"))
    }

    pub fn backend(&self) -> Result<Backend, String> {
        Backend::parse(self.str("backend")).ok_or(format!(
            "--backend: evloop, tcp, kcp or ws, not {}",
            self.str("backend")
        ))
    }

    /// The format's protocol and the echo route on it: uri `echo` for
    /// `walle` and `walle-proto`, id 1 for `walle-id` and `due`.
    pub fn format(&self) -> Result<(Protocol, Route<'static>), String> {
        Ok(match self.str("format") {
            "walle" => (Protocol::new(WalleFormat::new()), Route::Uri("echo")),
            "walle-id" => (Protocol::new(WalleFormat::with_ids()), Route::Id(1)),
            "walle-proto" => (Protocol::new(ProtoFormat::new()), Route::Uri("echo")),
            "due" => (Protocol::new(DueFormat::new()), Route::Id(1)),
            other => {
                return Err(format!(
                    "--format: walle, walle-id, walle-proto or due, not {other}"
                ));
            }
        })
    }

    pub fn dispatcher(&self) -> Result<Arc<Dispatcher>, String> {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let kind = match self.str("dispatch") {
            "inline" => Strategy::Inline,
            "pool" => Strategy::Pool(workers),
            "keyed" => Strategy::Keyed(workers),
            "tokio" => Strategy::Tokio,
            other => {
                return Err(format!(
                    "--dispatch: inline, pool, keyed or tokio, not {other}"
                ));
            }
        };
        let mut dispatcher = Dispatcher::new(kind, 65_536).map_err(|e| e.to_string())?;
        if kind == Strategy::Tokio {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            dispatcher = dispatcher.with_runtime(runtime.handle().clone());
            std::mem::forget(runtime); // lives as long as the program
        }
        Ok(Arc::new(dispatcher))
    }
}

/// The echo routes: every request answered with its payload, raw codec.
pub fn echo_router() -> Router<RawCodec> {
    let mut router = Router::new(RawCodec);
    router
        .route("echo", |_: &mut Context, req: Bytes| Ok(req))
        .expect("fresh router");
    router
        .route_id(1, |_: &mut Context, req: Bytes| Ok(req))
        .expect("fresh router");
    router
}

/// The echo server the flags describe (`--backend`, `--format`,
/// `--dispatch`), listening on `addr`.
pub fn echo_server(
    flags: &Flags,
    addr: &str,
) -> Result<Server<RawCodec>, Box<dyn std::error::Error>> {
    let (protocol, _) = flags.format()?;
    Ok(Server::builder(echo_router())
        .backend(flags.backend()?)
        .protocol(protocol)
        .dispatcher(flags.dispatcher()?)
        .bind(addr)?)
}
