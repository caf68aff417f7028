//! The client's life: dropping its last handle, closing it mid-dial,
//! reconnecting, running out of attempts, and building it inside async
//! code, on both backends.

mod util;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use walle_codec::RawCodec;
use walle_net::{Backend, Client, ClientOptions, ClientState, NetError, ServerOptions};
use walle_process::{Error, Router};

use util::*;

/// Generous bound of every wait below.
const BOUND: Duration = Duration::from_secs(10);

/// Waits, within the bound, for a client's `closed()`: closed, its task
/// ended.
fn assert_stops(closed: impl Future<Output = ()>) {
    let ended = runtime().block_on(async { tokio::time::timeout(BOUND, closed).await });
    assert!(ended.is_ok(), "the client's task did not end");
}

fn echo(client: &Client<RawCodec>, what: &'static [u8]) -> Result<Bytes, Error> {
    runtime().block_on(client.call("echo", &Bytes::from_static(what)))
}

/// A listener that accepts (upgrading a ws one) and closes each
/// connection at once, counting them: a server that keeps dropping its
/// clients.
struct Flapping {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flapping {
    fn start(backend: &Backend) -> Flapping {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s, backend) = (accepts.clone(), stop.clone(), backend.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Acquire) {
                let accepted = try_accept(&backend, &listener);
                if s.load(Ordering::Acquire) {
                    return;
                }
                a.fetch_add(1, Ordering::AcqRel);
                drop(accepted);
            }
        });
        Flapping {
            addr,
            accepts,
            stop,
            thread: Some(thread),
        }
    }

    /// Closes the listener: the port refuses from now on.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Flapping {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A listener whose accept queue is full: a dial to it hangs in the
/// kernel (its SYNs are dropped) until the queue has room.
fn hanging_listener() -> (socket2::Socket, TcpStream, SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    // One connection fills a queue of length 0.
    let filler = TcpStream::connect(addr).unwrap();
    (listener, filler, addr)
}

/// A server a dial hangs on: a full TCP accept queue, or, on kcp, a
/// UDP port that takes the hello and never answers.
fn hanging(backend: &walle_net::Backend) -> (Box<dyn std::any::Any>, SocketAddr) {
    if is_kcp(backend) {
        let port = held_port_for(backend);
        let addr = port.addr;
        return (Box::new(port), addr);
    }
    let (listener, filler, addr) = hanging_listener();
    (Box::new((listener, filler)), addr)
}

/// Dropping the last handle closes the connection: the server's session
/// goes away. Dropping a clone does not.
#[test]
fn dropping_the_last_handle_closes_the_session() {
    for backend in all_backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        let client = client(&backend, server.local_addr(), ClientOptions::default());
        eventually("session", || server.session_count() == 1);
        drop(client.clone());
        assert_eq!(
            echo(&client, b"still").unwrap(),
            Bytes::from_static(b"still")
        );
        drop(client);
        eventually("session closed by the drop", || server.session_count() == 0);
    }
}

/// A client reconnecting forever, to a server that keeps dropping it and
/// then to a dead port, stops dialling once its last handle is dropped.
#[test]
fn dropping_a_reconnecting_client_stops_its_dialling() {
    for backend in backends() {
        let mut flapping = Flapping::start(&backend);
        let opts = ClientOptions::default().reconnect(-1, Duration::from_millis(5));
        let client = client(&backend, flapping.addr, opts);
        eventually("redials", || flapping.accepts.load(Ordering::Acquire) >= 3);
        // Dropped while it redials a server that is up...
        let closed = client.closed();
        drop(client);
        assert_stops(closed);

        // ... and one redialling a dead port.
        let opts = ClientOptions::default().reconnect(-1, Duration::from_millis(5));
        let client = util::client(&backend, flapping.addr, opts);
        let dialled = flapping.accepts.load(Ordering::Acquire);
        eventually("a redial", || {
            flapping.accepts.load(Ordering::Acquire) > dialled
        });
        flapping.stop();
        eventually("dials refused", || client.state() != ClientState::Connected);
        let closed = client.closed();
        drop(client);
        assert_stops(closed);
    }
}

