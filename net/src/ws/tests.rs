//! The shared connection scenarios (`crate::testing`) over a WebSocket
//! link over a Unix socket pair, served by the same
//! tasks as every tokio connection, the test speaking WebSocket frames by
//! hand at the other end.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::net::UnixStream;
use tokio::runtime::Runtime;

use super::link::{Role, WsLink};
use crate::options::{ConnOptions, WsOptions};
use crate::tcp;
use crate::testing::{
    PEER, Peer, answers_then_ends_as_the_peer_did, closes_with_their_reasons, echo,
};

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Starts the tasks of a WebSocket (already upgraded: the server's end)
/// over a Unix socket on `runtime`.
fn connect(runtime: &Runtime, opts: ConnOptions) -> Peer {
    let (stream, attach, peer) = echo();
    let ws = WsOptions::default().close_timeout(Duration::from_millis(200));
    runtime.block_on(async {
        let stream = UnixStream::from_std(stream).expect("a tokio socket");
        let max = walle_packet::DEFAULT_MAX_FRAME;
        let link = WsLink::new(stream, Role::Server, max, ws.close_timeout, BytesMut::new());
        tcp::start(link, PEER, &attach, Arc::new(opts), None);
    });
    peer.attached_ws()
}

#[test]
fn a_ws_link_answers_and_ends_as_its_peer_did() {
    let runtime = runtime();
    answers_then_ends_as_the_peer_did(&mut connect(&runtime, ConnOptions::default()));
}

#[test]
fn closes_of_every_origin_reach_the_process_with_their_reason_over_ws() {
    let runtime = runtime();
    closes_with_their_reasons(|opts| connect(&runtime, opts));
}
