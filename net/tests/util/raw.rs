//! Raw peers of a server (or of a client), whatever its backend, as the
//! byte stream of walle frames the tests read and write: a TCP socket, a
//! KCP stream of the tests' own on kcp (`kcp_peer`), or a WebSocket spoken
//! by hand on ws (`ws_raw`), translated to and from that stream; and what
//! a test asks of them.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use walle_net::Backend;

use super::ws_raw::{Role, WsRaw, read_head, ws_handshake};
use super::{HeldPort, PATIENCE, held_port, is_kcp, kcp_peer, request_frame};

/// A raw connection to (or from) a server of some backend.
pub enum Raw {
    Tcp(TcpStream),
    Kcp(kcp_peer::KcpStream),
    Ws(WsRaw),
}

impl std::fmt::Debug for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Raw::Tcp(s) => f.debug_tuple("Tcp").field(s).finish(),
            Raw::Kcp(s) => f.debug_tuple("Kcp").field(&s.peer_addr()).finish(),
            Raw::Ws(ws) => f.debug_tuple("Ws").field(ws).finish(),
        }
    }
}

fn timeouts(stream: &TcpStream) {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
}

/// A raw client of `backend`'s server at `addr`, connected (on kcp: its
/// hello acknowledged; on ws: upgraded), or the error of the try. A TCP
/// socket's reads and writes give up after [`PATIENCE`].
pub fn try_connect(backend: &Backend, addr: SocketAddr) -> io::Result<Raw> {
    try_connect_within(backend, addr, PATIENCE)
}

/// [`try_connect`], giving up on a kcp server that does not answer its
/// hello within `wait`.
fn try_connect_within(backend: &Backend, addr: SocketAddr, wait: Duration) -> io::Result<Raw> {
    if is_kcp(backend) {
        return kcp_peer::KcpStream::connect_within(addr, wait).map(Raw::Kcp);
    }
    let mut stream = TcpStream::connect(addr)?;
    timeouts(&stream);
    match backend {
        Backend::Ws(opts) => {
            ws_handshake(&mut stream, &opts.path, &[])?;
            Ok(Raw::Ws(WsRaw::new(stream, Role::Client)))
        }
        _ => Ok(Raw::Tcp(stream)),
    }
}

/// [`try_connect`], giving up on a kcp server that does not answer within
/// 2 s.
pub fn try_connect_quickly(backend: &Backend, addr: SocketAddr) -> io::Result<Raw> {
    try_connect_within(backend, addr, Duration::from_secs(2))
}

/// True when something serves `backend` at `addr`: a TCP connect is
/// taken (and upgraded on ws), a KCP hello is acknowledged (within 2 s).
pub fn serves(backend: &Backend, addr: SocketAddr) -> bool {
    try_connect_quickly(backend, addr).is_ok()
}

/// A raw client that never reads: a TCP socket whose buffers fill, a KCP
/// stream whose window does.
pub fn connect_silent(backend: &Backend, addr: SocketAddr) -> Raw {
    let raw = super::connect(backend, addr);
    if let Raw::Kcp(s) = &raw {
        s.stop_reading();
    }
    raw
}

/// True when a raw peer connecting to `addr` gets an answer to a request
/// within 2 s.
pub fn answers(backend: &Backend, addr: SocketAddr) -> bool {
    let Ok(mut raw) = try_connect_quickly(backend, addr) else {
        return false;
    };
    let asked = raw
        .set_read_timeout(Some(Duration::from_secs(2)))
        .and_then(|()| raw.write_all(&request_frame("echo", 1, b"")))
        .and_then(|()| raw.read(&mut [0u8; 1]));
    matches!(asked, Ok(n) if n > 0)
}

/// A port held bound for `backend` (UDP for kcp, TCP otherwise), as
/// [`held_port`].
pub fn held_port_for(backend: &Backend) -> HeldPort {
    if !is_kcp(backend) {
        return held_port();
    }
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, None).expect("socket");
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any.into()).expect("bind");
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    HeldPort { socket, addr }
}

/// A raw server's end of a connection from a client of `backend` on a TCP
/// `listener`: the upgrade answered if it is ws.
pub fn accept(backend: &Backend, listener: &TcpListener) -> Raw {
    try_accept(backend, listener).expect("accept")
}

/// [`accept`], or why the connection could not be had.
pub fn try_accept(backend: &Backend, listener: &TcpListener) -> io::Result<Raw> {
    let (mut stream, _) = listener.accept()?;
    timeouts(&stream);
    if !matches!(backend, Backend::Ws(_)) {
        return Ok(Raw::Tcp(stream));
    }
    let request = read_head(&mut stream)?;
    let key = request
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then_some(value)
        })
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no key"))?;
    let accept =
        tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.trim().as_bytes());
    write!(
        stream,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )?;
    Ok(Raw::Ws(WsRaw::new(stream, Role::Server)))
}

