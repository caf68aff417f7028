//! The reason a server's close callbacks get, on every backend, for each
//! way the server itself ends a session: a stop, a kick when the user binds
//! a newer session, a hook's refusal, a local close; and the peer's end.

mod util;

use std::net::SocketAddr;
use std::sync::mpsc;

use walle_net::{Backend, Server, ServerOptions};
use walle_process::CloseReason;

use util::*;

/// A server reporting each session's close reason by the peer's address;
/// with `refuse_first`, the session hook refuses the first session.
fn reporting_server(
    backend: &Backend,
    refuse_first: bool,
) -> (
    Server<walle_codec::RawCodec>,
    mpsc::Receiver<(SocketAddr, CloseReason)>,
) {
    let (tx, rx) = mpsc::channel();
    let server = Server::builder(echo_router())
        .backend(backend.clone())
        .options(ServerOptions::default())
        .on_session(move |session| {
            let (tx, peer) = (tx.clone(), session.peer());
            session.on_close(move |reason| {
                let _ = tx.send((peer, reason.clone()));
            });
            match refuse_first && session.id() == 1 {
                true => Err("not today".into()),
                false => Ok(()),
            }
        })
        .bind("127.0.0.1:0")
        .expect("bind");
    (server, rx)
}

fn reason_of(rx: &mpsc::Receiver<(SocketAddr, CloseReason)>, peer: SocketAddr) -> CloseReason {
    loop {
        let (from, reason) = rx.recv_timeout(PATIENCE).expect("a close reason");
        if from == peer {
            return reason;
        }
    }
}

#[test]
fn a_stop_is_stopped_and_a_peer_hanging_up_is_peer_closed() {
    for backend in all_backends() {
        let name = backend.name();
        let (server, rx) = reporting_server(&backend, false);
        let (mut leaving, mut staying) = (
            connect(&backend, server.local_addr()),
            connect(&backend, server.local_addr()),
        );
        raw_round_trip(&mut leaving, 1, b"hi");
        raw_round_trip(&mut staying, 1, b"hi");
        let peer = leaving.local_addr().unwrap();
        drop(leaving);
        let reason = reason_of(&rx, peer);
        assert!(
            matches!(reason, CloseReason::PeerClosed),
            "{name}: {reason:?}"
        );
        let peer = staying.local_addr().unwrap();
        server.stop();
        let reason = reason_of(&rx, peer);
        assert!(matches!(reason, CloseReason::Stopped), "{name}: {reason:?}");
        assert!(closed_by_server(&mut staying), "{name}: the stream ends");
    }
}

#[test]
fn a_kick_is_replaced_a_refusal_refused_and_a_close_local() {
    for backend in all_backends() {
        let name = backend.name();
        let (server, rx) = reporting_server(&backend, false);
        let (mut old, mut new) = (
            connect(&backend, server.local_addr()),
            connect(&backend, server.local_addr()),
        );
        raw_round_trip(&mut old, 1, b"hi");
        raw_round_trip(&mut new, 1, b"hi");
        let id_of = |stream: &Raw| {
            let peer = stream.local_addr().unwrap();
            server
                .sessions()
                .into_iter()
                .find(|s| s.peer() == peer)
                .expect("its session")
                .id()
        };
        server.bind_user(7, id_of(&old)).unwrap();
        server.bind_user(7, id_of(&new)).unwrap();
        let reason = reason_of(&rx, old.local_addr().unwrap());
        assert!(
            matches!(reason, CloseReason::Replaced),
            "{name}: {reason:?}"
        );
        assert!(closed_by_server(&mut old), "{name}: the kicked stream ends");
        let session = server.sessions().pop().expect("the new session");
        session.close();
        let reason = reason_of(&rx, new.local_addr().unwrap());
        assert!(matches!(reason, CloseReason::Local), "{name}: {reason:?}");
        server.stop();

        // The hook refuses the first session of this one.
        let (server, rx) = reporting_server(&backend, true);
        let mut refused = connect(&backend, server.local_addr());
        let local = refused.local_addr().unwrap();
        let reason = reason_of(&rx, local);
        assert!(
            matches!(reason, CloseReason::Refused(_)),
            "{name}: {reason:?}"
        );
        assert!(
            closed_by_server(&mut refused),
            "{name}: the refused stream ends"
        );
    }
}
