//! A raw KCP peer for the socket tests, as a TcpStream is for tcp: a byte
//! stream over a connected UDP socket, with its own `kcp::Kcp` state
//! driven by a thread of its own (not the backend's code). It speaks the
//! backend's stream conventions: an empty message first (the hello, which
//! opens the server's session; `connect` returns once it is acknowledged),
//! an empty message at the end (on `shutdown(Write)` or drop), and reads
//! an empty message from the server as the end of the stream.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kcp::Kcp;

use super::PATIENCE;

struct Out(UdpSocket);

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = self.0.send(buf); // a lost datagram, as UDP may lose any
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct State {
    kcp: Kcp<Out>,
    inbox: VecDeque<u8>,
    /// The server ended the stream.
    eof: bool,
    /// This side is gone: the thread ends once all is acknowledged.
    dropped: bool,
    /// Reads stop: what comes is left in KCP, whose window fills.
    deaf: bool,
    /// A server end: the first empty message is the client's hello.
    hello: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    start: Instant,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn ms(&self) -> u32 {
        self.start.elapsed().as_millis() as u32
    }
}

/// A raw KCP client of a server.
pub struct KcpStream {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    peer: SocketAddr,
    local: SocketAddr,
    nonblocking: bool,
    read_timeout: Option<Duration>,
}

static CONV: AtomicU32 = AtomicU32::new(0x5eed_0000);

impl KcpStream {
    /// Dials `addr`: sends the hello and waits (up to `wait`) for its ack.
    pub fn connect_within(addr: SocketAddr, wait: Duration) -> io::Result<KcpStream> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.connect(addr)?;
        let conv = CONV.fetch_add(1, Ordering::Relaxed) ^ std::process::id();
        let stream = KcpStream::start(socket, conv, None)?;
        {
            let mut state = stream.shared.lock();
            let _ = state.kcp.send(&[]);
            let _ = state.kcp.flush();
        }
        let deadline = Instant::now() + wait;
        let mut state = stream.shared.lock();
        while state.kcp.wait_snd() > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::ConnectionRefused.into());
            }
            state = stream.shared.changed.wait_timeout(state, left).unwrap().0;
        }
        drop(state);
        Ok(stream)
    }

    /// The server end of the first client that sends to `socket`: its
    /// hello is taken (and not read as the end of the stream).
    pub fn accept(socket: UdpSocket) -> io::Result<KcpStream> {
        let mut first = vec![0u8; 65536];
        socket.set_read_timeout(Some(PATIENCE))?;
        let (n, peer) = socket.recv_from(&mut first)?;
        socket.connect(peer)?;
        let conv = u32::from_le_bytes([first[0], first[1], first[2], first[3]]);
        KcpStream::start(socket, conv, Some(&first[..n]))
    }

    fn start(socket: UdpSocket, conv: u32, first: Option<&[u8]>) -> io::Result<KcpStream> {
        socket.set_read_timeout(Some(Duration::from_millis(2)))?;
        let mut kcp = Kcp::new(conv, Out(socket.try_clone()?));
        kcp.set_nodelay(true, 10, 2, true);
        kcp.set_wndsize(256, 256);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                kcp,
                inbox: VecDeque::new(),
                eof: false,
                dropped: false,
                deaf: false,
                hello: first.is_some(),
            }),
            changed: Condvar::new(),
            start: Instant::now(),
        });
        {
            let mut state = shared.lock();
            let _ = state.kcp.update(shared.ms());
            if let Some(first) = first {
                let _ = state.kcp.input(first);
            }
        }
        let (local, peer) = (socket.local_addr()?, socket.peer_addr()?);
        let run = shared.clone();
        let thread = std::thread::spawn(move || drive(&run, &socket));
        Ok(KcpStream {
            shared,
            thread: Some(thread),
            peer,
            local,
            nonblocking: false,
            read_timeout: Some(PATIENCE),
        })
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// Stops reading: what the server sends stays in KCP, whose window
    /// fills, as a socket's buffers do for a peer that does not read.
    pub fn stop_reading(&self) {
        self.shared.lock().deaf = true;
    }

    pub fn set_nonblocking(&mut self, on: bool) -> io::Result<()> {
        self.nonblocking = on;
        Ok(())
    }

    pub fn set_read_timeout(&mut self, d: Option<Duration>) -> io::Result<()> {
        self.read_timeout = d;
        Ok(())
    }

    /// `Write`: the end of the stream goes out; `Read`: reading stops.
    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        let mut state = self.shared.lock();
        if matches!(how, std::net::Shutdown::Read | std::net::Shutdown::Both) {
            state.deaf = true;
        }
        if matches!(how, std::net::Shutdown::Write | std::net::Shutdown::Both) {
            let _ = state.kcp.send(&[]);
            let _ = state.kcp.flush();
        }
        Ok(())
    }
}

/// The peer's thread: datagrams into KCP, messages into the inbox, KCP's
/// clock; ends once the stream is dropped and all is acknowledged.
fn drive(shared: &Shared, socket: &UdpSocket) {
    let mut buf = vec![0u8; 65536];
    let mut message = Vec::new();
    let mut dropped_at = None;
    loop {
        let got = socket.recv(&mut buf);
        let mut state = shared.lock();
        if let Ok(n) = got {
            let _ = state.kcp.input(&buf[..n]);
        }
        let _ = state.kcp.update(shared.ms());
        while !state.deaf {
            let Ok(n) = state.kcp.peeksize() else { break };
            message.resize(n, 0);
            if state.kcp.recv(&mut message).is_err() {
                break;
            }
            if n == 0 && !std::mem::take(&mut state.hello) {
                state.eof = true;
            }
            state.hello = false;
            state.inbox.extend(&message);
        }
        let _ = state.kcp.flush();
        shared.changed.notify_all();
        if state.dropped {
            let since = *dropped_at.get_or_insert_with(Instant::now);
            if state.kcp.wait_snd() == 0 || since.elapsed() > Duration::from_secs(3) {
                return;
            }
        }
    }
}

impl Read for KcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let deadline = self.read_timeout.map(|t| Instant::now() + t);
        let mut state = self.shared.lock();
        loop {
            if !state.inbox.is_empty() {
                let n = buf.len().min(state.inbox.len());
                for (b, byte) in buf.iter_mut().zip(state.inbox.drain(..n)) {
                    *b = byte;
                }
                return Ok(n);
            }
            if state.eof {
                return Ok(0);
            }
            if self.nonblocking {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            state = self.shared.changed.wait_timeout(state, left).unwrap().0;
        }
    }
}

impl Write for KcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.shared.lock();
        while state.kcp.wait_snd() > 4096 {
            state = self.shared.changed.wait(state).unwrap();
        }
        let mss = state.kcp.mss();
        for chunk in buf.chunks(mss) {
            state.kcp.send(chunk).map_err(io::Error::from)?;
        }
        let _ = state.kcp.flush();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for KcpStream {
    fn drop(&mut self) {
        {
            let mut state = self.shared.lock();
            if !state.dropped {
                state.dropped = true;
                let _ = state.kcp.send(&[]);
                let _ = state.kcp.flush();
            }
        }
        // The thread finishes in the background, as a closed socket's
        // FIN would.
        drop(self.thread.take());
    }
}
