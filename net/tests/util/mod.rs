//! Shared by the socket tests: servers on 127.0.0.1:0 for every backend,
//! clients, a runtime to await calls on, raw peers (`raw`: a TCP socket, a
//! KCP stream of the tests' own, or a WebSocket spoken by hand) for bad
//! peers.
#![allow(dead_code)]

pub mod kcp_peer;
mod raw;
pub mod relay;
mod ws_raw;

pub use raw::*;
#[allow(unused_imports)]
pub use ws_raw::*;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use walle_codec::RawCodec;
use walle_net::{Backend, Client, ClientOptions, KcpOptions, Server, ServerOptions};
use walle_packet::{Head, Protocol, Route, WalleFormat};
use walle_process::{CloseReason, Context, Router};

/// The backends of the tests that need a connection-oriented transport
/// (TCP under it): evloop, tcp and ws.
pub fn backends() -> [Backend; 3] {
    [Backend::evloop(), Backend::tcp(), Backend::ws()]
}

/// The transport a backend's peers speak: evloop and tcp both speak tcp.
fn transport(backend: &Backend) -> &'static str {
    match backend {
        Backend::Ws(_) => "ws",
        Backend::Kcp(_) => "kcp",
        _ => "tcp",
    }
}

/// True when a client of `client` speaks to a server of `server`: the
/// same transport (ws speaks only to ws, kcp only to kcp, the others all
/// speak tcp).
pub fn speaks_to(client: &Backend, server: &Backend) -> bool {
    transport(client) == transport(server)
}

/// Every backend the behaviour suite runs on: the stream ones, kcp and ws.
pub fn all_backends() -> [Backend; 4] {
    [
        Backend::evloop(),
        Backend::tcp(),
        Backend::kcp(KcpOptions::default()),
        Backend::ws(),
    ]
}

/// (server, client) backends that speak to each other: the tcp ones in
/// every pairing, kcp with kcp and ws with ws.
pub fn backend_pairs() -> Vec<(Backend, Backend)> {
    let mut pairs = Vec::new();
    for server in all_backends() {
        for client in all_backends() {
            if speaks_to(&client, &server) {
                pairs.push((server.clone(), client));
            }
        }
    }
    pairs
}

pub fn is_kcp(backend: &Backend) -> bool {
    matches!(backend, Backend::Kcp(_))
}

pub fn echo_router() -> Router<RawCodec> {
    let mut router = Router::new(RawCodec);
    router
        .route("echo", |_: &mut Context, req: Bytes| Ok(req))
        .unwrap();
    router
}

/// A client router logging every `news` push it handles into `log`.
pub fn news_router(log: Arc<Mutex<Vec<Bytes>>>) -> Router<RawCodec> {
    let mut router = Router::new(RawCodec);
    router
        .route("news", move |_: &mut Context, msg: Bytes| {
            log.lock().unwrap().push(msg);
            Ok(Bytes::new())
        })
        .unwrap();
    router
}

pub fn server(
    backend: &Backend,
    router: Router<RawCodec>,
    options: ServerOptions,
) -> Server<RawCodec> {
    Server::builder(router)
        .backend(backend.clone())
        .options(options)
        .bind("127.0.0.1:0")
        .expect("bind")
}

pub fn client(backend: &Backend, addr: SocketAddr, options: ClientOptions) -> Client<RawCodec> {
    client_with(backend, addr, Router::new(RawCodec), options)
}

pub fn client_with(
    backend: &Backend,
    addr: SocketAddr,
    router: Router<RawCodec>,
    options: ClientOptions,
) -> Client<RawCodec> {
    Client::builder(addr, router)
        .backend(backend.clone())
        .options(options)
        .build()
        .expect("client")
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The bound of every wait for an event: generous, for loaded machines.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Waits for `cond`, polling every few ms, up to [`PATIENCE`].
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out waiting for {what}");
}

