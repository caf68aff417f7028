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

/// BEHAVIOURS 66: a link that stops carrying (the relay between them cut)
/// ends in a dead link on both sides, once each has something to send:
/// the close callbacks run once, pending calls fail with SessionClosed
/// at once, the client tells why.
#[test]
fn a_cut_link_is_a_dead_link_on_both_sides() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};
    use util::relay::{Lossy, Relay};
    use walle_process::{CloseReason, Error};

    let backend = Backend::kcp(KcpOptions::default().dead_link(5));
    let server = server(&backend, echo_router(), ServerOptions::default());
    let relay = Relay::start(
        server.local_addr(),
        Lossy {
            drop: 0.0,
            min_delay: Duration::from_millis(1),
            jitter: Duration::ZERO,
            seed: 1,
        },
    );
    let client = client(&backend, relay.addr, ClientOptions::default());
    let rt = runtime();
    let up: Bytes = rt
        .block_on(client.call("echo", &Bytes::from_static(b"up")))
        .unwrap();
    assert_eq!(up, Bytes::from_static(b"up"));
    eventually("the session", || server.session_count() == 1);
    let session = server.sessions().pop().unwrap();
    let closes = Arc::new(AtomicUsize::new(0));
    let (c, reason) = (closes.clone(), Arc::new(std::sync::Mutex::new(None)));
    let r = reason.clone();
    session.on_close(move |why| {
        c.fetch_add(1, Ordering::SeqCst);
        *r.lock().unwrap() = Some(why.clone());
    });

    relay.set_drop(1.0);
    let long = walle_process::CallOptions {
        timeout: Some(Duration::from_secs(120)),
        ..Default::default()
    };
    let started = Instant::now();
    let from_server = session.call_with::<Bytes, Bytes>("ask", &Bytes::new(), long);
    let from_client = client.process().unwrap().call_with::<Bytes, Bytes>(
        "echo",
        &Bytes::from_static(b"lost"),
        long,
    );
    let (server_err, client_err) = rt.block_on(async { (from_server.await, from_client.await) });
    assert!(
        matches!(server_err, Err(Error::SessionClosed)),
        "{server_err:?}"
    );
    assert!(
        matches!(client_err, Err(Error::SessionClosed)),
        "{client_err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "failed at the dead link, not the timeout"
    );
    eventually("the close callback", || closes.load(Ordering::SeqCst) == 1);
    let why = reason.lock().unwrap().clone();
    assert!(matches!(why, Some(CloseReason::DeadLink)), "{why:?}");
    eventually("the client's reason", || {
        client.last_close_reason().is_some()
    });
    assert!(matches!(
        client.last_close_reason(),
        Some(CloseReason::DeadLink)
    ));
    eventually("the session gone", || server.session_count() == 0);
    assert_eq!(closes.load(Ordering::SeqCst), 1, "the callbacks ran once");
    assert!(server.io_stats().kcp.dead_links >= 1);
}
