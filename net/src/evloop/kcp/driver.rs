//! The driver of a UDP socket on a reactor: datagrams in and out, the
//! sans-io [`KcpEndpoint`] in between, a process per session. Each
//! session's deadlines (its KCP update, from `check()`, and its open,
//! silence and close deadlines) are timers of the loop's wheel with the
//! session's id as `sub`; so are its heartbeat and call timers. Commands
//! from the sessions' transports come with that id too.

use std::io;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use mio::Interest;
use mio::net::UdpSocket;
use tracing::{debug, warn};
use walle_packet::FrameMode;
use walle_process::{CloseReason, Transport};

use crate::conn::{Attach, Handler, end};
use crate::evloop::driver::{Ctx, Driver, Op, Ready, TimerKind, Turn};
use crate::evloop::transport::ConnShared;
use crate::kcp::{Event, KcpEndpoint, Sent, SessionId};
use crate::options::{ConnOptions, later};

/// A session's endpoint deadline.
const UPDATE: TimerKind = TimerKind(10);
/// Time for a session's heartbeat.
const BEAT: TimerKind = TimerKind(11);
/// A session's call deadline.
const CALLS: TimerKind = TimerKind(12);
/// Datagrams read per readiness event before other sources get a turn.
const READS: usize = 64;

/// The process side of an accepted session.
pub(super) struct Attached {
    handler: Arc<dyn Handler>,
    shared: Arc<ConnShared>,
    peer: SocketAddr,
}

/// One UDP socket and its sessions.
pub(super) struct KcpDriver {
    socket: UdpSocket,
    /// A client's socket is connected to its server.
    connected: Option<SocketAddr>,
    ep: KcpEndpoint<Attached>,
    attach: Attach,
    opts: Arc<ConnOptions>,
    /// WRITABLE interest is registered.
    writable: bool,
}

impl KcpDriver {
    /// Registers `socket` under the loop's new key.
    pub(super) fn start(
        cx: &mut Ctx<'_>,
        mut socket: UdpSocket,
        connected: Option<SocketAddr>,
        ep: KcpEndpoint<Attached>,
        attach: Attach,
        opts: Arc<ConnOptions>,
    ) -> Option<KcpDriver> {
        if let Err(e) = cx
            .registry
            .register(&mut socket, cx.token(), Interest::READABLE)
        {
            warn!(error = %e, "cannot register a kcp socket");
            return None;
        }
        Some(KcpDriver {
            socket,
            connected,
            ep,
            attach,
            opts,
            writable: false,
        })
    }

    /// Dials a client's session `conv` to `peer`: its hello goes out now.
    pub(super) fn dial(&mut self, cx: &mut Ctx<'_>, peer: SocketAddr, conv: u32) {
        let id = self.ep.connect(cx.now, peer, conv);
        if let Some(at) = self.ep.poll_timeout(cx.now, id) {
            cx.set_timer(at, UPDATE, id.0);
        }
        let _ = self.pump(cx);
    }

