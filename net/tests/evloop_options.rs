//! The event loop's spreading options all serve: round-robin, least
//! connections, source hash, and one SO_REUSEPORT listener per loop.

mod util;

use util::*;
use walle_net::{Backend, Balance, EvloopOptions, ServerOptions};

#[test]
fn every_balance_and_reuse_port_serve() {
    let variants = [
        EvloopOptions::default()
            .loops(3)
            .balance(Balance::RoundRobin),
        EvloopOptions::default()
            .loops(3)
            .balance(Balance::LeastConnections),
        EvloopOptions::default()
            .loops(3)
            .balance(Balance::SourceHash),
        EvloopOptions::default().loops(3).reuse_port(true),
    ];
    for options in variants {
        let backend = Backend::Evloop(options.clone());
        let server = server(&backend, echo_router(), ServerOptions::default());
        let mut streams: Vec<Raw> = (0..12)
            .map(|_| connect(&backend, server.local_addr()))
            .collect();
        for (i, stream) in streams.iter_mut().enumerate() {
            let body = raw_round_trip(stream, i as u64 + 1, b"spread");
            assert!(body.ends_with(b"spread"), "{options:?}");
        }
        assert_eq!(server.io_stats().connections, 12, "{options:?}");
        assert_eq!(server.session_count(), 12);
    }
}
