//! The event-loop backend, in the manner of gnet: N reactors on mio, each
//! owning a slab of sources; an acceptor spreading new connections over
//! them (or one SO_REUSEPORT listener per reactor); reads into loop
//! buffers, handlers inline or dispatched, vectored writes from a bounded
//! per-connection queue; sends from other threads through the reactor's
//! inbox and a mio `Waker`; silence, heartbeat and call timers from a
//! timer wheel in each reactor.
//!
//! The reactor (`reactor`) is one generic loop; what it polls are sources
//! behind the [`Driver`](driver::Driver) trait (`driver`, which also
//! describes the seam a UDP endpoint uses): the stream connection
//! (`stream`, generic over the byte stream), and the TCP pieces that use
//! it (`tcp`: connections over mio's `TcpStream`, the SO_REUSEPORT
//! listener; `acceptor`: the accepting thread). Other threads reach a
//! connection through its transport (`transport`).

mod acceptor;
mod driver;
mod reactor;
mod stream;
mod tcp;
#[cfg(test)]
mod tests;
mod transport;

use std::cell::Cell;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::conn::Attach;
use crate::options::{ConnOptions, EvloopOptions, later};
use crate::server::Running;

use driver::{Op, Start};

/// A source's place in a reactor: slab token plus a generation that
/// tells a reused token from the source that held it before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    pub(crate) token: usize,
    pub(crate) generation: u64,
}

/// Work for a reactor, from any thread.
pub(crate) enum Cmd {
    /// Start a new source (a connection, a listener).
    Add(Start),
    /// Work for the source at `key`, for its session `sub` (0 for a
    /// source that is one connection).
    Source { key: Key, sub: u64, op: Op },
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
    /// Connections on this reactor, counted by their drivers (listeners
    /// and other sources are not), for least-connections balancing.
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
        let first = tcp::bind(addr, true)?;
        let local = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..loops.handles().len() {
            listeners.push(tcp::bind(local, true)?);
        }
        for (listener, handle) in listeners.into_iter().zip(loops.handles()) {
            handle.send(Cmd::Add(tcp::listener(
                listener,
                attach.clone(),
                conn.clone(),
            )));
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
    client_loops().handles()[0].send(Cmd::Add(tcp::connection(stream, peer, attach, conn)));
}

impl fmt::Debug for EvServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvServer")
            .field("addr", &self.local)
            .field("loops", &self.loops.handles.len())
            .finish()
    }
}
