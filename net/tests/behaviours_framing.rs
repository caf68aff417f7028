//! BEHAVIOURS 24-28 over loopback sockets, on every backend: stream
//! framing, the frame size limit on send and on receive, and the bytes the
//! write modes put on the wire.

mod util;

use std::io::{Read, Write};

use bytes::Bytes;
use util::*;
use walle_codec::{Code, RawCodec};
use walle_net::{Backend, ClientOptions, ConnOptions, ServerOptions, WriteMode};
use walle_packet::{Protocol, WalleFormat};
use walle_process::{Error, Router};

/// BEHAVIOURS 24: frames split across reads or coalesced in one read are
/// each delivered once, in order.
#[test]
fn b24_split_and_coalesced_frames() {
    for backend in all_backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        let mut raw = connect(&backend, server.local_addr());
        raw.set_nodelay(true).unwrap();
        let mut wire = Vec::new();
        for seq in 1..=3u64 {
            wire.extend(request_frame("echo", seq, &[seq as u8; 300]));
        }
        for byte in &wire {
            raw.write_all(std::slice::from_ref(byte)).unwrap(); // one byte at a time
        }
        let mut coalesced = Vec::new();
        for seq in 4..=6u64 {
            coalesced.extend(request_frame("echo", seq, &[seq as u8; 10]));
        }
        raw.write_all(&coalesced).unwrap(); // three frames in one write
        let protocol = Protocol::new(WalleFormat::new());
        for seq in 1..=6u64 {
            let mut len = [0u8; 4];
            raw.read_exact(&mut len).unwrap();
            let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
            raw.read_exact(&mut body).unwrap();
            let p = protocol.decode(Bytes::from(body)).unwrap();
            assert_eq!(p.seq(), seq, "{}", backend.name());
            assert!(p.payload().iter().all(|&b| b == seq as u8));
        }
    }
}

/// BEHAVIOURS 25: a frame over the maximum fails at encode with code 6;
/// nothing is sent.
#[test]
fn b25_oversized_send_fails_with_code_6() {
    for backend in all_backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        let client = Client_max(&backend, server.local_addr());
        let rt = runtime();
        let big = Bytes::from(vec![0u8; 4096]);
        let err = rt
            .block_on(client.call::<Bytes, Bytes>("echo", &big))
            .unwrap_err();
        assert_eq!(err.code(), Code::PACKET_SIZE, "{}", backend.name());
        // The connection is intact: nothing partial was sent.
        let ok: Bytes = rt
            .block_on(client.call("echo", &Bytes::from_static(b"small")))
            .unwrap();
        assert_eq!(ok, Bytes::from_static(b"small"));
    }
}

#[allow(non_snake_case)]
fn Client_max(backend: &Backend, addr: std::net::SocketAddr) -> walle_net::Client<RawCodec> {
    walle_net::Client::builder(addr, Router::new(RawCodec))
        .backend(backend.clone())
        .protocol(Protocol::new(WalleFormat::new()).with_max_frame(1024))
        .build()
        .unwrap()
}

/// BEHAVIOURS 26: a length over the maximum closes the connection, on the
/// server and on the client, without harming other connections.
#[test]
fn b26_oversized_length_closes_only_that_connection() {
    for backend in all_backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        let mut good = connect(&backend, server.local_addr());
        let mut bad = connect(&backend, server.local_addr());
        bad.write_all(&[0xff, 0xff, 0xff, 0xf0, 1, 2, 3]).unwrap();
        assert!(closed_by_server(&mut bad), "{}", backend.name());
        assert_eq!(
            raw_round_trip(&mut good, 1, b"still here").len(),
            16 + 4 + 10
        );

        // Client side: a "server" that announces 4 GiB (answering the
        // upgrade first on ws, the hello on kcp, while the client's build
        // waits for it).
        let evil = RawListener::bind(&backend);
        let addr = evil.local_addr();
        let accepted = evil.accept();
        let client = client(&backend, addr, ClientOptions::default());
        let mut conn = accepted.join().unwrap();
        let rt = runtime();
        eventually("connected", || client.is_connected());
        let call = client
            .process()
            .unwrap()
            .call::<Bytes, Bytes>("echo", &Bytes::new());
        conn.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
        let err = rt.block_on(call).unwrap_err();
        assert!(
            matches!(err, Error::SessionClosed),
            "{}: {err}",
            backend.name()
        );
        eventually("client disconnect", || !client.is_connected());
    }
}

/// Reads everything `server` pushes to one raw client, for `count` pushes.
fn pushed_bytes(backend: &Backend, mode: WriteMode, count: usize) -> Vec<u8> {
    let conn = ConnOptions::default()
        .write_mode(mode)
        .send_queue_frames(8192)
        .send_queue_bytes(64 << 20);
    let options = ServerOptions::default().conn(conn);
    let server = server(backend, echo_router(), options);
    let mut raw = connect(backend, server.local_addr());
    eventually("session", || server.session_count() == 1);
    let session = server.sessions().pop().unwrap();
    let mut expected_len = 0;
    for i in 0..count {
        let msg = Bytes::from(vec![i as u8; i % 700]);
        session.notify("push", &msg).unwrap();
        expected_len += 4 + 16 + "push".len() + msg.len();
    }
    let mut got = vec![0u8; expected_len];
    raw.read_exact(&mut got).unwrap();
    got
}

/// BEHAVIOURS 27 and 28: sync and async writes put identical bytes on the
/// wire, on every backend; queued frames all arrive, in order. (On ws, the
/// same frames as messages: the raw peer reads each as its frame.)
#[test]
fn b27_b28_write_modes_put_identical_bytes() {
    let reference = pushed_bytes(&Backend::tcp(), WriteMode::Async, 2000);
    assert_eq!(
        pushed_bytes(&Backend::tcp(), WriteMode::Sync, 2000),
        reference
    );
    assert_eq!(
        pushed_bytes(&Backend::evloop(), WriteMode::Async, 2000),
        reference
    );
    let kcp = Backend::kcp(walle_net::KcpOptions::default());
    assert_eq!(pushed_bytes(&kcp, WriteMode::Async, 2000), reference);
    for mode in [WriteMode::Async, WriteMode::Sync] {
        assert_eq!(
            pushed_bytes(&Backend::ws(), mode, 2000),
            reference,
            "ws, {mode:?}"
        );
    }
}
