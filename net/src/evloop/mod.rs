//! The event-loop backend, in the manner of gnet: N reactors on mio, each
//! owning a slab of connections; an acceptor spreading new connections
//! over them (or one SO_REUSEPORT listener per reactor); reads into loop
//! buffers, handlers inline or dispatched, vectored writes from a bounded
//! per-connection queue; sends from other threads through the reactor's
//! inbox and a mio `Waker`; silence, heartbeat and call timers from a
//! timer wheel in each reactor.

mod acceptor;
mod reactor;

use std::cell::Cell;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use walle_packet::PacketError;
use walle_process::{Error, Transport};

use crate::conn::Attach;
use crate::options::{ConnOptions, EvloopOptions, later};
use crate::server::Running;

pub(crate) use crate::outbound::Outbound;

/// A connection's place in a reactor: slab token plus a generation that
/// tells a reused token from the connection that held it before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    pub(crate) token: usize,
    pub(crate) generation: u64,
}

/// Work for a reactor, from any thread.
pub(crate) enum Cmd {
    /// Take over a connected socket.
    Adopt {
        stream: mio::net::TcpStream,
        peer: SocketAddr,
        attach: Attach,
        conn: Arc<ConnOptions>,
    },
    /// Write what a connection has queued.
    Flush(Key),
    /// Close a connection, after flushing what it queued until the close
    /// flush deadline.
    Close(Key),
    /// A call deadline was set on a connection.
    Arm(Key),
    /// Accept on this listener (SO_REUSEPORT mode).
    Listen(mio::net::TcpListener, Attach, Arc<ConnOptions>),
    /// Stop: flush until the deadline, close everything, exit.
    Stop(Instant),
}

thread_local! {
    /// Id + 1 of the reactor running on this thread; 0 elsewhere.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

static NEXT_LOOP: AtomicUsize = AtomicUsize::new(1);

pub(crate) struct LoopShared {
    id: usize,
    waker: mio::Waker,
    inbox: Mutex<Vec<Cmd>>,
    /// Connections on this reactor (for least-connections balancing).
    conns: AtomicUsize,
    /// Read buffers held by connections (a partial frame each).
    held: AtomicUsize,
    /// Capacity of the idle read buffers kept for reuse, in bytes.
    spare_bytes: AtomicUsize,
    /// The reactor's time origin, for deadlines kept in atomics.
    epoch: Instant,
}

/// A handle to a reactor.
#[derive(Clone)]
pub(crate) struct LoopHandle(Arc<LoopShared>);

impl LoopHandle {
    /// Queues `cmd`; wakes the reactor unless called from its own thread
    /// (which drains its inbox before it sleeps again).
    pub(crate) fn send(&self, cmd: Cmd) {
        self.0
            .inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(cmd);
        if CURRENT.with(Cell::get) != self.0.id {
            let _ = self.0.waker.wake();
        }
    }

    pub(crate) fn conns(&self) -> usize {
        self.0.conns.load(Ordering::Relaxed)
    }
}

/// State of one connection shared with the threads that send on it.
pub(crate) struct ConnShared {
    key: Key,
    reactor: LoopHandle,
    out: Mutex<Outbound>,
    closed: AtomicBool,
    flush_queued: AtomicBool,
    /// Earliest call deadline handed to the reactor, in nanoseconds since
    /// its epoch; `u64::MAX` for none.
    armed: AtomicU64,
    limit: usize,
}

impl ConnShared {
    fn out(&self) -> MutexGuard<'_, Outbound> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn schedule_flush(&self) {
        // Most sends find a flush already queued: a load spares them the
        // read-modify-write.
        if !self.flush_queued.load(Ordering::Acquire)
            && !self.flush_queued.swap(true, Ordering::AcqRel)
        {
            self.reactor.send(Cmd::Flush(self.key));
        }
    }
}

/// The [`Transport`] of an event-loop connection.
pub(crate) struct EvTransport(pub(crate) Arc<ConnShared>);

impl EvTransport {
    /// Adds to the outbound queue under its bound, then has it flushed.
    fn enqueue(&self, add: impl FnOnce(&mut Outbound) -> Result<(), Error>) -> Result<(), Error> {
        let conn = &self.0;
        if conn.closed.load(Ordering::Acquire) {
            return Err(Error::SessionClosed);
        }
        {
            let mut out = conn.out();
            if out.queued() >= conn.limit {
                return Err(Error::Overloaded("send queue full"));
            }
            add(&mut out)?;
        }
        conn.schedule_flush();
        Ok(())
    }
}

