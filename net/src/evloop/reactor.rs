//! One reactor: a mio poll, a slab of connections, an inbox, a timer wheel.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use tracing::{debug, warn};
use walle_packet::FrameDecoder;
use walle_process::{CloseReason, TimerWheel, Transport};

use super::{
    CURRENT, Cmd, ConnShared, EvTransport, Key, LoopHandle, LoopShared, NEXT_LOOP, Outbound,
};
use crate::conn::{Attach, Handler, deliver, log_close};
use crate::options::{ConnOptions, EvloopOptions, later};

const WAKER: Token = Token(usize::MAX);
const LISTENER: Token = Token(usize::MAX - 1);
/// Reads per readiness event before other connections get a turn.
const MAX_READS: usize = 16;
/// Idle read buffers a reactor keeps for reuse.
const SPARE_BUFFERS: usize = 64;
/// Resolution of silence, heartbeat and call timers.
const TICK: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Silence,
    Beat,
    Calls,
    /// The close flush deadline of a connection asked to close.
    Close,
}

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    generation: u64,
    shared: Arc<ConnShared>,
    handler: Arc<dyn Handler>,
    inbound: Option<BytesMut>,
    decoder: FrameDecoder,
    last_read: Instant,
    opts: Arc<ConnOptions>,
    /// WRITABLE interest is registered.
    writable: bool,
    /// Asked to close: flushing what is queued until the close flush
    /// deadline; what it reads is dropped.
    closing: bool,
}

pub(crate) struct Reactor {
    handle: LoopHandle,
    poll: Poll,
    conns: Slab<Conn>,
    wheel: TimerWheel<(usize, u64, Timer)>,
    fired: Vec<(usize, u64, Timer)>,
    scratch: Box<[u8]>,
    spare: Vec<BytesMut>,
    events: usize,
    listener: Option<(TcpListener, Attach, Arc<ConnOptions>)>,
    generation: u64,
    stopping: Option<Instant>,
    again: Vec<usize>,
    cmds: Vec<Cmd>,
    busy_poll: Duration,
}

