//! The WebSocket upgrade, both ends: the server's, on tungstenite's
//! handshake with checks of the request (its path, its origin, its
//! subprotocol); the client's, written here so that whatever the server
//! sends right after its answer stays in the link's input.

use std::io;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::options::WsOptions;

/// The longest response head a client reads.
const MAX_HEAD: usize = 16 * 1024;

/// tungstenite's settings for a server's handshake (its buffers serve
/// only the request).
fn config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4 * 1024)
}

/// The server's checks of an upgrade request.
pub(super) struct Checks {
    pub(super) opts: Arc<WsOptions>,
}

fn refuse(status: StatusCode, why: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(why.to_owned()));
    *response.status_mut() = status;
    response
}

/// True when a comma-separated header of `request` lists `name`.
fn offers(request: &Request, name: &str) -> bool {
    request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == name)
}

impl Callback for Checks {
    fn on_request(
        self,
        request: &Request,
        mut response: Response,
    ) -> Result<Response, ErrorResponse> {
        let opts = &self.opts;
        if request.uri().path() != opts.path {
            return Err(refuse(StatusCode::NOT_FOUND, "no WebSocket on this path"));
        }
        if !opts.origins.is_empty() {
            if let Some(origin) = request.headers().get(header::ORIGIN) {
                if !opts
                    .origins
                    .iter()
                    .any(|o| o.as_bytes() == origin.as_bytes())
                {
                    return Err(refuse(StatusCode::FORBIDDEN, "origin not allowed"));
                }
            }
        }
        if let Some(name) = &opts.subprotocol {
            if !offers(request, name) {
                return Err(refuse(StatusCode::BAD_REQUEST, "subprotocol not offered"));
            }
            let value = HeaderValue::from_str(name)
                .map_err(|_| refuse(StatusCode::INTERNAL_SERVER_ERROR, "bad subprotocol"))?;
            response
                .headers_mut()
                .insert(header::SEC_WEBSOCKET_PROTOCOL, value);
        }
        Ok(response)
    }
}

/// Upgrades a server's accepted connection; returns the socket, ready
/// for frames. A client sends none before it has the answer (RFC 6455,
/// 4.1), so nothing read past the request is lost.
pub(super) async fn accept(stream: TcpStream, opts: Arc<WsOptions>) -> Result<TcpStream, WsError> {
    let ws =
        tokio_tungstenite::accept_hdr_async_with_config(stream, Checks { opts }, Some(config()))
            .await?;
    Ok(ws.into_inner())
}

/// Upgrades a client's connection to `host:port` on `path`; returns the
/// socket and what was read past the server's answer.
pub(super) async fn connect(
    mut stream: TcpStream,
    host: &str,
    port: u16,
    path: &str,
    opts: &WsOptions,
) -> io::Result<(TcpStream, BytesMut)> {
    let invalid = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("WebSocket upgrade failed: {what}"),
        )
    };
    if !path.starts_with('/')
        || path.contains(|c: char| c.is_ascii_whitespace() || c.is_ascii_control())
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a request path: {path:?}"),
        ));
    }
    let key = generate_key();
    let host = match host.contains(':') {
        true => format!("[{host}]:{port}"),
        false => format!("{host}:{port}"),
    };
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
    );
    if let Some(name) = &opts.subprotocol {
        if HeaderValue::from_str(name).is_err() || name.contains(['\r', '\n']) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a subprotocol that is no header value",
            ));
        }
        request.push_str(&format!("Sec-WebSocket-Protocol: {name}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;

    let mut buf = BytesMut::with_capacity(1024);
    let head = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(invalid("an answer head over 16 KiB"));
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed during the WebSocket upgrade",
            ));
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&buf[..head]) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(invalid("an answer that is not HTTP")),
    }
    let status = response.code.unwrap_or(0);
    if status != 101 {
        let kind = match status {
            403 => io::ErrorKind::PermissionDenied,
            404 => io::ErrorKind::NotFound,
            _ => io::ErrorKind::ConnectionRefused,
        };
        let reason = response.reason.unwrap_or("");
        return Err(io::Error::new(
            kind,
            format!("WebSocket upgrade refused: {status} {reason}"),
        ));
    }
    let value = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    if !value("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(invalid("no Upgrade: websocket in the answer"));
    }
    let upgrade = value("connection").is_some_and(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    });
    if !upgrade {
        return Err(invalid("no Connection: upgrade in the answer"));
    }
    if value("sec-websocket-accept") != Some(derive_accept_key(key.as_bytes()).as_str()) {
        return Err(invalid(
            "a Sec-WebSocket-Accept that does not match the key",
        ));
    }
    if value("sec-websocket-protocol") != opts.subprotocol.as_deref() {
        return Err(invalid("the server did not choose the subprotocol offered"));
    }
    Ok((stream, buf.split_off(head)))
}
