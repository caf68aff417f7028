//! Settings that cannot work fail when the server or client is built, and
//! the defaults a format needs are filled in.

mod util;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use util::*;
use walle_codec::RawCodec;
use walle_net::{
    Backend, Client, ClientOptions, ConnOptions, Dispatcher, NetError, Server, ServerOptions,
    Strategy,
};
use walle_packet::{DueFormat, Protocol, ProtocolWrapper};
use walle_process::{Context, Error, Router};

/// `Strategy::Tokio` made where no runtime runs, on the event loop (whose
/// reactor threads have none): bind and build say what is missing instead
/// of every request failing later. The tcp backend's workers are a runtime,
/// so there it serves.
#[test]
fn a_tokio_dispatcher_without_a_runtime_fails_at_build_on_the_event_loop() {
    let dispatcher = Arc::new(Dispatcher::new(Strategy::Tokio, 64).expect("dispatcher"));
    let refused = Server::builder(echo_router())
        .backend(Backend::evloop())
        .dispatcher(dispatcher.clone())
        .bind("127.0.0.1:0")
        .expect_err("an event-loop server cannot run tokio dispatch without a runtime");
    assert!(
        matches!(refused, NetError::Process(Error::NoRuntime(_))),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("tokio runtime"), "{refused}");

    let server = Server::builder(echo_router())
        .backend(Backend::tcp())
        .dispatcher(dispatcher.clone())
        .bind("127.0.0.1:0")
        .expect("the tcp backend's workers are a runtime");
    let refused = Client::builder(server.local_addr(), Router::new(RawCodec))
        .backend(Backend::evloop())
        .dispatcher(dispatcher)
        .build()
        .expect_err("an event-loop client cannot either");
    assert!(
        matches!(refused, NetError::Process(Error::NoRuntime(_))),
        "{refused:?}"
    );
    let client = client(&Backend::tcp(), server.local_addr(), Default::default());
    let answer =
        runtime().block_on(client.call::<Bytes, Bytes>("echo", &Bytes::from_static(b"ok")));
    assert_eq!(answer.unwrap(), Bytes::from_static(b"ok"));
}

/// On `due`, whose packets do not say request or response, a server's own
/// calls take seqs from the upper half and a client's from the lower half,
/// so that neither side's request can be taken for the answer to one of
/// the other's calls.
#[test]
fn due_servers_and_clients_call_with_seqs_from_different_halves() {
    let due = Protocol::new(DueFormat::new());
    let half = DueFormat::new().max_seq() / 2;
    // Each side answers a call with the seq it arrived with.
    let seq_router = || {
        let mut router = Router::new(RawCodec);
        router
            .route_id(1, |ctx: &mut Context, _: Bytes| {
                Ok(Bytes::from(ctx.packet().seq().to_be_bytes().to_vec()))
            })
            .unwrap();
        router
    };
    let seq_of = |answer: Result<Bytes, Error>| {
        let answer = answer.expect("an answer");
        u64::from_be_bytes(answer[..].try_into().expect("8 bytes"))
    };
    for backend in all_backends() {
        let server = Server::builder(seq_router())
            .backend(backend.clone())
            .protocol(due.clone())
            .bind("127.0.0.1:0")
            .unwrap();
        let client = Client::builder(server.local_addr(), seq_router())
            .backend(backend.clone())
            .protocol(due.clone())
            .build()
            .unwrap();
        let rt = runtime();
        let from_client = seq_of(rt.block_on(client.call(1u32, &Bytes::new())));
        assert!(
            (1..=half).contains(&from_client),
            "{}: {from_client}",
            backend.name()
        );

        eventually("the session", || server.session_count() == 1);
        let session = server.sessions().pop().expect("one session");
        let call = session.call::<Bytes, Bytes>(1u32, &Bytes::new());
        let from_server = seq_of(rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), call)
                .await
                .expect("the client answers")
        }));
        assert!(from_server > half, "{}: {from_server}", backend.name());
    }
}

/// `Duration::MAX`, set in code, is past what an `Instant` can hold: it
/// means "not in this process's life", never a panic on a reactor or
/// worker. Calls, a close and a stop all still end.
#[test]
fn durations_past_what_an_instant_holds_mean_never() {
    let mut conn = ConnOptions::default();
    conn.read_timeout = Duration::MAX;
    conn.heartbeat = Duration::MAX;
    conn.send_timeout = Duration::MAX;
    conn.close_flush_timeout = Duration::MAX;
    conn.process.call_timeout = Duration::MAX;
    let mut server_opts = ServerOptions::default().drain_timeout(Duration::MAX);
    server_opts.conn = conn.clone();
    let mut client_opts = ClientOptions::default()
        .reconnect(3, Duration::MAX)
        .connect_timeout(Duration::MAX)
        .wait_connected(Duration::MAX);
    client_opts.reconnect_max_wait = Duration::MAX;
    client_opts.conn = conn;
    for backend in all_backends() {
        let name = backend.name();
        let server = server(&backend, echo_router(), server_opts.clone());
        let client = client(&backend, server.local_addr(), client_opts.clone());
        let rt = runtime();
        let answer = rt.block_on(client.call::<Bytes, Bytes>("echo", &Bytes::from_static(b"x")));
        assert_eq!(answer.unwrap(), Bytes::from_static(b"x"), "{name}");
        eventually("the session", || server.session_count() == 1);
        server.sessions()[0].close();
        eventually("the close", || server.session_count() == 0);
        server.stop();
    }
}