impl Reactor {
    pub(crate) fn new(opts: &EvloopOptions) -> io::Result<(Reactor, LoopHandle)> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let epoch = Instant::now();
        let handle = LoopHandle(Arc::new(LoopShared {
            id: NEXT_LOOP.fetch_add(1, Ordering::Relaxed),
            waker,
            inbox: Mutex::new(Vec::with_capacity(256)),
            conns: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            spare_bytes: AtomicUsize::new(0),
            epoch,
        }));
        let reactor = Reactor {
            handle: handle.clone(),
            poll,
            conns: Slab::new(),
            wheel: TimerWheel::new(epoch, TICK),
            fired: Vec::new(),
            scratch: vec![0u8; opts.read_chunk.max(4096)].into_boxed_slice(),
            spare: Vec::new(),
            events: opts.events.max(64),
            listener: None,
            generation: 0,
            stopping: None,
            again: Vec::new(),
            cmds: Vec::with_capacity(256),
            busy_poll: opts.busy_poll,
        };
        Ok((reactor, handle))
    }

    pub(crate) fn run(mut self) {
        CURRENT.with(|c| c.set(self.handle.0.id));
        let mut events = Events::with_capacity(self.events);
        // Until when to poll without sleeping, after the last busy turn.
        let mut spin_until: Option<Instant> = None;
        loop {
            let timeout = if !self.again.is_empty() {
                Some(Duration::ZERO)
            } else if spin_until.is_some_and(|until| Instant::now() < until) {
                if events.is_empty() {
                    // Nothing came in the last turn: let whatever else
                    // wants this core run before looking again.
                    std::thread::yield_now();
                }
                Some(Duration::ZERO)
            } else if !self.wheel.is_empty() || self.stopping.is_some() {
                Some(TICK)
            } else {
                None
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                warn!(error = %e, "reactor poll failed");
                break;
            }
            let now = Instant::now();
            if !events.is_empty() && !self.busy_poll.is_zero() {
                spin_until = Some(later(now, self.busy_poll));
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    LISTENER => self.accept(now),
                    Token(token) => {
                        let closed = event.is_read_closed() || event.is_error();
                        if event.is_readable() || closed {
                            self.read(token, now, closed);
                        }
                        if event.is_writable() {
                            self.flush(token);
                        }
                    }
                }
            }
            let pending = self.again.len();
            for i in 0..pending {
                let token = self.again[i];
                self.read(token, now, true);
            }
            self.again.drain(..pending);
            self.drain_inbox(now);
            self.expire(now);
            // Timer callbacks may have queued work (a send's flush) for
            // this very reactor, which no waker announces.
            self.drain_inbox(now);
            if let Some(deadline) = self.stopping {
                if self.conns.is_empty() || now >= deadline {
                    break;
                }
            }
        }
        let tokens: Vec<usize> = self.conns.iter().map(|(token, _)| token).collect();
        for token in tokens {
            self.close(token, CloseReason::Stopped);
        }
    }

    fn drain_inbox(&mut self, now: Instant) {
        loop {
            let mut cmds = std::mem::take(&mut self.cmds);
            {
                let mut inbox = self
                    .handle
                    .0
                    .inbox
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if inbox.is_empty() {
                    self.cmds = cmds;
                    return;
                }
                std::mem::swap(&mut *inbox, &mut cmds);
            }
            for cmd in cmds.drain(..) {
                self.handle_cmd(cmd, now);
            }
            self.cmds = cmds;
        }
    }

    fn live(&self, key: Key) -> bool {
        self.conns
            .get(key.token)
            .is_some_and(|c| c.generation == key.generation)
    }

    fn handle_cmd(&mut self, cmd: Cmd, now: Instant) {
        match cmd {
            Cmd::Adopt {
                stream,
                peer,
                attach,
                conn,
            } => self.adopt(stream, peer, &attach, conn, now),
            Cmd::Flush(key) if self.live(key) => {
                self.conns[key.token]
                    .shared
                    .flush_queued
                    .store(false, Ordering::Release);
                self.flush(key.token);
            }
            Cmd::Close(key) if self.live(key) => self.close_asked(key.token, now),
            Cmd::Arm(key) if self.live(key) => {
                let nanos = self.conns[key.token].shared.armed.load(Ordering::Acquire);
                if nanos != u64::MAX {
                    let deadline = self.handle.0.epoch + Duration::from_nanos(nanos);
                    self.wheel
                        .insert(deadline, (key.token, key.generation, Timer::Calls));
                }
            }
            Cmd::Flush(_) | Cmd::Close(_) | Cmd::Arm(_) => {} // for a connection gone since
            Cmd::Listen(mut listener, attach, conn) => {
                match self
                    .poll
                    .registry()
                    .register(&mut listener, LISTENER, Interest::READABLE)
                {
                    Ok(()) => self.listener = Some((listener, attach, conn)),
                    Err(e) => warn!(error = %e, "cannot listen on the reactor"),
                }
            }
            Cmd::Stop(deadline) => {
                self.stopping = Some(deadline);
                if let Some((mut listener, ..)) = self.listener.take() {
                    let _ = self.poll.registry().deregister(&mut listener);
                }
                let tokens: Vec<usize> = self.conns.iter().map(|(token, _)| token).collect();
                for token in tokens {
                    self.flush(token);
                }
            }
        }
    }

    fn accept(&mut self, now: Instant) {
        loop {
            let Some((listener, attach, conn)) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    let (attach, conn) = (attach.clone(), conn.clone());
                    self.adopt(stream, peer, &attach, conn, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!(error = %e, "accept failed");
                    return;
                }
            }
        }
    }

    fn adopt(
        &mut self,
        mut stream: TcpStream,
        peer: SocketAddr,
        attach: &Attach,
        opts: Arc<ConnOptions>,
        now: Instant,
    ) {
        if self.stopping.is_some() {
            return;
        }
        let token = self.conns.vacant_key();
        self.generation += 1;
        let key = Key {
            token,
            generation: self.generation,
        };
        if opts.nodelay {
            let _ = stream.set_nodelay(true);
        }
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, Token(token), Interest::READABLE)
        {
            warn!(%peer, error = %e, "cannot register connection");
            return;
        }
        let shared = Arc::new(ConnShared {
            key,
            reactor: self.handle.clone(),
            out: Mutex::new(Outbound::default()),
            closed: AtomicBool::new(false),
            flush_queued: AtomicBool::new(false),
            armed: AtomicU64::new(u64::MAX),
            limit: opts.send_queue_bytes.max(1),
        });
        let transport: Arc<dyn Transport> = Arc::new(EvTransport(shared.clone()));
        let Some(handler) = attach(transport, peer) else {
            shared.closed.store(true, Ordering::Release);
            let _ = self.poll.registry().deregister(&mut stream);
            return; // refused: dropping the stream closes it
        };
        let decoder = handler.framing().decoder();
        if let Some(limit) = opts.silence_limit() {
            self.wheel
                .insert(later(now, limit), (token, key.generation, Timer::Silence));
        }
        if opts.ticks() {
            self.wheel.insert(
                later(now, opts.heartbeat),
                (token, key.generation, Timer::Beat),
            );
        }
        self.handle.0.conns.fetch_add(1, Ordering::Relaxed);
        self.conns.insert(Conn {
            stream,
            peer,
            generation: key.generation,
            shared,
            handler,
            inbound: None,
            decoder,
            last_read: now,
            opts,
            writable: false,
            closing: false,
        });
    }

    /// An asked close: what is queued is flushed until the close flush
    /// deadline, then the rest is dropped (and the connection closed).
    fn close_asked(&mut self, token: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(token) else {
            return;
        };
        if conn.closing {
            return;
        }
        conn.closing = true;
        let wait = conn.opts.close_flush_timeout;
        let generation = conn.generation;
        self.flush(token); // closes at once when all is written
        if self
            .conns
            .get(token)
            .is_some_and(|c| c.generation == generation)
        {
            if wait.is_zero() {
                self.close(token, CloseReason::Local);
            } else {
                self.wheel
                    .insert(later(now, wait), (token, generation, Timer::Close));
            }
        }
    }

    /// Reads what the socket has. `to_end`: read until the socket says
    /// WouldBlock or EOF even after a short read (the peer's FIN may sit
    /// behind the data, and no new edge would announce it).
    fn read(&mut self, token: usize, now: Instant, to_end: bool) {
        let Reactor {
            conns,
            scratch,
            spare,
            again,
            handle,
            ..
        } = self;
        let Some(conn) = conns.get_mut(token) else {
            return;
        };
        let mut closing = None;
        let mut reads = 0;
        loop {
            if reads == MAX_READS {
                again.push(token);
                break;
            }
            match conn.stream.read(scratch) {
                Ok(0) => {
                    closing = Some(CloseReason::PeerClosed);
                    break;
                }
                Ok(_) if conn.closing => reads += 1, // for a closed session
                Ok(n) => {
                    reads += 1;
                    conn.last_read = now;
                    let buf = conn.inbound.get_or_insert_with(|| {
                        handle.0.held.fetch_add(1, Ordering::Relaxed);
                        take_spare(spare, handle)
                    });
                    buf.extend_from_slice(&scratch[..n]);
                    let handed = deliver(&mut conn.decoder, buf, &*conn.handler);
                    if let Err(reason) = handed {
                        closing = Some(reason);
                        break;
                    }
                    if n < scratch.len() && !to_end {
                        // A short read drained the socket: data arriving
                        // later raises a new edge, so the read that would
                        // only say WouldBlock is skipped.
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    closing = Some(CloseReason::io(e));
                    break;
                }
            }
        }
        // An idle connection holds no read buffer.
        if conn.inbound.as_ref().is_some_and(BytesMut::is_empty) {
            if let Some(buf) = conn.inbound.take() {
                handle.0.held.fetch_sub(1, Ordering::Relaxed);
                give_spare(spare, handle, buf);
            }
        }
        if let Some(closing) = closing {
            self.close(token, closing);
        }
    }

    fn flush(&mut self, token: usize) {
        let Some(conn) = self.conns.get_mut(token) else {
            return;
        };
        let result = conn.shared.out().write_to(&mut conn.stream);
        match result {
            Ok(true) => {
                if conn.writable {
                    conn.writable = false;
                    let _ = self.poll.registry().reregister(
                        &mut conn.stream,
                        Token(token),
                        Interest::READABLE,
                    );
                }
                if conn.closing {
                    self.close(token, CloseReason::Local);
                } else if self.stopping.is_some() {
                    self.close(token, CloseReason::Stopped);
                }
            }
            Ok(false) => {
                if !conn.writable {
                    conn.writable = true;
                    let both = Interest::READABLE | Interest::WRITABLE;
                    let _ = self
                        .poll
                        .registry()
                        .reregister(&mut conn.stream, Token(token), both);
                }
            }
            Err(e) => self.close(token, CloseReason::io(e)),
        }
    }

    fn close(&mut self, token: usize, closing: CloseReason) {
        let Some(mut conn) = self.conns.try_remove(token) else {
            return;
        };
        conn.shared.closed.store(true, Ordering::Release);
        conn.shared.out().clear();
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.handle.0.conns.fetch_sub(1, Ordering::Relaxed);
        log_close(&conn.peer, conn.handler.id(), &closing);
        conn.handler.closed(closing);
        if let Some(mut buf) = conn.inbound.take() {
            self.handle.0.held.fetch_sub(1, Ordering::Relaxed);
            buf.clear();
            give_spare(&mut self.spare, &self.handle, buf);
        }
    }

    fn expire(&mut self, now: Instant) {
        let mut fired = std::mem::take(&mut self.fired);
        self.wheel.expire(now, |t| fired.push(t));
        for (token, generation, timer) in fired.drain(..) {
            let Some(conn) = self.conns.get(token).filter(|c| c.generation == generation) else {
                continue;
            };
            match timer {
                Timer::Silence => {
                    let Some(limit) = conn.opts.silence_limit() else {
                        continue;
                    };
                    let quiet = now.saturating_duration_since(conn.last_read);
                    if quiet >= limit {
                        self.close(token, CloseReason::Silent(limit));
                    } else {
                        self.wheel.insert(
                            later(conn.last_read, limit),
                            (token, generation, Timer::Silence),
                        );
                    }
                }
                Timer::Beat => {
                    let _ = conn.handler.heartbeat();
                    self.wheel.insert(
                        later(now, conn.opts.heartbeat),
                        (token, generation, Timer::Beat),
                    );
                }
                Timer::Close => {
                    let left = conn.shared.out().queued();
                    debug!(
                        peer = %conn.peer,
                        dropped = left,
                        "close flush deadline passed: dropping what is queued"
                    );
                    self.close(token, CloseReason::Local);
                }
                Timer::Calls => {
                    conn.shared.armed.store(u64::MAX, Ordering::Release);
                    conn.handler.timeout(now);
                    if let Some(next) = conn.handler.next_timeout() {
                        let shared = conn.shared.clone();
                        EvTransport(shared).timer_hint(next);
                    }
                }
            }
        }
        self.fired = fired;
    }
}

/// An idle read buffer, or a new empty one.
fn take_spare(spare: &mut Vec<BytesMut>, handle: &LoopHandle) -> BytesMut {
    match spare.pop() {
        Some(buf) => {
            handle
                .0
                .spare_bytes
                .fetch_sub(buf.capacity(), Ordering::Relaxed);
            buf
        }
        None => BytesMut::new(),
    }
}

/// Keeps an emptied read buffer for reuse, up to a bound.
fn give_spare(spare: &mut Vec<BytesMut>, handle: &LoopHandle, buf: BytesMut) {
    if spare.len() < SPARE_BUFFERS {
        handle
            .0
            .spare_bytes
            .fetch_add(buf.capacity(), Ordering::Relaxed);
        spare.push(buf);
    }
}
