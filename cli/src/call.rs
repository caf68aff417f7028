//! `walle call`: one request, its answer printed.

use std::time::Duration;

use bytes::Bytes;
use walle::clientproxy::{ClientProxy, ProxyCallOptions};
use walle::codec::{Codec, JsonCodec, MsgPackCodec, RawCodec};
use walle::net::{Client, ClientOptions};
use walle::packet::Metadata;
use walle::process::{CallOptions, Error, Router};

use crate::common::{self, Failure};

/// The payload codecs `call` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CodecName {
    /// The payload is JSON text; the answer is printed as pretty JSON.
    Json,
    /// The payload is JSON text, sent as MessagePack; the answer is
    /// printed as pretty JSON.
    Msgpack,
    /// The payload's bytes as they are; the answer as text, or as hex
    /// when it is not printable UTF-8.
    Raw,
}

/// The arguments of `walle call`.
#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// The server: `host:port`, `tcp://`, `kcp://` or `ws://host:port/path`,
    /// or a discovery target (`static://host:port,...`, `etcd://...`)
    /// called through the client proxy.
    pub addr: String,
    /// The route: a name (`echo`), or a number for the numeric formats
    /// (`walle-id`, `due`).
    pub route: String,
    /// The request payload (empty when left out; `null` for json and
    /// msgpack).
    pub payload: Option<String>,
    /// The wire format: walle, walle-id, walle-proto or due.
    #[arg(long, default_value = "walle")]
    pub format: String,
    /// The io backend: evloop, tcp, kcp or ws.
    #[arg(long, default_value = "evloop")]
    pub backend: String,
    /// The payload codec.
    #[arg(long, value_enum, default_value = "json")]
    pub codec: CodecName,
    /// Request metadata, repeated: `--md trace=abc --md user=7`.
    #[arg(long = "md", value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
    /// Milliseconds to wait for the connection and for the answer.
    #[arg(long, default_value_t = 5000)]
    pub timeout: u64,
    #[command(flatten)]
    pub tls: common::TlsArgs,
}

/// Runs the call; returns what to print.
pub async fn run(args: &CallArgs) -> Result<String, Failure> {
    let payload = args.payload.as_deref().unwrap_or("");
    match args.codec {
        CodecName::Raw => {
            let answer: Bytes =
                call(RawCodec, args, Bytes::copy_from_slice(payload.as_bytes())).await?;
            Ok(show_raw(&answer))
        }
        CodecName::Json => {
            let answer: serde_json::Value = call(JsonCodec, args, json_payload(payload)?).await?;
            pretty(&answer)
        }
        CodecName::Msgpack => {
            let answer: serde_json::Value =
                call(MsgPackCodec, args, json_payload(payload)?).await?;
            pretty(&answer)
        }
    }
}

fn json_payload(text: &str) -> Result<serde_json::Value, Failure> {
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_str(text).map_err(|e| Failure::Other(format!("the payload is not JSON: {e}")))
}

fn pretty(value: &serde_json::Value) -> Result<String, Failure> {
    serde_json::to_string_pretty(value).map_err(|e| Failure::Other(e.to_string()))
}

/// Text when the answer is printable UTF-8, else lowercase hex.
fn show_raw(answer: &[u8]) -> String {
    match std::str::from_utf8(answer) {
        Ok(text)
            if text
                .chars()
                .all(|c| !c.is_control() || c == '\n' || c == '\t') =>
        {
            text.to_owned()
        }
        _ => answer.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

fn metadata(pairs: &[String]) -> Result<Metadata, Failure> {
    let mut md = Metadata::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| Failure::Other(format!("--md {pair:?}: expected KEY=VALUE")))?;
        md.insert(key, value);
    }
    Ok(md)
}

/// What a failed call means for the command.
pub fn call_failure(e: Error, timeout: Duration) -> Failure {
    match e {
        Error::Remote { code, desc } => Failure::Answered { code: code.0, desc },
        Error::Timeout => Failure::Unreachable(format!("no answer within {timeout:?}")),
        Error::SessionClosed => {
            Failure::Unreachable("the connection closed before the answer".into())
        }
        other => Failure::Other(other.to_string()),
    }
}

async fn call<C, Req, Resp>(codec: C, args: &CallArgs, req: Req) -> Result<Resp, Failure>
where
    C: Codec<Req> + Codec<Resp> + Clone + Send + Sync + Unpin + 'static,
{
    let (protocol, numeric) = common::format(&args.format)?;
    let route = common::route(&args.route, numeric)?;
    let backend = common::client_backend(&args.backend, &args.tls)?;
    let timeout = Duration::from_millis(args.timeout);
    let md = metadata(&args.metadata)?;
    let options = CallOptions {
        timeout: Some(timeout),
        metadata: (!args.metadata.is_empty()).then_some(&md),
    };
    if common::is_discovery_target(&args.addr) {
        let proxy = ClientProxy::builder(args.addr.as_str(), Router::new(codec))
            .backend(backend)
            .protocol(protocol)
            .client_options(ClientOptions::default().connect_timeout(timeout))
            .connect()
            .await
            .map_err(|e| proxy_failure(e, timeout))?;
        let answer = proxy
            .call_with(route, &req, ProxyCallOptions::default().call(options))
            .await
            .map_err(|e| proxy_failure(e, timeout));
        proxy.close().await;
        return answer;
    }
    let client = Client::builder(args.addr.as_str(), Router::new(codec))
        .backend(backend)
        .protocol(protocol)
        .options(ClientOptions::default().connect_timeout(timeout))
        .connect()
        .await
        .map_err(|e| Failure::Unreachable(format!("{}: {e}", args.addr)))?;
    let answer = client
        .call_with(route, &req, options)
        .await
        .map_err(|e| call_failure(e, timeout));
    client.close();
    answer
}

fn proxy_failure(e: walle::clientproxy::Error, timeout: Duration) -> Failure {
    use walle::clientproxy::Error as Proxy;
    match e {
        Proxy::Call(e) => call_failure(e, timeout),
        e @ (Proxy::NoNode { .. } | Proxy::Connect { .. }) => Failure::Unreachable(e.to_string()),
        other => Failure::Other(other.to_string()),
    }
}
