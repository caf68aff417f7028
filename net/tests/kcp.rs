//! The kcp backend over loopback UDP: calls both ways, pushes, a
//! reconnect with a new conv.

mod util;

use bytes::Bytes;
use util::*;
use walle_net::{Backend, ClientOptions, KcpOptions, ServerOptions};

fn kcp() -> Backend {
    Backend::kcp(KcpOptions::default())
}

#[test]
fn a_kcp_client_calls_a_kcp_server() {
    let server = server(&kcp(), echo_router(), ServerOptions::default());
    let client = client(&kcp(), server.local_addr(), ClientOptions::default());
    assert!(client.is_connected());
    let rt = runtime();
    let answer: Bytes = rt
        .block_on(client.call("echo", &Bytes::from_static(b"over kcp")))
        .unwrap();
    assert_eq!(answer, Bytes::from_static(b"over kcp"));
    let big = Bytes::from((0..300_000u32).map(|i| i as u8).collect::<Vec<_>>());
    let back: Bytes = rt.block_on(client.call("echo", &big)).unwrap();
    assert_eq!(back, big);
    eventually("one session", || server.session_count() == 1);
    drop(client);
    eventually("the session ends with the client", || {
        server.session_count() == 0
    });
}
