//! For the backends' unit tests: a connection over a Unix socket pair (or,
//! for kcp, a KCP stream of the tests' own), served by a real process that
//! echoes, seen from the test's end: as a stream of length-prefixed frames,
//! or (the ws link) as WebSocket frames spoken by hand, one binary message
//! per frame body.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use bytes::Bytes;
use walle_codec::RawCodec;
use walle_packet::{Head, Protocol, Route, WalleFormat};
use walle_process::{CloseReason, Context, Process, Router, Session};

use crate::conn::{Attach, Handler};
use crate::options::ConnOptions;

/// The bound of every wait for an event.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// The raw KCP peer of the socket tests (`net/tests/util`), shared here.
#[allow(dead_code, unreachable_pub)]
#[path = "../tests/util/kcp_peer.rs"]
pub(crate) mod kcp_peer;

/// The test's end of a connection: a Unix socket, or a KCP stream.
pub(crate) enum PeerStream {
    Unix(UnixStream),
    Kcp(kcp_peer::KcpStream),
}

impl Read for PeerStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            PeerStream::Unix(s) => s.read(buf),
            PeerStream::Kcp(s) => s.read(buf),
        }
    }
}

impl Write for PeerStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            PeerStream::Unix(s) => s.write(buf),
            PeerStream::Kcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            PeerStream::Unix(s) => s.flush(),
            PeerStream::Kcp(s) => s.flush(),
        }
    }
}

impl PeerStream {
    pub(crate) fn shutdown(&self, how: std::net::Shutdown) -> std::io::Result<()> {
        match self {
            PeerStream::Unix(s) => s.shutdown(how),
            PeerStream::Kcp(s) => s.shutdown(how),
        }
    }
}

/// A Unix socket has no inet address; sessions and logs get this one.
pub(crate) const PEER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

fn protocol() -> Protocol {
    Protocol::new(WalleFormat::new())
}

fn echo_router() -> Router<RawCodec> {
    let mut router = Router::new(RawCodec);
    router
        .route("echo", |_: &mut Context, req: Bytes| Ok(req))
        .unwrap();
    router
}

/// Waits for `cond`, up to [`PATIENCE`].
pub(crate) fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A connection about to be handed to a backend: the backend's end of a
/// Unix socket pair (non-blocking), the [`Attach`] that gives it an
/// echoing process, and the test's end, for once it is attached.
pub(crate) fn echo() -> (UnixStream, Attach, Pending) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    theirs.set_read_timeout(Some(PATIENCE)).unwrap();
    let (closed_tx, closed) = mpsc::channel();
    let (process_tx, process) = mpsc::channel();
    let attach: Attach = Arc::new(move |transport, _peer| {
        let process = Process::builder(protocol(), echo_router())
            .transport(transport)
            .session(Session::new(7))
            .build()
            .ok()?;
        let closed_tx = closed_tx.clone();
        process.session().on_close(move |reason| {
            let _ = closed_tx.send(reason.clone());
        });
        let _ = process_tx.send(process.clone());
        Some(Arc::new(process) as Arc<dyn Handler>)
    });
    let pending = Pending {
        theirs,
        process,
        closed,
    };
    (ours, attach, pending)
}

/// The test's end of a connection not yet attached.
pub(crate) struct Pending {
    theirs: UnixStream,
    process: Receiver<Process<RawCodec>>,
    closed: Receiver<CloseReason>,
}

impl Pending {
    /// The test's end, once the backend attached the connection.
    pub(crate) fn attached(self) -> Peer {
        Peer {
            stream: PeerStream::Unix(self.theirs),
            process: self.process.recv_timeout(PATIENCE).expect("attached"),
            closed: self.closed,
            ws: false,
        }
    }

    /// The test's end over `stream` (the Unix socket pair unused), once
    /// the backend attached the connection.
    pub(crate) fn attached_over(self, stream: PeerStream) -> Peer {
        Peer {
            stream,
            process: self.process.recv_timeout(PATIENCE).expect("attached"),
            closed: self.closed,
            ws: false,
        }
    }

    /// The test's end of a WebSocket (the backend's end is the server).
    pub(crate) fn attached_ws(self) -> Peer {
        Peer {
            ws: true,
            ..self.attached()
        }
    }
}

/// The test's end of a connection a backend serves.
pub(crate) struct Peer {
    pub(crate) stream: PeerStream,
    pub(crate) process: Process<RawCodec>,
    closed: Receiver<CloseReason>,
    /// The link is a WebSocket: frames travel as binary messages.
    ws: bool,
}

/// Writes one masked (client) WebSocket frame.
fn ws_write(stream: &mut impl Write, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
    const MASK: [u8; 4] = [1, 2, 3, 4];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => frame.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend((n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend((n as u64).to_be_bytes());
        }
    }
    frame.extend(MASK);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    stream.write_all(&frame)
}

/// Reads one (server, unmasked) WebSocket frame: whether it is final, its
/// opcode and payload; `None` at the end of the stream.
fn ws_read(stream: &mut impl Read) -> Option<(bool, u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).ok()?;
    let len = match head[1] & 0x7f {
        126 => {
            let mut n = [0u8; 2];
            stream.read_exact(&mut n).ok()?;
            u16::from_be_bytes(n) as usize
        }
        127 => {
            let mut n = [0u8; 8];
            stream.read_exact(&mut n).ok()?;
            u64::from_be_bytes(n) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).ok()?;
    Some((head[0] & 0x80 != 0, head[0] & 0x0f, payload))
}