impl Transport for EvTransport {
    fn send(
        &self,
        write: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), PacketError>,
    ) -> Result<(), Error> {
        self.enqueue(|out| Ok(out.encode(write)?))
    }

    fn send_frame(&self, frame: &Bytes) -> Result<(), Error> {
        self.enqueue(|out| {
            out.push_shared(frame.clone());
            Ok(())
        })
    }

    fn timer_hint(&self, deadline: Instant) {
        let conn = &self.0;
        let since = deadline.saturating_duration_since(conn.reactor.0.epoch);
        let nanos = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX - 1);
        let mut current = conn.armed.load(Ordering::Acquire);
        while nanos < current {
            match conn
                .armed
                .compare_exchange(current, nanos, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return conn.reactor.send(Cmd::Arm(conn.key)),
                Err(now) => current = now,
            }
        }
    }

    fn close(&self) {
        if !self.0.closed.swap(true, Ordering::AcqRel) {
            self.0.reactor.send(Cmd::Close(self.0.key));
        }
    }
}

/// A group of running reactors.
pub(crate) struct Loops {
    handles: Vec<LoopHandle>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Loops {
    /// Starts `n` reactors.
    pub(crate) fn start(n: usize, opts: &EvloopOptions, name: &str) -> io::Result<Loops> {
        let mut handles = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n.max(1) {
            let (reactor, handle) = reactor::Reactor::new(opts)?;
            handles.push(handle);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || reactor.run())?,
            );
        }
        Ok(Loops {
            handles,
            threads: Mutex::new(threads),
        })
    }

    pub(crate) fn handles(&self) -> &[LoopHandle] {
        &self.handles
    }

    /// Counters summed over the reactors.
    pub(crate) fn stats(&self) -> crate::IoStats {
        let mut stats = crate::IoStats::default();
        for h in &self.handles {
            stats.connections += h.0.conns.load(Ordering::Relaxed);
            stats.read_buffers_held += h.0.held.load(Ordering::Relaxed);
            stats.spare_read_bytes += h.0.spare_bytes.load(Ordering::Relaxed);
        }
        stats
    }

    /// True on one of these reactors' threads.
    pub(crate) fn is_own_thread(&self) -> bool {
        let current = CURRENT.with(Cell::get);
        self.handles.iter().any(|h| h.0.id == current)
    }

    /// Asks every reactor to stop by `deadline` and waits for them.
    pub(crate) fn stop(&self, deadline: Instant) {
        for handle in &self.handles {
            handle.send(Cmd::Stop(deadline));
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// A running event-loop server.
pub(crate) struct EvServer {
    local: SocketAddr,
    loops: Loops,
    acceptor: Option<acceptor::Acceptor>,
    stopped: AtomicBool,
}

/// Binds `addr` and starts the reactors and the acceptor.
pub(crate) fn serve(
    addr: SocketAddr,
    opts: &EvloopOptions,
    conn: ConnOptions,
    attach: Attach,
) -> io::Result<EvServer> {
    let loops = Loops::start(opts.loop_count(), opts, "walle-evloop")?;
    let conn = Arc::new(conn);
    if opts.reuse_port {
        let first = acceptor::reuse_port_listener(addr)?;
        let local = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..loops.handles().len() {
            listeners.push(acceptor::reuse_port_listener(local)?);
        }
        for (listener, handle) in listeners.into_iter().zip(loops.handles()) {
            handle.send(Cmd::Listen(listener, attach.clone(), conn.clone()));
        }
        return Ok(EvServer {
            local,
            loops,
            acceptor: None,
            stopped: AtomicBool::new(false),
        });
    }
    let acceptor =
        acceptor::Acceptor::start(addr, opts.balance, loops.handles().to_vec(), attach, conn)?;
    Ok(EvServer {
        local: acceptor.local_addr(),
        loops,
        acceptor: Some(acceptor),
        stopped: AtomicBool::new(false),
    })
}

impl Running for EvServer {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn is_own_thread(&self) -> bool {
        self.loops.is_own_thread()
    }

    fn io_stats(&self) -> crate::IoStats {
        self.loops.stats()
    }

    fn stop(&self, drain: Duration) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(acceptor) = &self.acceptor {
            acceptor.stop();
        }
        self.loops.stop(later(Instant::now(), drain));
    }
}

/// The reactors that client connections of the event-loop backend share.
pub(crate) fn client_loops() -> &'static Loops {
    static CLIENT: OnceLock<Loops> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let opts = EvloopOptions::default().loops(1);
        Loops::start(1, &opts, "walle-evloop-client")
            .unwrap_or_else(|e| panic!("cannot start the client event loop: {e}"))
    })
}

/// Hands a client connection the caller dialled (non-blocking) to a
/// client reactor.
pub(crate) fn adopt(
    stream: std::net::TcpStream,
    peer: SocketAddr,
    attach: Attach,
    conn: Arc<ConnOptions>,
) {
    let stream = mio::net::TcpStream::from_std(stream);
    client_loops().handles()[0].send(Cmd::Adopt {
        stream,
        peer,
        attach,
        conn,
    });
}

impl fmt::Debug for EvServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvServer")
            .field("addr", &self.local)
            .field("loops", &self.loops.handles.len())
            .finish()
    }
}
