//! Raw peers of a server, whatever its backend: a TCP socket, or a KCP
//! stream of the tests' own on kcp; and what a test asks of them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use walle_net::Backend;

use super::{HeldPort, PATIENCE, connect, held_port, is_kcp, kcp_peer, request_frame};

/// A raw peer of a server: a TCP socket, or a KCP stream on kcp.
pub enum Raw {
    Tcp(TcpStream),
    Kcp(kcp_peer::KcpStream),
}

impl Read for Raw {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Raw::Tcp(s) => s.read(buf),
            Raw::Kcp(s) => s.read(buf),
        }
    }
}

impl Write for Raw {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Raw::Tcp(s) => s.write(buf),
            Raw::Kcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Raw::Tcp(s) => s.flush(),
            Raw::Kcp(s) => s.flush(),
        }
    }
}

impl Raw {
    pub fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Raw::Tcp(s) => s.peer_addr(),
            Raw::Kcp(s) => s.peer_addr(),
        }
    }
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Raw::Tcp(s) => s.local_addr(),
            Raw::Kcp(s) => s.local_addr(),
        }
    }
    pub fn set_nonblocking(&mut self, on: bool) -> std::io::Result<()> {
        match self {
            Raw::Tcp(s) => s.set_nonblocking(on),
            Raw::Kcp(s) => s.set_nonblocking(on),
        }
    }
    pub fn set_read_timeout(&mut self, d: Option<Duration>) -> std::io::Result<()> {
        match self {
            Raw::Tcp(s) => s.set_read_timeout(d),
            Raw::Kcp(s) => s.set_read_timeout(d),
        }
    }
    /// TCP_NODELAY; a KCP stream sends each write at once anyway.
    pub fn set_nodelay(&self, on: bool) -> std::io::Result<()> {
        match self {
            Raw::Tcp(s) => s.set_nodelay(on),
            Raw::Kcp(_) => Ok(()),
        }
    }
    pub fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
        match self {
            Raw::Tcp(s) => s.shutdown(how),
            Raw::Kcp(s) => s.shutdown(how),
        }
    }
}

/// A raw peer of the `backend` server at `addr`, connected (on kcp: its
/// hello acknowledged), or the error of the try.
pub fn try_connect(backend: &Backend, addr: SocketAddr) -> std::io::Result<Raw> {
    try_connect_within(backend, addr, PATIENCE)
}

fn try_connect_within(backend: &Backend, addr: SocketAddr, wait: Duration) -> std::io::Result<Raw> {
    if is_kcp(backend) {
        return kcp_peer::KcpStream::connect_within(addr, wait).map(Raw::Kcp);
    }
    TcpStream::connect(addr).map(Raw::Tcp)
}

/// [`try_connect`], giving up on a kcp server that does not answer within
/// 2 s.
pub fn try_connect_quickly(backend: &Backend, addr: SocketAddr) -> std::io::Result<Raw> {
    try_connect_within(backend, addr, Duration::from_secs(2))
}

/// True when something serves `backend` at `addr`: a TCP connect is
/// taken, a KCP hello is acknowledged (within 2 s).
pub fn serves(backend: &Backend, addr: SocketAddr) -> bool {
    try_connect_within(backend, addr, Duration::from_secs(2)).is_ok()
}

/// A raw client that never reads: a TCP socket whose buffers fill, a KCP
/// stream whose window does.
pub fn connect_silent(backend: &Backend, addr: SocketAddr) -> Raw {
    let raw = connect_to(backend, addr);
    if let Raw::Kcp(s) = &raw {
        s.stop_reading();
    }
    raw
}

/// True when a raw peer connecting to `addr` gets an answer to a request
/// within 2 s.
pub fn answers(backend: &Backend, addr: SocketAddr) -> bool {
    let Ok(mut raw) = try_connect_within(backend, addr, Duration::from_secs(2)) else {
        return false;
    };
    let asked = raw
        .set_read_timeout(Some(Duration::from_secs(2)))
        .and_then(|()| raw.write_all(&request_frame("echo", 1, b"")))
        .and_then(|()| raw.read(&mut [0u8; 1]));
    matches!(asked, Ok(n) if n > 0)
}

/// A port held bound for `backend` (UDP for kcp), as [`held_port`].
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

/// A server that is no walle server, for clients to meet bad input:
/// TCP, or a KCP server of the tests' own on kcp.
pub enum RawListener {
    Tcp(std::net::TcpListener),
    Kcp(UdpSocketHolder),
}

pub struct UdpSocketHolder(pub std::net::UdpSocket);

impl RawListener {
    pub fn bind(backend: &Backend) -> RawListener {
        match is_kcp(backend) {
            true => RawListener::Kcp(UdpSocketHolder(
                std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
            )),
            false => RawListener::Tcp(std::net::TcpListener::bind("127.0.0.1:0").unwrap()),
        }
    }
    pub fn local_addr(&self) -> SocketAddr {
        match self {
            RawListener::Tcp(l) => l.local_addr().unwrap(),
            RawListener::Kcp(u) => u.0.local_addr().unwrap(),
        }
    }
    /// Accepts one peer, in the background (a kcp client waits for the
    /// answer to its hello before its build returns).
    pub fn accept(self) -> std::thread::JoinHandle<Raw> {
        std::thread::spawn(move || match self {
            RawListener::Tcp(l) => Raw::Tcp(l.accept().unwrap().0),
            RawListener::Kcp(u) => Raw::Kcp(kcp_peer::KcpStream::accept(u.0).unwrap()),
        })
    }
}

/// A raw client of the `backend` server at `addr` whose reads and writes
/// give up after [`PATIENCE`] instead of hanging a failing test.
pub fn connect_to(backend: &Backend, addr: SocketAddr) -> Raw {
    if is_kcp(backend) {
        return Raw::Kcp(kcp_peer::KcpStream::connect_within(addr, PATIENCE).expect("kcp connect"));
    }
    Raw::Tcp(connect(addr))
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