/// `close` during a dial wins: the client stays closed, the call waiting
/// for the dial fails at once with a clear error, the dial is abandoned.
#[test]
fn close_during_a_dial_leaves_it_closed() {
    for backend in all_backends() {
        let (_hanging, addr) = hanging(&backend);
        let opts = ClientOptions::default()
            .lazy(true)
            .connect_timeout(Duration::from_secs(60))
            .wait_connected(Duration::from_secs(60));
        let client = client(&backend, addr, opts);
        let (tx, rx) = mpsc::channel();
        let waiting = client.clone();
        std::thread::spawn(move || {
            let _ = tx.send(
                runtime()
                    .block_on(waiting.call::<Bytes, Bytes>("echo", &Bytes::from_static(b"late"))),
            );
        });
        eventually("dialling", || client.state() == ClientState::Connecting);
        client.close();
        assert_eq!(client.state(), ClientState::Closed, "{}", backend.name());
        let err = rx
            .recv_timeout(BOUND)
            .expect("the waiting call ended")
            .unwrap_err();
        assert!(
            matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::NotConnected),
            "{}: {err}",
            backend.name()
        );
        let closed = client.closed();
        assert_stops(closed);
        assert_eq!(client.state(), ClientState::Closed);
        assert!(matches!(echo(&client, b"x"), Err(Error::Io(_))));
        assert!(client.notify("echo", &Bytes::new()).is_err());
    }
}

/// After the server drops it, a reconnecting client has one new
/// connection, which works; and a lazy client that many calls wait on
/// dials once.
#[test]
fn reconnect_makes_one_new_connection() {
    for backend in all_backends() {
        let server = server(&backend, echo_router(), ServerOptions::default());
        let opts = ClientOptions::default()
            .reconnect(-1, Duration::from_millis(5))
            .wait_connected(BOUND);
        let client = client(&backend, server.local_addr(), opts);
        eventually("session", || server.session_count() == 1);
        let first = server.sessions()[0].id();
        for _ in 0..3 {
            let old = server.sessions()[0].id();
            server.sessions()[0].close();
            eventually("a new session", || {
                server.sessions().first().is_some_and(|s| s.id() != old)
            });
            assert_eq!(echo(&client, b"back").unwrap(), Bytes::from_static(b"back"));
            assert_eq!(client.state(), ClientState::Connected);
            assert_eq!(server.session_count(), 1, "{}", backend.name());
        }
        assert_ne!(server.sessions()[0].id(), first);

        let opts = ClientOptions::default().lazy(true).wait_connected(BOUND);
        let lazy = util::client(&backend, server.local_addr(), opts);
        let rt = runtime();
        let answers = rt.block_on(async {
            let calls: Vec<_> = (0..16)
                .map(|_| {
                    let lazy = lazy.clone();
                    tokio::spawn(async move {
                        lazy.call::<Bytes, Bytes>("echo", &Bytes::from_static(b"one"))
                            .await
                    })
                })
                .collect();
            let mut answers = Vec::new();
            for call in calls {
                answers.push(call.await.unwrap());
            }
            answers
        });
        assert!(answers.iter().all(|a| a.is_ok()), "{answers:?}");
        assert_eq!(server.session_count(), 2, "{}: one dial", backend.name());
    }
}