/// A server that is no walle server, for clients to meet bad input: a TCP
/// listener (answering the upgrade on ws), or a KCP server of the tests'
/// own on kcp.
pub enum RawListener {
    Tcp(Backend, TcpListener),
    Kcp(UdpSocketHolder),
}

pub struct UdpSocketHolder(pub std::net::UdpSocket);

impl RawListener {
    pub fn bind(backend: &Backend) -> RawListener {
        match is_kcp(backend) {
            true => RawListener::Kcp(UdpSocketHolder(
                std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
            )),
            false => RawListener::Tcp(backend.clone(), TcpListener::bind("127.0.0.1:0").unwrap()),
        }
    }
    pub fn local_addr(&self) -> SocketAddr {
        match self {
            RawListener::Tcp(_, l) => l.local_addr().unwrap(),
            RawListener::Kcp(u) => u.0.local_addr().unwrap(),
        }
    }
    /// Accepts one peer, in the background (a kcp client waits for the
    /// answer to its hello before its build returns, a ws one for its
    /// upgrade).
    pub fn accept(self) -> std::thread::JoinHandle<Raw> {
        std::thread::spawn(move || match self {
            RawListener::Tcp(backend, l) => accept(&backend, &l),
            RawListener::Kcp(u) => Raw::Kcp(kcp_peer::KcpStream::accept(u.0).unwrap()),
        })
    }
}

impl Raw {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Raw::Tcp(s) => s.local_addr(),
            Raw::Kcp(s) => s.local_addr(),
            Raw::Ws(ws) => ws.stream.local_addr(),
        }
    }
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Raw::Tcp(s) => s.peer_addr(),
            Raw::Kcp(s) => s.peer_addr(),
            Raw::Ws(ws) => ws.stream.peer_addr(),
        }
    }
    /// TCP_NODELAY; a KCP stream sends each write at once anyway.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match self {
            Raw::Tcp(s) => s.set_nodelay(on),
            Raw::Kcp(_) => Ok(()),
            Raw::Ws(ws) => ws.stream.set_nodelay(on),
        }
    }
    pub fn set_nonblocking(&mut self, on: bool) -> io::Result<()> {
        match self {
            Raw::Tcp(s) => s.set_nonblocking(on),
            Raw::Kcp(s) => s.set_nonblocking(on),
            Raw::Ws(ws) => ws.stream.set_nonblocking(on),
        }
    }
    pub fn set_read_timeout(&mut self, d: Option<Duration>) -> io::Result<()> {
        match self {
            Raw::Tcp(s) => s.set_read_timeout(d),
            Raw::Kcp(s) => s.set_read_timeout(d),
            Raw::Ws(ws) => ws.stream.set_read_timeout(d),
        }
    }
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Raw::Tcp(s) => s.shutdown(how),
            Raw::Kcp(s) => s.shutdown(how),
            Raw::Ws(ws) => ws.stream.shutdown(how),
        }
    }
    /// A second handle of a TCP connection (not of a KCP stream or a
    /// WebSocket, whose translations have state).
    pub fn try_clone(&self) -> io::Result<Raw> {
        match self {
            Raw::Tcp(s) => s.try_clone().map(Raw::Tcp),
            Raw::Kcp(_) => Err(io::Error::other("a raw KCP stream has one handle")),
            Raw::Ws(_) => Err(io::Error::other("a raw WebSocket has one handle")),
        }
    }
    /// The WebSocket under it.
    pub fn ws(&mut self) -> &mut WsRaw {
        match self {
            Raw::Ws(ws) => ws,
            _ => panic!("not a WebSocket"),
        }
    }
}

impl Read for Raw {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Raw::Tcp(s) => s.read(buf),
            Raw::Kcp(s) => s.read(buf),
            Raw::Ws(ws) => ws.read(buf),
        }
    }
}

impl Write for Raw {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Raw::Tcp(s) => s.write(buf),
            Raw::Kcp(s) => s.write(buf),
            Raw::Ws(ws) => ws.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Raw::Tcp(s) => s.flush(),
            Raw::Kcp(s) => s.flush(),
            Raw::Ws(ws) => ws.flush(),
        }
    }
}

/// A read timeout that can be set.
pub trait Timeouts {
    fn timeout(&mut self, d: Option<Duration>);
}

impl Timeouts for TcpStream {
    fn timeout(&mut self, d: Option<Duration>) {
        self.set_read_timeout(d).unwrap();
    }
}

impl Timeouts for Raw {
    fn timeout(&mut self, d: Option<Duration>) {
        self.set_read_timeout(d).unwrap();
    }
}
