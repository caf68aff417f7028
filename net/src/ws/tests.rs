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

/// The fuzz target's entry on a few inputs a peer could send: a masked
/// message, a ping, fragments, a lying length, garbage; on both roles, with
/// writes cut short.
#[cfg(feature = "fuzzing")]
#[test]
fn the_fuzz_entry_holds_on_a_few_inputs() {
    let masked = |opcode: u8, fin: bool, payload: &[u8]| {
        let key = [1u8, 2, 3, 4];
        let mut f = vec![(u8::from(fin) << 7) | opcode, 0x80 | payload.len() as u8];
        f.extend(key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        f
    };
    let inputs = [
        [masked(2, true, b"hello"), masked(9, true, b"ping")].concat(),
        [
            masked(2, false, b"ab"),
            masked(9, true, b""),
            masked(0, true, b"cd"),
        ]
        .concat(),
        vec![0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        vec![0x82, 0x05, b'h', b'e', b'l', b'l', b'o'],
        (0..=255u8).collect(),
    ];
    // What the fuzzer found first: a reserved control opcode (0xF) on a
    // client's link reached an `unreachable!`.
    crate::ws::fuzzing::frames(&[0x2b, 0x8f, 0x02, 0, 0, 0, 0, 0, 0, 0]);
    for input in inputs {
        for flags in [0u8, 1, 6, 7] {
            for plan in [&[][..], &[3, 0, 1, 9, 200][..], &[1][..]] {
                let mut data = vec![flags];
                data.extend(&input);
                data.extend(plan.iter().cycle().take(input.len()));
                crate::ws::fuzzing::frames(&data);
            }
        }
    }
}