/// Once its reconnect attempts have run out, a call waiting for the
/// connection fails with the dial's error instead of waiting on.
#[test]
fn calls_fail_clearly_once_reconnects_run_out() {
    for backend in all_backends() {
        let port = held_port(); // refuses every dial
        let addr = port.addr;
        let opts = ClientOptions::default()
            .lazy(true)
            .reconnect(2, Duration::from_millis(5))
            .wait_connected(Duration::from_secs(60));
        let client = client(&backend, addr, opts);
        let empty = Bytes::new();
        let call = client.call::<Bytes, Bytes>("echo", &empty);
        let answer = runtime().block_on(async { tokio::time::timeout(BOUND, call).await });
        let err = answer.expect("failed before its wait ran out").unwrap_err();
        assert!(
            matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
            "{}: {err}",
            backend.name()
        );
        assert_eq!(client.state(), ClientState::Idle);

        // Eager: the build fails the same way.
        let opts = ClientOptions::default().reconnect(1, Duration::from_millis(5));
        let built = Client::builder(addr, Router::new(RawCodec))
            .backend(backend.clone())
            .options(opts)
            .build();
        assert!(
            matches!(&built, Err(NetError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused),
            "{}: {built:?}",
            backend.name()
        );
    }
}

/// `build` inside a current-thread runtime does not block it, even
/// dialling a server that is not up yet and reconnecting forever; calls
/// then wait for the connection. `connect` waits for it, asynchronously.
#[test]
fn build_inside_a_current_thread_runtime_does_not_block() {
    for backend in all_backends() {
        let port = held_port_for(&backend);
        let addr = port.addr;
        let (tx, rx) = mpsc::channel();
        let b = backend.clone();
        std::thread::spawn(move || {
            runtime().block_on(async move {
                let opts = ClientOptions::default()
                    .reconnect(-1, Duration::from_millis(10))
                    .wait_connected(BOUND);
                let client = Client::builder(addr, Router::new(RawCodec))
                    .backend(b)
                    .options(opts)
                    .build()
                    .unwrap();
                let _ = tx.send(None);
                let answer = client
                    .call::<Bytes, Bytes>("echo", &Bytes::from_static(b"up"))
                    .await;
                let _ = tx.send(Some(answer));
            })
        });
        let built = rx.recv_timeout(BOUND);
        assert!(
            matches!(built, Ok(None)),
            "{}: build blocked the runtime",
            backend.name()
        );
        let _server = walle_net::Server::builder(echo_router())
            .backend(backend.clone())
            .bind(port.release())
            .unwrap();
        let answer = rx.recv_timeout(BOUND).expect("the call ended").unwrap();
        assert_eq!(answer.unwrap(), Bytes::from_static(b"up"));

        let client = runtime()
            .block_on(async {
                let connect = Client::builder(addr, Router::new(RawCodec))
                    .backend(backend.clone())
                    .connect();
                tokio::time::timeout(BOUND, connect).await
            })
            .expect("connect resolved")
            .unwrap();
        assert_eq!(client.state(), ClientState::Connected, "{}", backend.name());
    }
}

/// An eager client built inside a runtime is not connected yet when
/// `build` returns; its first call waits for that dial instead of failing
/// with `SessionClosed` (no `wait_connected` set).
#[test]
fn an_eager_clients_first_call_waits_for_its_first_dial() {
    for backend in all_backends() {
        let server = walle_net::Server::builder(echo_router())
            .backend(backend.clone())
            .bind("127.0.0.1:0")
            .unwrap();
        let answer = runtime().block_on(async {
            let client = Client::builder(server.local_addr(), Router::new(RawCodec))
                .backend(backend.clone())
                .build()
                .unwrap();
            client
                .call::<Bytes, Bytes>("echo", &Bytes::from_static(b"first"))
                .await
        });
        assert_eq!(
            answer.unwrap(),
            Bytes::from_static(b"first"),
            "{}",
            backend.name()
        );
    }
}

/// With `caller_runtime`, a client built inside a multi-thread runtime
/// runs its connection there, whatever its backend (an evloop client's
/// then too): a pushed message's handler (inline, on the connection's
/// reader) runs on that runtime's worker. Without the option, or inside a
/// current-thread runtime, it runs on the shared client runtime's (tcp,
/// ws) or a client reactor (evloop).
#[test]
fn caller_runtime_runs_the_connection_on_the_callers_threads() {
    for backend in [Backend::tcp(), Backend::ws(), Backend::evloop()] {
        let server = walle_net::Server::builder(echo_router())
            .backend(backend.clone())
            .bind("127.0.0.1:0")
            .unwrap();
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("caller-worker")
            .enable_all()
            .build()
            .unwrap();
        let current = runtime();
        let cases: [(&tokio::runtime::Runtime, bool, bool); 3] = [
            (&multi, true, true),
            (&multi, false, false),
            (&current, true, false),
        ];
        for (rt, on, on_caller) in cases {
            let (tx, rx) = mpsc::channel();
            let mut router = Router::new(RawCodec);
            router
                .route("push", move |_: &mut walle_process::Context, _: Bytes| {
                    let name = std::thread::current().name().unwrap_or("").to_owned();
                    let _ = tx.send(name);
                    Ok(Bytes::new())
                })
                .unwrap();
            let client = rt
                .block_on(async {
                    let connect = Client::builder(server.local_addr(), router)
                        .backend(backend.clone())
                        .options(ClientOptions::default().caller_runtime(on))
                        .connect();
                    tokio::time::timeout(BOUND, connect).await
                })
                .expect("connect resolved")
                .unwrap();
            eventually("the session", || server.session_count() == 1);
            let session = server.sessions().pop().unwrap();
            session.notify("push", &Bytes::from_static(b"!")).unwrap();
            let thread = rx.recv_timeout(BOUND).expect("the push arrived");
            let name = backend.name();
            assert_eq!(
                thread == "caller-worker",
                on_caller,
                "{name}, caller_runtime {on}: the handler ran on {thread:?}"
            );
            drop(client);
            eventually("the session gone", || server.session_count() == 0);
        }
    }
}

/// An evloop client's connections take turns over as many of the shared
/// client reactors as its backend's `loops` asks for: two clients asking
/// for two are served on two threads (on a machine with two cores or
/// more), two asking for one on the same thread.
#[test]
fn evloop_clients_spread_over_the_loops_they_ask_for() {
    let server = walle_net::Server::builder(echo_router())
        .backend(Backend::evloop())
        .bind("127.0.0.1:0")
        .unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for loops in [2, 1] {
        let (tx, rx) = mpsc::channel();
        let clients: Vec<Client<RawCodec>> = (0..2)
            .map(|_| {
                let tx = tx.clone();
                let mut router = Router::new(RawCodec);
                router
                    .route("push", move |_: &mut walle_process::Context, _: Bytes| {
                        let _ = tx.send(std::thread::current().id());
                        Ok(Bytes::new())
                    })
                    .unwrap();
                let backend = Backend::Evloop(walle_net::EvloopOptions::default().loops(loops));
                Client::builder(server.local_addr(), router)
                    .backend(backend)
                    .build()
                    .unwrap()
            })
            .collect();
        eventually("both sessions", || server.session_count() == 2);
        for session in server.sessions() {
            session.notify("push", &Bytes::from_static(b"!")).unwrap();
        }
        let a = rx.recv_timeout(BOUND).expect("a push arrived");
        let b = rx.recv_timeout(BOUND).expect("a push arrived");
        let spread = loops.min(cores);
        assert_eq!(a != b, spread > 1, "loops {loops} on {cores} cores");
        drop(clients);
        eventually("the sessions gone", || server.session_count() == 0);
    }
}

/// A client of `backend` connected to a peer that accepts and never
/// answers: the client, its process, and the peer's end of the socket
/// (dropping it closes the connection).
fn connected_to_a_mute_peer(
    backend: &Backend,
) -> (
    Client<RawCodec>,
    walle_process::Process<RawCodec>,
    TcpStream,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let held = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
    let client = Client::builder(addr, Router::new(RawCodec))
        .backend(backend.clone())
        .build()
        .unwrap();
    let server_side = held.join().unwrap().unwrap();
    let process = client.process().expect("connected");
    (client, process, server_side)
}

/// A call with a short timeout, made while a call with a long one is
/// pending, ends with `Timeout` by its own deadline: the connection's
/// timer moves earlier for it. The server accepts and never answers; the
/// long call's deadline is far past the bound.
#[test]
fn a_short_call_timeout_after_a_long_one_fires_by_its_own() {
    use walle_process::CallOptions;
    for backend in [Backend::evloop(), Backend::tcp()] {
        let (_client, process, _server_side) = connected_to_a_mute_peer(&backend);
        let with = |timeout| CallOptions {
            timeout: Some(timeout),
            ..CallOptions::default()
        };
        let payload = Bytes::from_static(b"?");
        let long = process.call_with::<Bytes, Bytes>("x", &payload, with(Duration::from_secs(600)));
        let short =
            process.call_with::<Bytes, Bytes>("x", &payload, with(Duration::from_millis(200)));
        let ended = runtime().block_on(async { tokio::time::timeout(BOUND, short).await });
        let name = backend.name();
        match ended {
            Ok(Err(Error::Timeout)) => {}
            Ok(other) => panic!("{name}: the short call ended with {other:?}"),
            Err(_) => panic!("{name}: the short call did not time out within {BOUND:?}"),
        }
        drop(long);
    }
}

/// Calls made one after another, each once the one before has timed out,
/// all time out: a connection is woken only for a deadline earlier than
/// the earliest it was told of, and that must be forgotten once its timer
/// fires, or a call made after it (later deadline, idle connection) would
/// never be timed. The server accepts and never answers.
#[test]
fn calls_made_after_a_timeout_are_timed_too() {
    use walle_process::CallOptions;
    for backend in [Backend::evloop(), Backend::tcp()] {
        let (_client, process, _server_side) = connected_to_a_mute_peer(&backend);
        let payload = Bytes::from_static(b"?");
        let name = backend.name();
        for (i, millis) in [100, 200, 300].into_iter().enumerate() {
            let options = CallOptions {
                timeout: Some(Duration::from_millis(millis)),
                ..CallOptions::default()
            };
            let call = process.call_with::<Bytes, Bytes>("x", &payload, options);
            let ended = runtime().block_on(async { tokio::time::timeout(BOUND, call).await });
            match ended {
                Ok(Err(Error::Timeout)) => {}
                Ok(other) => panic!("{name}: call {i} ended with {other:?}"),
                Err(_) => panic!("{name}: call {i} did not time out within {BOUND:?}"),
            }
        }
        assert_eq!(process.stats().pending_calls, 0, "{name}");
    }
}
