//! Two processes back to back in memory, a manual clock, and a poll helper.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as Task, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use walle_codec::RawCodec;
use walle_packet::{Protocol, WalleFormat};
use walle_process::mem::{MemPipe, MemTransport};
use walle_process::{Context, ManualClock, Process, ProcessBuilder, Router};

pub struct Link<C: Clone + Send + Sync + 'static = RawCodec> {
    pub client: Process<C>,
    pub server: Process<C>,
    pub to_server: Arc<MemTransport>,
    pub to_client: Arc<MemTransport>,
    up: MemPipe,
    down: MemPipe,
    pub clock: ManualClock,
}

pub fn walle() -> Protocol {
    Protocol::new(WalleFormat::new())
}

impl<C: Clone + Send + Sync + 'static> Link<C> {
    /// A client with an empty router and a server with `router`.
    pub fn new(protocol: Protocol, router: Router<C>) -> Self
    where
        C: Default,
    {
        Link::with(protocol, Router::new(C::default()), router, |b| b, |b| b)
    }

    pub fn with(
        protocol: Protocol,
        client_router: Router<C>,
        server_router: Router<C>,
        client: impl FnOnce(ProcessBuilder<C>) -> ProcessBuilder<C>,
        server: impl FnOnce(ProcessBuilder<C>) -> ProcessBuilder<C>,
    ) -> Self {
        let clock = ManualClock::new();
        let to_server = Arc::new(MemTransport::new(1 << 20));
        let to_client = Arc::new(MemTransport::new(1 << 20));
        let client = client(
            Process::builder(protocol.clone(), client_router)
                .transport(to_server.clone())
                .clock(Arc::new(clock.clone())),
        )
        .build()
        .expect("client");
        let server = server(
            Process::builder(protocol.clone(), server_router)
                .transport(to_client.clone())
                .clock(Arc::new(clock.clone())),
        )
        .build()
        .expect("server");
        Link {
            client,
            server,
            to_server,
            to_client,
            up: MemPipe::new(&protocol),
            down: MemPipe::new(&protocol),
            clock,
        }
    }

    /// Moves bytes both ways until nothing moves; returns frames delivered.
    pub fn pump(&mut self) -> usize {
        let mut total = 0;
        loop {
            let up = self
                .up
                .pump(&self.to_server, &self.server)
                .expect("server accepts");
            let down = self
                .down
                .pump(&self.to_client, &self.client)
                .expect("client accepts");
            total += up + down;
            if up + down == 0 {
                return total;
            }
        }
    }

    /// Pumps until `fut` settles or `wall` passes (for worker threads).
    pub fn drive<F: Future + Unpin>(&mut self, fut: &mut F, wall: Duration) -> Option<F::Output> {
        let end = Instant::now() + wall;
        loop {
            self.pump();
            if let Poll::Ready(v) = poll(fut) {
                return Some(v);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Advances the clock and fires both sides' timeouts.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
        let now = walle_process::Clock::now(&self.clock);
        self.client.handle_timeout(now);
        self.server.handle_timeout(now);
    }
}

/// A router that answers `echo` with the request.
pub fn echo_router() -> Router<RawCodec> {
    let mut router = Router::new(RawCodec);
    router
        .route("echo", |_: &mut Context, req: Bytes| Ok(req))
        .unwrap();
    router
}

pub fn poll<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Task::from_waker(Waker::noop()))
}

pub fn ready<F: Future + Unpin>(fut: &mut F) -> F::Output {
    match poll(fut) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("future not ready"),
    }
}

pub fn bytes(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

/// Drains what `transport` has queued and decodes it, without delivering.
pub fn drain(protocol: &Protocol, transport: &MemTransport) -> Vec<walle_packet::Packet> {
    use walle_process::Transport;
    let mut wire = Vec::new();
    // Swap the queued bytes out through a no-op write that takes them.
    let _ = transport.send(&mut |out| {
        wire = std::mem::take(out);
        Ok(())
    });
    let mut stream = bytes::BytesMut::from(&wire[..]);
    let mut decoder = protocol.decoder();
    let mut packets = Vec::new();
    while let Some(body) = decoder.decode(&mut stream).expect("well-formed output") {
        packets.push(protocol.decode(body).expect("well-formed packet"));
    }
    packets
}

/// Encodes one frame body (no length prefix) for `head`.
pub fn body(protocol: &Protocol, head: &walle_packet::Head<'_>, payload: &[u8]) -> Bytes {
    let mut wire = Vec::new();
    protocol
        .encode(head, payload, &mut wire)
        .expect("encodable");
    Bytes::from(wire).slice(protocol.framing().width()..)
}
