//! The ws backend's upgrade, over loopback sockets: the path (404
//! elsewhere), the allowed origins (403 for others), the subprotocol (400
//! when not offered), what clients dial, and wss refused until there is
//! TLS.

mod util;

use std::net::{SocketAddr, TcpStream};

use bytes::Bytes;
use util::*;
use walle_codec::RawCodec;
use walle_net::{Backend, Client, NetError, Scheme, Server, ServerOptions, WsOptions};
use walle_process::Router;

/// A raw upgrade of a new connection to `addr` on `path` with `headers`:
/// the answer, and the connection, kept open.
fn upgrade(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(String, TcpStream)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    ws_handshake(&mut stream, path, headers).map(|answer| (answer, stream))
}

fn echo(client: &Client<RawCodec>, what: &'static [u8]) -> Bytes {
    runtime()
        .block_on(client.call("echo", &Bytes::from_static(what)))
        .expect("echo")
}

/// With allowed origins set, a browser page from another origin gets 403;
/// an allowed one and a request without an origin (not a browser) get in.
#[test]
fn origins_outside_the_allowed_list_get_403() {
    let opts = WsOptions::default().allow_origin("https://play.example.com");
    let server = server(&Backend::Ws(opts), echo_router(), ServerOptions::default());
    let addr = server.local_addr();
    let refused = upgrade(addr, "/", &[("Origin", "https://evil.example.com")]).unwrap_err();
    assert!(refused.to_string().contains("403"), "{refused}");
    let _allowed =
        upgrade(addr, "/", &[("Origin", "https://play.example.com")]).expect("the allowed origin");
    let _program = upgrade(addr, "/", &[]).expect("no origin: not a browser");
    eventually("their sessions", || server.session_count() == 2);
}

/// A server speaking a subprotocol names it in its answer and refuses a
/// client that does not offer it (400); a client of that subprotocol
/// offers it and checks the answer.
#[test]
fn the_subprotocol_is_offered_checked_and_named() {
    let opts = WsOptions::default().subprotocol("walle.v1");
    let server = server(
        &Backend::Ws(opts.clone()),
        echo_router(),
        ServerOptions::default(),
    );
    let addr = server.local_addr();
    let (answer, _open) =
        upgrade(addr, "/", &[("Sec-WebSocket-Protocol", "chat, walle.v1")]).unwrap();
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("sec-websocket-protocol: walle.v1"),
        "{answer}"
    );
    let refused = upgrade(addr, "/", &[]).unwrap_err();
    assert!(refused.to_string().contains("400"), "{refused}");

    let speaking = Client::builder(addr, Router::new(RawCodec))
        .backend(Backend::Ws(opts))
        .build()
        .unwrap();
    assert_eq!(echo(&speaking, b"v1"), Bytes::from_static(b"v1"));
    let mute = Client::builder(addr, Router::new(RawCodec))
        .backend(Backend::ws())
        .build();
    assert!(
        matches!(&mute, Err(NetError::Io(e)) if e.to_string().contains("400")),
        "{mute:?}"
    );
    // A server with none, and a client insisting on one: the client
    // refuses the answer.
    let plain = server_plain();
    let insisting = Client::builder(plain.local_addr(), Router::new(RawCodec))
        .backend(Backend::Ws(WsOptions::default().subprotocol("walle.v1")))
        .build();
    assert!(insisting.is_err(), "{insisting:?}");
}

fn server_plain() -> Server<RawCodec> {
    server(&Backend::ws(), echo_router(), ServerOptions::default())
}

/// The upgrade is served on its path only (404 elsewhere; the query is
/// not compared); a client dials the path of its `ws://` endpoint, or its
/// options' path for a plain address.
#[test]
fn the_upgrade_path_is_served_and_dialled() {
    let opts = WsOptions::default().path("/game");
    let server = server(
        &Backend::Ws(opts.clone()),
        echo_router(),
        ServerOptions::default(),
    );
    let addr = server.local_addr();
    let refused = upgrade(addr, "/", &[]).unwrap_err();
    assert!(refused.to_string().contains("404"), "{refused}");
    let _open = upgrade(addr, "/game?room=7", &[]).expect("the path, with a query");

    let by_url = Client::builder(format!("ws://{addr}/game?v=2"), Router::new(RawCodec))
        .backend(Backend::ws())
        .build()
        .unwrap();
    assert_eq!(echo(&by_url, b"url"), Bytes::from_static(b"url"));
    let by_options = Client::builder(addr, Router::new(RawCodec))
        .backend(Backend::Ws(opts))
        .build()
        .unwrap();
    assert_eq!(
        echo(&by_options, b"options"),
        Bytes::from_static(b"options")
    );
    let lost = Client::builder(format!("ws://{addr}/"), Router::new(RawCodec))
        .backend(Backend::ws())
        .build();
    assert!(
        matches!(&lost, Err(NetError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound),
        "{lost:?}"
    );
}

/// `wss://` needs TLS, which no backend has yet: the build says so.
#[test]
fn wss_fails_at_build_until_there_is_tls() {
    let built = Client::builder("wss://localhost/game", Router::new(RawCodec))
        .backend(Backend::ws())
        .build();
    assert!(
        matches!(
            &built,
            Err(NetError::UnsupportedScheme {
                scheme: Scheme::Wss,
                backend: "ws"
            })
        ),
        "{built:?}"
    );
}
