//! The WebSocket upgrade, both ends: the server's checks of a request (its
//! path, its origin, its subprotocol) and the client's request, with the
//! tungstenite settings both run with.

use std::io;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::options::WsOptions;

/// Room in tungstenite's write buffer beyond a full batch and a fragment:
/// control frames (a pong, a close) and frame headers.
const SLACK: usize = 1024;

/// tungstenite's settings for messages of at most `max_message` bytes.
pub(super) fn config(opts: &WsOptions, max_message: usize) -> WebSocketConfig {
    let write = opts.write_buffer;
    WebSocketConfig::default()
        .read_buffer_size(opts.read_buffer.max(256))
        .write_buffer_size(write)
        .max_write_buffer_size(write + opts.fragment_size() + SLACK)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
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

/// Upgrades a server's accepted connection.
pub(super) async fn accept(
    stream: TcpStream,
    opts: Arc<WsOptions>,
    max_message: usize,
) -> Result<WebSocketStream<TcpStream>, WsError> {
    let config = config(&opts, max_message);
    tokio_tungstenite::accept_hdr_async_with_config(stream, Checks { opts }, Some(config)).await
}

/// Upgrades a client's connection to `url` (`ws://host:port/path`).
pub(super) async fn connect(
    stream: TcpStream,
    url: String,
    opts: &WsOptions,
    max_message: usize,
) -> io::Result<WebSocketStream<TcpStream>> {
    let invalid = |e: WsError| io::Error::new(io::ErrorKind::InvalidInput, e);
    let mut request = url.into_client_request().map_err(invalid)?;
    if let Some(name) = &opts.subprotocol {
        let value = HeaderValue::from_str(name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        request
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    let config = config(opts, max_message);
    match tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await {
        Ok((ws, _response)) => Ok(ws),
        Err(e) => Err(upgrade_error(e)),
    }
}

/// Why a client's upgrade failed, as an io error of a fitting kind.
fn upgrade_error(error: WsError) -> io::Error {
    match error {
        WsError::Io(e) => e,
        WsError::Http(response) => {
            let status = response.status();
            let kind = match status {
                StatusCode::FORBIDDEN => io::ErrorKind::PermissionDenied,
                StatusCode::NOT_FOUND => io::ErrorKind::NotFound,
                _ => io::ErrorKind::ConnectionRefused,
            };
            io::Error::new(kind, format!("WebSocket upgrade refused: {status}"))
        }
        e => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("WebSocket upgrade failed: {e}"),
        ),
    }
}
