//! Packet encoders on real connections: LZ4 compression and
//! XChaCha20-Poly1305 sealing, on every backend, and a replayed sealed
//! frame closing only its own connection.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use walle_codec::RawCodec;
use walle_net::{Backend, Client, ClientOptions, Server, ServerOptions};
use walle_packet::{
    AeadEncoder, AeadKey, Cmd, Head, Lz4Encoder, Lz4Options, PacketError, Protocol, Role, Route,
    WalleFormat,
};
use walle_process::{CloseReason, Error, Router};

use util::*;

fn sealed(key: &AeadKey) -> Protocol {
    Protocol::new(WalleFormat::new())
        .with_encoder(Lz4Encoder::new(Lz4Options::default()))
        .with_encoder(AeadEncoder::new(key.clone()))
}

fn sealed_server(backend: &Backend, key: &AeadKey) -> (Server<RawCodec>, Reasons) {
    recording(
        Server::builder(echo_router())
            .backend(backend.clone())
            .protocol(sealed(key))
            .options(ServerOptions::default()),
    )
}

fn sealed_client(backend: &Backend, server: &Server<RawCodec>, key: &AeadKey) -> Client<RawCodec> {
    Client::builder(server.local_addr(), Router::new(RawCodec))
        .backend(backend.clone())
        .protocol(sealed(key))
        .options(ClientOptions::default())
        .build()
        .expect("client")
}

/// Calls of every size pass through compression and sealing on every
/// pair of backends that speak to each other.
#[test]
fn compressed_and_sealed_calls_work_on_every_backend() {
    let key = AeadKey::random();
    let compressible = Bytes::from(b"player 17 moved to 3,4; ".repeat(3000));
    let noise: Bytes = {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect::<Vec<u8>>()
            .into()
    };
    for (server_backend, client_backend) in backend_pairs() {
        let pair = format!("{} <- {}", server_backend.name(), client_backend.name());
        let (server, reasons) = sealed_server(&server_backend, &key);
        let client = sealed_client(&client_backend, &server, &key);
        let rt = runtime();
        for payload in [
            Bytes::from_static(b"hi"),
            compressible.clone(),
            noise.clone(),
        ] {
            for _ in 0..3 {
                let got: Bytes = rt
                    .block_on(client.call("echo", &payload))
                    .unwrap_or_else(|e| panic!("{pair}: {} bytes: {e}", payload.len()));
                assert_eq!(got, payload, "{pair}");
            }
        }
        assert!(reasons.lock().unwrap().is_empty(), "{pair}: {reasons:?}");
        drop(client);
    }
}

/// A client with another key gets no answer and its connection closed as
/// malformed; a client with the right key on the same server is served.
#[test]
fn a_peer_with_another_key_is_closed_and_others_are_served() {
    let key = AeadKey::random();
    for backend in all_backends() {
        let name = backend.name();
        let (server, reasons) = sealed_server(&backend, &key);
        let good = sealed_client(&backend, &server, &key);
        let bad = sealed_client(&backend, &server, &AeadKey::random());
        let rt = runtime();
        let failed = rt.block_on(bad.call::<Bytes, Bytes>("echo", &Bytes::from_static(b"x")));
        assert!(failed.is_err(), "{name}: a wrong key got an answer");
        eventually(&format!("{name}: the wrong key's session closed"), || {
            reasons.lock().unwrap().values().any(|r| {
                matches!(r, CloseReason::Malformed(e)
                    if matches!(&**e, Error::Packet(PacketError::Encoder { name: "aead", decoding: true, .. })))
            })
        });
        let got: Bytes = rt
            .block_on(good.call("echo", &Bytes::from_static(b"still here")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&got[..], b"still here");
    }
}

/// An error and its sources, joined.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Reads one length-prefixed frame body.
fn read_frame(stream: &mut TcpStream) -> Bytes {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).expect("a frame's length");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).expect("a frame's body");
    Bytes::from(body)
}

/// Our client end of a sealed stream, driven by hand over a raw socket.
fn client_end(key: &AeadKey) -> Protocol {
    sealed(key)
        .with_role(Role::Client)
        .for_connection()
        .expect("per connection")
}

/// A whole sealed `echo` request frame of `ours`.
fn echo_request(ours: &Protocol, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    ours.encode(&Head::request(Route::Uri("echo"), seq), payload, &mut frame)
        .expect("encodes");
    frame
}

/// Waits for the server to close `stream` as malformed, recorded in
/// `reasons`; returns why, the error with its sources.
fn malformed_close(stream: &mut TcpStream, reasons: &Reasons, what: &str) -> String {
    let peer = stream.local_addr().unwrap();
    assert!(closed_by_server(stream), "{what} was not refused");
    eventually(&format!("{what}: the close reason"), || {
        reasons.lock().unwrap().contains_key(&peer)
    });
    let reason = reasons.lock().unwrap().get(&peer).cloned();
    match reason {
        Some(CloseReason::Malformed(e)) => chain(&*e),
        other => panic!("{what} closed as {other:?}"),
    }
}

