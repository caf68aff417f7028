//! A raw peer of any backend, as the byte stream of walle frames the tests
//! read and write: a TCP socket, or a WebSocket spoken by hand (`ws_raw`),
//! translated to and from that stream.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use walle_net::Backend;

use super::ws_raw::{Role, WsRaw, read_head, ws_handshake};

/// A raw connection to (or from) a server of some backend.
#[derive(Debug)]
pub enum Raw {
    Tcp(TcpStream),
    Ws(WsRaw),
}

fn timeouts(stream: &TcpStream) {
    stream.set_read_timeout(Some(super::PATIENCE)).unwrap();
    stream.set_write_timeout(Some(super::PATIENCE)).unwrap();
}

/// A raw client of `backend`'s server at `addr`, upgraded if it is ws.
pub fn try_connect(backend: &Backend, addr: SocketAddr) -> io::Result<Raw> {
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

/// A raw server's end of a connection from a client of `backend`: the
/// upgrade answered if it is ws.
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

impl Raw {
    fn stream(&self) -> &TcpStream {
        match self {
            Raw::Tcp(s) => s,
            Raw::Ws(ws) => &ws.stream,
        }
    }
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream().local_addr()
    }
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream().peer_addr()
    }
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.stream().set_nodelay(on)
    }
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.stream().set_nonblocking(on)
    }
    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.stream().set_read_timeout(d)
    }
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.stream().shutdown(how)
    }
    /// A second handle of a TCP connection (not of a WebSocket, whose
    /// translation has state).
    pub fn try_clone(&self) -> io::Result<Raw> {
        match self {
            Raw::Tcp(s) => s.try_clone().map(Raw::Tcp),
            Raw::Ws(_) => Err(io::Error::other("a raw WebSocket has one handle")),
        }
    }
    /// The WebSocket under it.
    pub fn ws(&mut self) -> &mut WsRaw {
        match self {
            Raw::Ws(ws) => ws,
            Raw::Tcp(_) => panic!("not a WebSocket"),
        }
    }
}

impl Read for Raw {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Raw::Tcp(s) => s.read(buf),
            Raw::Ws(ws) => ws.read(buf),
        }
    }
}

impl Write for Raw {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Raw::Tcp(s) => s.write(buf),
            Raw::Ws(ws) => ws.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Raw::Tcp(s) => s.flush(),
            Raw::Ws(ws) => ws.flush(),
        }
    }
}
