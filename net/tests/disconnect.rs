//! What a client learns when its connection ends: the typed close reason,
//! for the server's doing and for its own, on both backends.

mod util;

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use walle_codec::RawCodec;
use walle_net::{Client, ClientOptions, ClientState, ConnOptions};
use walle_process::CloseReason;

use util::*;

fn echo(client: &Client<RawCodec>, what: &'static [u8]) -> Bytes {
    runtime()
        .block_on(client.call("echo", &Bytes::from_static(what)))
        .expect("echo")
}

/// The server closing the client's session, then the server stopping:
/// to the client both are `PeerClosed` (the server's own side says
/// `Local`). The client reconnects after the first as configured, and its
/// last reason stays while the new connection is up.
#[test]
fn a_server_that_ends_the_session_is_peer_closed_to_the_client() {
    for server_backend in backends() {
        for backend in backends() {
            if !speaks_to(&backend, &server_backend) {
                continue; // ws speaks only to ws
            }
            let server = server(&server_backend, echo_router(), Default::default());
            let opts = ClientOptions::default()
                .reconnect(1, Duration::from_millis(5))
                .wait_connected(PATIENCE);
            let client = client(&backend, server.local_addr(), opts);
            assert!(client.last_close_reason().is_none());
            eventually("the server's session", || server.session_count() == 1);
            let session = server.sessions().pop().expect("a session");
            let (tx, rx) = mpsc::channel();
            session.on_close(move |reason| {
                let _ = tx.send(reason.clone());
            });
            session.close();
            let on_server = rx.recv_timeout(PATIENCE).expect("the server's close");
            assert!(matches!(on_server, CloseReason::Local), "{on_server:?}");
            eventually("the client's disconnect", || {
                client.last_close_reason().is_some()
            });
            let reason = client.last_close_reason();
            assert!(
                matches!(reason, Some(CloseReason::PeerClosed)),
                "{} to {}: {reason:?}",
                backend.name(),
                server_backend.name()
            );
            // Reconnected: the reason stays until this connection ends.
            assert_eq!(echo(&client, b"back"), Bytes::from_static(b"back"));
            assert!(matches!(
                client.last_close_reason(),
                Some(CloseReason::PeerClosed)
            ));

            let opts = ClientOptions::default();
            let quiet = util::client(&backend, server.local_addr(), opts);
            assert_eq!(echo(&quiet, b"up"), Bytes::from_static(b"up"));
            server.stop();
            eventually("the stop reaching the client", || {
                quiet.state() == ClientState::Idle
            });
            let reason = quiet.last_close_reason();
            assert!(
                matches!(reason, Some(CloseReason::PeerClosed)),
                "{reason:?}"
            );
        }
    }
}

/// The client's own ends: a server that says nothing for longer than the
/// client's read timeout is `Silent`, and closing the client is `Local`.
#[test]
fn a_silent_server_and_a_local_close_are_told_apart() {
    for backend in backends() {
        let server = server(&backend, echo_router(), Default::default());
        let limit = Duration::from_millis(100);
        let opts = ClientOptions::default().conn(ConnOptions::default().read_timeout(limit));
        let client = client(&backend, server.local_addr(), opts);
        eventually("the silence limit", || client.last_close_reason().is_some());
        let reason = client.last_close_reason();
        assert!(
            matches!(reason, Some(CloseReason::Silent(d)) if d == limit),
            "{}: {reason:?}",
            backend.name()
        );
        assert_eq!(client.state(), ClientState::Idle);

        let client = util::client(&backend, server.local_addr(), ClientOptions::default());
        assert_eq!(echo(&client, b"x"), Bytes::from_static(b"x"));
        client.close();
        eventually("the local close", || client.last_close_reason().is_some());
        assert!(matches!(
            client.last_close_reason(),
            Some(CloseReason::Local)
        ));
        assert_eq!(client.peer_addr(), None);
        server.stop();
    }
}
