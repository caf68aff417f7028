//! A user's own packet format and codec (the `custom_format` example's
//! `game.rs`), through the public API only, on both backends: calls through
//! the framework's client, the exact bytes on the wire, and a broken frame
//! that closes only its own connection.

#[path = "../examples/custom_format/game.rs"]
mod game;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use game::{
    GameFormat, LOGIN, LeCodec, MOVE, Move, OUT_OF_BOUNDS, Position, RESPONSE, game_router,
};
use walle::net::{Backend, Client, Server};
use walle::prelude::*;

fn serve(backend: &Backend) -> Server<LeCodec> {
    Server::builder(game_router())
        .backend(backend.clone())
        .protocol(Protocol::new(GameFormat))
        .bind("127.0.0.1:0")
        .expect("bind")
}

fn client(backend: &Backend, server: &Server<LeCodec>) -> Client<LeCodec> {
    Client::builder(server.local_addr(), Router::new(LeCodec))
        .backend(backend.clone())
        .protocol(Protocol::new(GameFormat))
        .build()
        .expect("client")
}

/// A whole game frame: `u16 len | u16 id | u32 seq | u8 flags | payload`.
fn frame(id: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&((7 + payload.len()) as u16).to_le_bytes());
    frame.extend_from_slice(&id.to_le_bytes());
    frame.extend_from_slice(&seq.to_le_bytes());
    frame.push(flags);
    frame.extend_from_slice(payload);
    frame
}

fn raw(server: &Server<LeCodec>) -> TcpStream {
    let stream = TcpStream::connect(server.local_addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
}

fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).expect("a length");
    let mut body = vec![0u8; usize::from(u16::from_le_bytes(len))];
    stream.read_exact(&mut body).expect("a body");
    [&len[..], &body].concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_format_and_codec_serve_calls_on_both_backends() {
    for backend in [Backend::evloop(), Backend::tcp()] {
        let name = backend.name();
        let server = serve(&backend);
        let client = client(&backend, &server);
        let greeting: String = client.call(LOGIN, &"ada".to_owned()).await.unwrap();
        assert_eq!(greeting, "welcome, ada", "{name}");
        let at: Position = client.call(MOVE, &Move { dx: 3, dy: -4 }).await.unwrap();
        assert_eq!(
            at,
            Position {
                x: 3,
                y: -4,
                moves: 1
            },
            "{name}"
        );
        let at: Position = client.call(MOVE, &Move { dx: 1, dy: 1 }).await.unwrap();
        assert_eq!(
            at,
            Position {
                x: 4,
                y: -3,
                moves: 2
            },
            "{name}"
        );

        // The game's error code crosses the wire in the format's error frame.
        let refused = client
            .call::<Move, Position>(MOVE, &Move { dx: 500, dy: 0 })
            .await
            .unwrap_err();
        match refused {
            Error::Remote { code, desc } => {
                assert_eq!(
                    (code.0, desc.as_str()),
                    (OUT_OF_BOUNDS, "out of bounds"),
                    "{name}"
                )
            }
            other => panic!("{name}: {other:?}"),
        }

        // A second connection has a player of its own (per-session state).
        let other = self::client(&backend, &server);
        let first = other
            .call::<Move, Position>(MOVE, &Move { dx: 1, dy: 0 })
            .await;
        assert!(
            matches!(first, Err(Error::Remote { code, .. }) if code.0 == 1000),
            "{name}: {first:?}"
        );
        client.close();
        other.close();
        server.stop();
    }
}

#[test]
fn the_bytes_on_the_wire_are_the_users_layout() {
    for backend in [Backend::evloop(), Backend::tcp()] {
        let server = serve(&backend);
        let mut stream = raw(&server);
        let name = b"bob";
        let payload = [&(name.len() as u16).to_le_bytes()[..], name].concat();
        stream
            .write_all(&frame(LOGIN as u16, 0x0102_0304, game::REQUEST, &payload))
            .unwrap();
        let greeting = b"welcome, bob";
        let answer = [&(greeting.len() as u16).to_le_bytes()[..], greeting].concat();
        assert_eq!(
            read_frame(&mut stream),
            frame(LOGIN as u16, 0x0102_0304, RESPONSE, &answer),
            "{}",
            backend.name()
        );
        server.stop();
    }
}

/// Reads until the server closes `stream`; nothing may come before the end.
fn closed_without_an_answer(mut stream: TcpStream, what: &str) {
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "{what}: answered {rest:?}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{what}"),
    }
}

#[test]
fn a_broken_frame_closes_only_its_connection() {
    for backend in [Backend::evloop(), Backend::tcp()] {
        let name = backend.name();
        let server = serve(&backend);
        let mut good = raw(&server);

        let mut short = raw(&server);
        short.write_all(&[3, 0, 1, 0, 0]).unwrap(); // under the 7-byte header
        closed_without_an_answer(short, &format!("{name}: short header"));
        let mut both = raw(&server);
        both.write_all(&frame(LOGIN as u16, 1, game::REQUEST | RESPONSE, &[]))
            .unwrap();
        closed_without_an_answer(both, &format!("{name}: request and response"));

        let payload = [&3u16.to_le_bytes()[..], b"eve"].concat();
        good.write_all(&frame(LOGIN as u16, 9, game::REQUEST, &payload))
            .unwrap();
        let answer = read_frame(&mut good);
        assert_eq!(
            &answer[2..9],
            &frame(LOGIN as u16, 9, RESPONSE, &[])[2..9],
            "{name}"
        );
        server.stop();
    }
}