impl Peer {
    /// A request to `echo` and its answer's payload.
    pub(crate) fn round_trip(&mut self, seq: u64, payload: &[u8]) -> Bytes {
        let mut wire = Vec::new();
        protocol()
            .encode(&Head::request(Route::Uri("echo"), seq), payload, &mut wire)
            .unwrap();
        let body = if self.ws {
            ws_write(&mut self.stream, 2, &wire[4..]).unwrap();
            // The answer, in fragments when it is long.
            let mut body = Vec::new();
            loop {
                let (fin, opcode, part) = ws_read(&mut self.stream).expect("an answer");
                assert!(matches!(opcode, 0 | 2), "a binary message, not {opcode}");
                body.extend(part);
                if fin {
                    break body;
                }
            }
        } else {
            self.stream.write_all(&wire).unwrap();
            let mut len = [0u8; 4];
            self.stream.read_exact(&mut len).unwrap();
            let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
            self.stream.read_exact(&mut body).unwrap();
            body
        };
        let answer = protocol().decode(Bytes::from(body)).unwrap();
        assert_eq!(answer.seq(), seq);
        answer.payload()
    }

    /// Sends a frame no format accepts.
    pub(crate) fn send_garbage(&mut self) {
        match self.ws {
            true => ws_write(&mut self.stream, 2, &[0xff, 0xff, 0xff]).unwrap(),
            false => self
                .stream
                .write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff])
                .unwrap(),
        }
    }

    /// Why the session closed, as its close callback heard.
    pub(crate) fn close_reason(&self) -> CloseReason {
        self.closed.recv_timeout(PATIENCE).expect("closed")
    }

    /// The backend's end closed: a read sees the end of the stream (on a
    /// WebSocket, after a close frame, which is answered).
    pub(crate) fn sees_end(&mut self) -> bool {
        if self.ws {
            while let Some((_, opcode, payload)) = ws_read(&mut self.stream) {
                if opcode != 8 {
                    return false;
                }
                let _ = ws_write(&mut self.stream, 8, &payload);
            }
            return true;
        }
        let mut rest = Vec::new();
        self.stream.read_to_end(&mut rest).is_ok() && rest.is_empty()
    }
}

/// Answers, a large one too, then the peer ends its stream: the session
/// closes with [`CloseReason::PeerClosed`] and the backend's end closes.
pub(crate) fn answers_then_ends_as_the_peer_did(peer: &mut Peer) {
    let small = peer.round_trip(1, b"over a unix socket");
    assert_eq!(&small[..], b"over a unix socket");
    assert_eq!(&peer.round_trip(2, &[9; 100_000])[..], &[9; 100_000][..]);
    peer.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let reason = peer.close_reason();
    assert!(matches!(reason, CloseReason::PeerClosed), "{reason:?}");
    assert!(peer.sees_end());
}

/// A local close, bad input, silence and a failed write each close a
/// connection of `connect` with their reason (and the first three end its
/// stream).
pub(crate) fn closes_with_their_reasons(mut connect: impl FnMut(ConnOptions) -> Peer) {
    closes_locally_on_bad_input_and_silence(&mut connect);
    closes_on_a_failed_write(&mut connect);
}

/// A local close, bad input and silence each close a connection of
/// `connect` with their reason, and end its stream.
pub(crate) fn closes_locally_on_bad_input_and_silence(
    mut connect: impl FnMut(ConnOptions) -> Peer,
) {
    let mut local = connect(ConnOptions::default());
    assert_eq!(&local.round_trip(1, b"before")[..], b"before");
    local.process.close();
    assert!(matches!(local.close_reason(), CloseReason::Local));
    assert!(local.sees_end(), "a local close ends the stream");

    let mut malformed = connect(ConnOptions::default());
    malformed.send_garbage();
    let reason = malformed.close_reason();
    assert!(matches!(reason, CloseReason::Malformed(_)), "{reason:?}");
    assert!(malformed.sees_end());

    let limit = Duration::from_millis(50);
    let mut silent = connect(ConnOptions {
        read_timeout: limit,
        ..ConnOptions::default()
    });
    let reason = silent.close_reason();
    assert!(
        matches!(reason, CloseReason::Silent(after) if after == limit),
        "{reason:?}"
    );
    assert!(silent.sees_end());
}

/// A failed write closes a connection of `connect` with its socket error.
pub(crate) fn closes_on_a_failed_write(mut connect: impl FnMut(ConnOptions) -> Peer) {
    // The peer stops reading: what the backend writes next fails, and the
    // session closes with that socket error (not as a local close).
    let mut deaf = connect(ConnOptions::default());
    assert_eq!(&deaf.round_trip(1, b"before")[..], b"before");
    deaf.stream.shutdown(std::net::Shutdown::Read).unwrap();
    let _ = deaf.process.notify("push", &Bytes::from_static(b"unheard"));
    let reason = deaf.close_reason();
    assert!(matches!(reason, CloseReason::Io(_)), "{reason:?}");
}
