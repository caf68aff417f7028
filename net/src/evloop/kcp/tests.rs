//! The kcp driver on a loop of its own, with a real process, seen from a
//! raw KCP peer: the shared scenarios of the backends' unit tests, those
//! that apply to a datagram transport. (A failed write has no kcp
//! equivalent: a UDP send does not fail when the peer stops reading; a
//! peer that vanishes ends in a dead link, tested with the endpoint.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use mio::net::UdpSocket;

use super::{config, udp_socket};
use crate::evloop::driver::{Ctx, Driver};
use crate::evloop::{Cmd, Loops};
use crate::kcp::{Counters, KcpEndpoint, Role};
use crate::options::{ConnOptions, EvloopOptions, KcpOptions};
use crate::testing::kcp_peer::KcpStream;
use crate::testing::{
    PATIENCE, Peer, PeerStream, answers_then_ends_as_the_peer_did,
    closes_locally_on_bad_input_and_silence, echo, eventually,
};

fn loops() -> Loops {
    Loops::start(1, &EvloopOptions::default(), "walle-kcp-test").expect("a loop")
}

/// A kcp server source on the loop whose one session echoes, and a raw
/// KCP peer of it.
fn connect(loops: &Loops, opts: ConnOptions) -> Peer {
    let (_unused, attach, pending) = echo();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let socket = udp_socket(any, false).expect("a UDP socket");
    let addr = socket.local_addr().unwrap();
    let config = config(&KcpOptions::default(), &opts);
    let opts = Arc::new(opts);
    loops.handles()[0].send(Cmd::Add(Box::new(move |cx: &mut Ctx<'_>| {
        let ep = KcpEndpoint::new(config, Role::Server, Arc::new(Counters::default()), cx.now);
        let driver =
            super::KcpDriver::start(cx, UdpSocket::from_std(socket), None, ep, attach, opts)?;
        Some(Box::new(driver) as Box<dyn Driver>)
    })));
    let stream = KcpStream::connect_within(addr, PATIENCE).expect("the hello answered");
    pending.attached_over(PeerStream::Kcp(stream))
}

#[test]
fn a_kcp_session_answers_and_ends_as_its_peer_did() {
    let loops = loops();
    let mut peer = connect(&loops, ConnOptions::default());
    eventually("the session to count", || loops.stats().connections == 1);
    answers_then_ends_as_the_peer_did(&mut peer);
    eventually("the session to leave", || loops.stats().connections == 0);
    loops.stop(Instant::now());
}

#[test]
fn closes_of_every_origin_reach_the_process_with_their_reason() {
    let loops = loops();
    closes_locally_on_bad_input_and_silence(|opts| connect(&loops, opts));
    loops.stop(Instant::now());
}