    /// Reads datagrams into the endpoint, up to a fair share. A socket
    /// error other than what an ICMP message leaves (a refused or reset
    /// port, which ends a client's session) ends the source.
    fn read(&mut self, cx: &mut Ctx<'_>) -> Turn {
        for _ in 0..READS {
            let got = match self.connected {
                Some(peer) => self.socket.recv(cx.scratch).map(|n| (n, peer)),
                None => self.socket.recv_from(cx.scratch),
            };
            match got {
                Ok((n, peer)) => {
                    self.ep.handle(cx.now, peer, &cx.scratch[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    // A connected client's server went away (an ICMP port
                    // unreachable): that ends its session.
                    debug!(error = %e, "kcp peer unreachable");
                    if self.connected.is_some() {
                        self.refused(cx, e);
                    }
                }
                Err(e) => {
                    warn!(error = %e, "kcp socket failed");
                    return Err(CloseReason::io(e));
                }
            }
        }
        cx.read_again();
        Ok(())
    }

    fn refused(&mut self, cx: &mut Ctx<'_>, e: io::Error) {
        for id in self.ep.accepted() {
            self.ep.end(
                cx.now,
                id,
                CloseReason::io(io::Error::new(e.kind(), e.to_string())),
            );
        }
    }

    /// Handles what the endpoint has to say, flushes the sessions it
    /// touched, sets their timers, and sends.
    fn pump(&mut self, cx: &mut Ctx<'_>) -> Turn {
        loop {
            while let Some(event) = self.ep.poll_event() {
                self.event(cx, event);
            }
            let Some(id) = self.ep.poll_touched() else {
                break;
            };
            // The queue is locked only when something may be in it: a
            // send scheduled a flush (a handler's answer, inline, makes its
            // segment leave with the ack of the request), or bytes wait.
            let queue = self.ep.app(id).map(|a| a.shared.clone()).filter(|shared| {
                shared.flush_queued.load(Ordering::Acquire) || self.ep.wants_queue(id)
            });
            match queue {
                Some(shared) => self.ep.flush(cx.now, id, Some(&mut *shared.out())),
                None => self.ep.flush(cx.now, id, None),
            }
            if let Some(at) = self.ep.poll_timeout(cx.now, id) {
                cx.set_timer(at, UPDATE, id.0);
            }
        }
        self.transmit(cx);
        if self.connected.is_some() && self.ep.len() == 0 {
            return Err(CloseReason::Local); // a client's one session is over
        }
        if cx.stopping && self.ep.live() == 0 {
            return Err(CloseReason::Stopped);
        }
        Ok(())
    }

    fn event(&mut self, cx: &mut Ctx<'_>, event: Event<Attached>) {
        match event {
            Event::Opened(id, peer) => self.opened(cx, id, peer),
            Event::Frame(id, body) => {
                let Some(attached) = self.ep.app(id) else {
                    return;
                };
                let handled =
                    std::panic::catch_unwind(AssertUnwindSafe(|| attached.handler.frame(body)));
                match handled {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => self.ep.end(cx.now, id, CloseReason::input(e)),
                    Err(_) => self.ep.end(cx.now, id, CloseReason::Panicked),
                }
            }
            Event::Closed(reason, Some(attached)) => {
                attached.shared.closed.store(true, Ordering::Release);
                attached.shared.out().clear();
                cx.handle.0.conns.fetch_sub(1, Ordering::Relaxed);
                end(&attached.peer, &*attached.handler, reason);
            }
            Event::Closed(_, None) => {}
        }
    }

    /// A new session: its process is built, or it is closed.
    fn opened(&mut self, cx: &mut Ctx<'_>, id: SessionId, peer: SocketAddr) {
        if cx.stopping {
            self.ep.close(cx.now, id, CloseReason::Stopped);
            return;
        }
        let shared = Arc::new(ConnShared::of_session(
            cx.key,
            id.0,
            cx.handle.clone(),
            self.opts.send_queue_bytes,
            FrameMode::Stream,
        ));
        let transport: Arc<dyn Transport> = shared.clone();
        let Some(handler) = (self.attach)(transport, peer) else {
            shared.closed.store(true, Ordering::Release);
            self.ep.close(cx.now, id, CloseReason::Local);
            return;
        };
        if self.opts.ticks() {
            cx.set_timer(later(cx.now, self.opts.heartbeat), BEAT, id.0);
        }
        cx.handle.0.conns.fetch_add(1, Ordering::Relaxed);
        let decoder = handler.framing().decoder();
        let attached = Attached {
            handler,
            shared,
            peer,
        };
        self.ep.accept(cx.now, id, decoder, attached);
    }

    /// Sends what the endpoint queued; WRITABLE interest while the socket
    /// takes no more.
    fn transmit(&mut self, cx: &mut Ctx<'_>) {
        let (socket, connected) = (&self.socket, self.connected);
        let sent = self.ep.poll_transmit(|peer, datagram| {
            let sent = match connected {
                Some(_) => socket.send(datagram),
                None => socket.send_to(datagram, peer),
            };
            match sent {
                Ok(_) => Sent::Done,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Sent::Blocked,
                Err(e) => {
                    debug!(%peer, error = %e, "datagram not sent");
                    Sent::Lost
                }
            }
        });
        let blocked = !sent;
        if blocked != self.writable {
            self.writable = blocked;
            let interest = match blocked {
                true => Interest::READABLE | Interest::WRITABLE,
                false => Interest::READABLE,
            };
            let _ = cx
                .registry
                .reregister(&mut self.socket, cx.token(), interest);
        }
    }
}

impl Driver for KcpDriver {
    fn ready(&mut self, cx: &mut Ctx<'_>, ready: Ready) -> Turn {
        if ready.readable || ready.drain {
            self.read(cx)?;
        }
        self.pump(cx)
    }

    fn timer(&mut self, cx: &mut Ctx<'_>, kind: TimerKind, sub: u64) -> Turn {
        let id = SessionId(sub);
        match kind {
            UPDATE => self.ep.handle_timeout(cx.now, id),
            BEAT => {
                if let Some(attached) = self.ep.app(id) {
                    let _ = attached.handler.heartbeat();
                    cx.set_timer(later(cx.now, self.opts.heartbeat), BEAT, sub);
                }
            }
            CALLS => {
                if let Some(attached) = self.ep.app(id) {
                    attached.shared.disarm();
                    attached.handler.timeout(cx.now);
                    if let Some(next) = attached.handler.next_timeout() {
                        attached.shared.arm(next);
                    }
                }
            }
            TimerKind(_) => {}
        }
        self.pump(cx)
    }

    fn command(&mut self, cx: &mut Ctx<'_>, op: Op, sub: u64) -> Turn {
        let id = SessionId(sub);
        match op {
            Op::Flush => {
                if let Some(attached) = self.ep.app(id) {
                    attached.shared.flush_queued.store(false, Ordering::Release);
                    let shared = attached.shared.clone();
                    self.ep.flush(cx.now, id, Some(&mut *shared.out()));
                    if let Some(at) = self.ep.poll_timeout(cx.now, id) {
                        cx.set_timer(at, UPDATE, sub);
                    }
                }
            }
            Op::Close => self.ep.close(cx.now, id, CloseReason::Local),
            Op::Arm => {
                if let Some(deadline) = self.ep.app(id).and_then(|a| a.shared.armed()) {
                    cx.set_timer(deadline, CALLS, sub);
                }
            }
        }
        self.pump(cx)
    }

    fn stop(&mut self, cx: &mut Ctx<'_>) -> Turn {
        self.ep.stop(cx.now);
        self.pump(cx)
    }

    fn closed(mut self: Box<Self>, cx: &mut Ctx<'_>, reason: CloseReason) {
        let _ = cx.registry.deregister(&mut self.socket);
        for (_, attached) in self.ep.take_apps() {
            attached.shared.closed.store(true, Ordering::Release);
            attached.shared.out().clear();
            cx.handle.0.conns.fetch_sub(1, Ordering::Relaxed);
            end(&attached.peer, &*attached.handler, reason.clone());
        }
    }
}