/// A whole `walle` request frame.
pub fn request_frame(uri: &str, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    Protocol::new(WalleFormat::new())
        .encode(&Head::request(Route::Uri(uri), seq), payload, &mut wire)
        .unwrap();
    wire
}

/// A raw client of `backend`'s server at `addr` (upgraded on a ws one)
/// whose reads and writes give up after [`PATIENCE`] instead of hanging a
/// failing test.
pub fn connect(backend: &Backend, addr: SocketAddr) -> Raw {
    try_connect(backend, addr).expect("connect")
}

/// True when the server closed `stream` (EOF or reset) within
/// [`PATIENCE`].
pub fn closed_by_server(stream: &mut (impl Read + Timeouts)) -> bool {
    stream.timeout(Some(PATIENCE));
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// True once the server has closed `stream` (EOF or reset), without
/// waiting: `stream` must be non-blocking.
pub fn seen_closed(stream: &mut impl Read) -> bool {
    let mut buf = [0u8; 1];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// Writes a request on a raw socket and reads one whole response frame.
pub fn raw_round_trip(stream: &mut (impl Read + Write), seq: u64, payload: &[u8]) -> Vec<u8> {
    stream
        .write_all(&request_frame("echo", seq, payload))
        .unwrap();
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).unwrap();
    body
}

/// Writes a request to `uri` on a raw socket and reads one whole
/// response frame.
pub fn raw_round_trip_to(stream: &mut (impl Read + Write), uri: &str) -> Vec<u8> {
    stream.write_all(&request_frame(uri, 1, b"")).unwrap();
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).unwrap();
    body
}

/// A server its own handlers reach through a slot.
pub type Slot = Arc<Mutex<Option<walle_net::Server<RawCodec>>>>;

/// Starts a server into `slot` and connects a raw client to it once its
/// session is up.
pub fn serve_in(
    slot: &Slot,
    backend: &Backend,
    router: Router<RawCodec>,
    options: ServerOptions,
) -> Raw {
    let server = server(backend, router, options);
    let addr = server.local_addr();
    *slot.lock().unwrap() = Some(server);
    let raw = connect(backend, addr);
    eventually("session", || {
        slot.lock().unwrap().as_ref().unwrap().session_count() == 1
    });
    raw
}

/// A loopback port held bound but not listening: a connect to it is
/// refused at once, and no other socket can take it (not even a client's
/// own ephemeral port, which on loopback could otherwise connect to
/// itself) until [`HeldPort::release`], just before a server binds it.
pub struct HeldPort {
    socket: socket2::Socket,
    pub addr: SocketAddr,
}

pub fn held_port() -> HeldPort {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_reuse_address(true).expect("SO_REUSEADDR");
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any.into()).expect("bind");
    let addr = socket
        .local_addr()
        .expect("local addr")
        .as_socket()
        .expect("an inet address");
    HeldPort { socket, addr }
}

impl HeldPort {
    /// Frees the port for the server about to bind it.
    pub fn release(self) -> SocketAddr {
        drop(self.socket);
        self.addr
    }
}

/// The reason each session closed with, by the peer's address.
pub type Reasons = Arc<Mutex<HashMap<SocketAddr, CloseReason>>>;

/// A server recording why each of its sessions closed.
pub fn recording_server(backend: &Backend, options: ServerOptions) -> (Server<RawCodec>, Reasons) {
    recording(
        Server::builder(echo_router())
            .backend(backend.clone())
            .options(options),
    )
}

/// The server `builder` describes, bound on loopback, recording why each
/// of its sessions closed.
pub fn recording(builder: walle_net::ServerBuilder<RawCodec>) -> (Server<RawCodec>, Reasons) {
    let reasons = Reasons::default();
    let record = reasons.clone();
    let server = builder
        .on_session(move |session| {
            let (record, peer) = (record.clone(), session.peer());
            session.on_close(move |reason| {
                record.lock().unwrap().insert(peer, reason.clone());
            });
            Ok(())
        })
        .bind("127.0.0.1:0")
        .expect("bind");
    (server, reasons)
}