/// A request frame written twice byte for byte: the first is answered,
/// the replay closes the connection as malformed (the counter did not
/// grow), and another connection is unaffected.
#[test]
fn a_replayed_sealed_frame_closes_only_its_connection() {
    let key = AeadKey::random();
    for backend in [Backend::evloop(), Backend::tcp()] {
        let name = backend.name();
        let (server, reasons) = sealed_server(&backend, &key);
        let ours = client_end(&key);
        let frame = echo_request(&ours, 1, b"once");
        let mut stream = TcpStream::connect(server.local_addr()).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.write_all(&frame).expect("write");
        let answer = ours
            .decode(read_frame(&mut stream))
            .expect("the answer opens");
        assert_eq!(
            (answer.cmd(), &answer.payload()[..]),
            (Cmd::Response, &b"once"[..])
        );

        let other = sealed_client(&backend, &server, &key);
        stream.write_all(&frame).expect("write the replay");
        let why = malformed_close(&mut stream, &reasons, &format!("{name}: the replay"));
        assert!(why.contains("replayed or reordered"), "{name}: {why}");
        let got: Bytes = runtime()
            .block_on(other.call("echo", &Bytes::from_static(b"other")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&got[..], b"other");
    }
}

/// What a sealed server sends cannot be read without the key, and what it
/// compresses goes out smaller: the bytes on the wire, read raw.
#[test]
fn the_wire_carries_neither_the_clear_text_nor_its_size() {
    let key = AeadKey::random();
    let (server, _) = sealed_server(&Backend::evloop(), &key);
    let ours = client_end(&key);
    let payload = b"secret position 12,40; ".repeat(500);
    let frame = echo_request(&ours, 9, &payload);
    assert!(
        frame.len() < payload.len() / 4,
        "{} bytes on the wire",
        frame.len()
    );
    assert!(
        !frame.windows(6).any(|w| w == b"secret"),
        "clear text on the wire"
    );
    let mut stream = TcpStream::connect(server.local_addr()).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(&frame).expect("write");
    let body = read_frame(&mut stream);
    assert!(
        body.len() < payload.len() / 4,
        "{} bytes answered",
        body.len()
    );
    assert!(
        !body.windows(6).any(|w| w == b"secret"),
        "clear text answered"
    );
    let answer = ours.decode(body).expect("opens");
    assert_eq!(&answer.payload()[..], &payload[..]);
}

/// Broadcast and multicast to sealed sessions: one frame cannot serve
/// them all, so each session encodes its own, and every client opens it.
#[test]
fn pushes_to_sealed_sessions_are_encoded_per_session() {
    let key = AeadKey::random();
    for backend in all_backends() {
        let name = backend.name();
        let (server, _) = sealed_server(&backend, &key);
        let logs: Vec<Arc<Mutex<Vec<Bytes>>>> = (0..3).map(|_| Arc::default()).collect();
        let _clients: Vec<Client<RawCodec>> = logs
            .iter()
            .map(|log| {
                Client::builder(server.local_addr(), news_router(log.clone()))
                    .backend(backend.clone())
                    .protocol(sealed(&key))
                    .build()
                    .expect("client")
            })
            .collect();
        eventually(&format!("{name}: three sessions"), || {
            server.session_count() == 3
        });
        let news = Bytes::from(b"the castle fell; ".repeat(100));
        assert_eq!(
            server.broadcast("news", &news, |_| true).unwrap(),
            3,
            "{name}"
        );
        let first = server.sessions()[0].id();
        assert_eq!(
            server.multicast(&[first], "news", &news).unwrap(),
            1,
            "{name}"
        );
        assert!(
            server.encode_push("news", &news).is_err(),
            "{name}: a shared frame was encoded for per-connection streams"
        );
        eventually(&format!("{name}: four pushes opened"), || {
            logs.iter().map(|l| l.lock().unwrap().len()).sum::<usize>() == 4
        });
        for log in &logs {
            assert!(log.lock().unwrap().iter().all(|m| *m == news), "{name}");
        }
    }
}

/// A server's own sealed output (an answer on one connection) written to
/// it on another connection is refused as reflected: each end seals as
/// its role and opens only the other role's packets.
#[test]
fn a_servers_own_packet_replayed_to_it_is_refused() {
    let key = AeadKey::random();
    for backend in [Backend::evloop(), Backend::tcp()] {
        let name = backend.name();
        let (server, reasons) = sealed_server(&backend, &key);
        let ours = client_end(&key);
        let frame = echo_request(&ours, 1, b"hello");
        let mut first = TcpStream::connect(server.local_addr()).expect("connect");
        first.set_read_timeout(Some(PATIENCE)).unwrap();
        first.write_all(&frame).unwrap();
        let answer = read_frame(&mut first);
        // The answer, length prefix and all, as the first frame of
        // another connection.
        let mut reflected = (answer.len() as u32).to_be_bytes().to_vec();
        reflected.extend_from_slice(&answer);
        let mut second = TcpStream::connect(server.local_addr()).expect("connect");
        second.write_all(&reflected).unwrap();
        let why = malformed_close(
            &mut second,
            &reasons,
            &format!("{name}: the reflected packet"),
        );
        assert!(why.contains("reflected"), "{name}: {why}");
        assert_eq!(
            &ours.decode(answer).expect("our answer opens").payload()[..],
            b"hello"
        );
    }
}
