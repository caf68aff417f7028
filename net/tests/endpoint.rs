//! Clients built from endpoints (strings, addresses, host names) and the
//! schemes today's backends refuse, on both backends.

mod util;

use std::time::Duration;

use bytes::Bytes;
use walle_codec::RawCodec;
use walle_net::{Backend, Client, ClientOptions, Endpoint, NetError, Scheme};
use walle_process::Router;

use util::*;

fn echo(client: &Client<RawCodec>, what: &'static [u8]) -> Bytes {
    runtime()
        .block_on(client.call("echo", &Bytes::from_static(what)))
        .expect("echo")
}

/// `tcp://` URLs, bare `host:port` with a DNS name, `(host, port)` and an
/// `Endpoint` all reach the server, from either backend to either.
#[test]
fn endpoint_strings_and_host_names_dial_on_both_backends() {
    for server_backend in backends() {
        let server = server(&server_backend, echo_router(), Default::default());
        let port = server.local_addr().port();
        for backend in backends() {
            if !speaks_to(&backend, &server_backend) {
                continue; // ws speaks only to ws
            }
            let given = [
                (
                    format!("tcp://127.0.0.1:{port}"),
                    format!("tcp://127.0.0.1:{port}"),
                ),
                (
                    format!("localhost:{port}"),
                    format!("tcp://localhost:{port}"),
                ),
            ];
            for (text, shown) in given {
                let client = Client::builder(text.as_str(), echo_router())
                    .backend(backend.clone())
                    .build()
                    .unwrap_or_else(|e| panic!("{} to {text}: {e}", backend.name()));
                assert_eq!(echo(&client, b"hi"), Bytes::from_static(b"hi"));
                assert_eq!(client.endpoint().to_string(), shown);
                assert_eq!(client.peer_addr(), Some(server.local_addr()), "{text}");
            }
            let endpoint: Endpoint = format!("localhost:{port}").parse().unwrap();
            for client in [
                Client::builder(&endpoint, echo_router()),
                Client::builder(("localhost", port), echo_router()),
                Client::builder(format!("tcp://localhost:{port}"), echo_router()),
            ] {
                let client = client.backend(backend.clone()).build().unwrap();
                assert_eq!(echo(&client, b"again"), Bytes::from_static(b"again"));
                assert_eq!(client.endpoint(), &endpoint);
            }
        }
        server.stop();
    }
}

/// A `ws://`, `wss://` or `kcp://` endpoint parses, but a backend of
/// another transport cannot dial it: the build says so, naming the scheme
/// and the backend, before any dial (lazy or not, `build` or `connect`).
#[test]
fn schemes_a_backend_cannot_dial_fail_at_build() {
    for backend in backends() {
        let schemes = [
            ("ws://127.0.0.1:1/game", Scheme::Ws),
            ("wss://localhost/game", Scheme::Wss),
            ("kcp://127.0.0.1:1", Scheme::Kcp),
        ];
        // The ws backend dials ws:// (tested in ws.rs).
        let dials = |scheme: Scheme| matches!(backend, Backend::Ws(_)) && scheme == Scheme::Ws;
        for (text, scheme) in schemes.into_iter().filter(|(_, s)| !dials(*s)) {
            for lazy in [false, true] {
                let built = Client::builder(text, Router::new(RawCodec))
                    .backend(backend.clone())
                    .options(ClientOptions::default().lazy(lazy))
                    .build();
                let Err(err) = built else {
                    panic!("{} built a client of {text}", backend.name());
                };
                assert!(
                    matches!(&err, NetError::UnsupportedScheme { scheme: s, backend: b }
                        if *s == scheme && *b == backend.name()),
                    "{err:?}"
                );
                let message = err.to_string();
                assert_eq!(
                    message,
                    format!(
                        "the {} backend cannot dial {scheme}:// endpoints",
                        backend.name()
                    )
                );
            }
            let connect = runtime().block_on(
                Client::builder(text, Router::new(RawCodec))
                    .backend(backend.clone())
                    .connect(),
            );
            assert!(
                matches!(connect, Err(NetError::UnsupportedScheme { .. })),
                "{connect:?}"
            );
        }
        let bad = Client::builder("tcp://no port", Router::new(RawCodec))
            .backend(backend.clone())
            .build();
        assert!(
            matches!(&bad, Err(NetError::Endpoint(e)) if e.input() == "tcp://no port"),
            "{bad:?}"
        );
    }
}

/// A host that does not resolve is a failed dial like a refused one: it
/// goes through the backoff and, once the attempts run out, fails the
/// build with the resolver's error.
#[test]
fn an_unresolvable_host_is_a_failed_dial() {
    for backend in backends() {
        let opts = ClientOptions::default()
            .reconnect(1, Duration::from_millis(5))
            .connect_timeout(Duration::from_secs(5));
        let built = Client::builder("no-such-host.invalid:7000", Router::new(RawCodec))
            .backend(backend.clone())
            .options(opts)
            .build();
        assert!(
            matches!(&built, Err(NetError::Io(_))),
            "{}: {built:?}",
            backend.name()
        );
    }
}

/// A kcp client dials `kcp://` URLs, and endpoints written without a
/// scheme (a bare `host:port`, `(host, port)`, a socket address) over
/// kcp; a `tcp://` or `ws://` one fails at build; a host that does not
/// resolve is a failed dial.
#[test]
fn kcp_clients_dial_kcp_and_endpoints_without_a_scheme() {
    let backend = Backend::kcp(walle_net::KcpOptions::default());
    let server = server(&backend, echo_router(), Default::default());
    let (addr, port) = (server.local_addr(), server.local_addr().port());
    for (text, shown) in [
        (
            format!("kcp://127.0.0.1:{port}"),
            format!("kcp://127.0.0.1:{port}"),
        ),
        (
            format!("localhost:{port}"),
            format!("kcp://localhost:{port}"),
        ),
    ] {
        let client = Client::builder(text.as_str(), echo_router())
            .backend(backend.clone())
            .build()
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(echo(&client, b"hi"), Bytes::from_static(b"hi"));
        assert_eq!(client.endpoint().to_string(), shown);
        assert_eq!(client.peer_addr(), Some(addr), "{text}");
    }
    for client in [
        Client::builder(("localhost", port), echo_router()),
        Client::builder(addr, echo_router()),
    ] {
        let client = client.backend(backend.clone()).build().unwrap();
        assert_eq!(echo(&client, b"again"), Bytes::from_static(b"again"));
        assert_eq!(client.endpoint().scheme(), Scheme::Kcp);
    }
    for (text, scheme) in [
        (format!("tcp://127.0.0.1:{port}"), Scheme::Tcp),
        ("ws://127.0.0.1:1/game".to_owned(), Scheme::Ws),
    ] {
        let built = Client::builder(text.as_str(), Router::new(RawCodec))
            .backend(backend.clone())
            .build();
        assert!(
            matches!(&built, Err(NetError::UnsupportedScheme { scheme: s, backend: "kcp" }) if *s == scheme),
            "{text}: {built:?}"
        );
    }
    let opts = ClientOptions::default()
        .reconnect(1, Duration::from_millis(5))
        .connect_timeout(Duration::from_secs(5));
    let built = Client::builder("no-such-host.invalid:7000", Router::new(RawCodec))
        .backend(backend.clone())
        .options(opts)
        .build();
    assert!(matches!(&built, Err(NetError::Io(_))), "{built:?}");
}
