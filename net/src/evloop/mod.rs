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
//! (`stream`, generic over the byte stream) and the drivers of each
//! transport. Other threads reach a connection through its transport
//! (`transport`).
//!
//! Everything TCP lives in `tcp/`: the connection constructor, the
//! SO_REUSEPORT listener driver, the acceptor thread, socket setup, and
//! [`serve`] and [`adopt`]; no other module here names a TCP type.

mod driver;
pub(crate) mod kcp;
mod reactor;
mod stream;
mod tcp;
#[cfg(test)]
mod tests;
mod tls;
mod transport;

use std::cell::Cell;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::options::{EvloopOptions, later};
use crate::server::Running;

use driver::{Op, Start};
pub(crate) use tcp::{Tls, adopt, serve};

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
    /// Set by the reactor before a poll that may block, cleared when it
    /// returns: only then does a command need the waker (a write to an
    /// eventfd). A reactor that polls without blocking (busy polling, or
    /// with work left) drains the inbox every turn anyway.
    asleep: AtomicBool,
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
            // Pairs with the fence in `LoopShared::going_to_sleep`: either
            // the reactor sees this command before it sleeps, or this sees
            // it asleep (or about to be) and wakes it.
            std::sync::atomic::fence(Ordering::SeqCst);
            if self.0.asleep.swap(false, Ordering::AcqRel) {
                let _ = self.0.waker.wake();
            }
        }
    }

    pub(crate) fn conns(&self) -> usize {
        self.0.conns.load(Ordering::Relaxed)
    }
}

impl LoopShared {
    /// Before a poll that may block: marks the reactor asleep, then tells
    /// whether it must not sleep after all (commands came in meanwhile).
    fn going_to_sleep(&self) -> bool {
        self.asleep.store(true, Ordering::Release);
        std::sync::atomic::fence(Ordering::SeqCst);
        let waiting = !self
            .inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if waiting {
            self.asleep.store(false, Ordering::Release);
        }
        waiting
    }

    /// After the poll: awake, commands need no waker.
    fn woke(&self) {
        self.asleep.store(false, Ordering::Release);
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

/// What feeds a server's loops from outside them (an acceptor thread);
/// stopped before the loops are.
pub(crate) trait Feed: Send + Sync {
    /// Stops feeding the loops and returns once it has.
    fn stop(&self);
}

/// A running event-loop server.
pub(crate) struct EvServer {
    local: SocketAddr,
    loops: Loops,
    feed: Option<Box<dyn Feed>>,
    stopped: AtomicBool,
}

impl EvServer {
    /// A server at `local` over `loops`, fed by `feed` if its listeners
    /// are not sources of the loops themselves.
    pub(crate) fn new(local: SocketAddr, loops: Loops, feed: Option<Box<dyn Feed>>) -> EvServer {
        EvServer {
            local,
            loops,
            feed,
            stopped: AtomicBool::new(false),
        }
    }
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
        if let Some(feed) = &self.feed {
            feed.stop();
        }
        self.loops.stop(later(Instant::now(), drain));
    }
}

/// The reactors that client connections of the event-loop backends
/// share: one per core, started at the first client connection.
pub(crate) fn client_loops() -> &'static Loops {
    static CLIENT: OnceLock<Loops> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let opts = EvloopOptions::default(); // loops: one per core
        Loops::start(opts.loop_count(), &opts, "walle-evloop-client")
            .unwrap_or_else(|e| panic!("cannot start the client event loop: {e}"))
    })
}

/// The client reactor the next client connection goes to: the first
/// `spread` of them (the backend options' loop count, at least one, at
/// most all) take connections in turn.
pub(crate) fn next_client_loop(spread: usize) -> &'static LoopHandle {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let handles = client_loops().handles();
    let spread = spread.clamp(1, handles.len());
    &handles[NEXT.fetch_add(1, Ordering::Relaxed) % spread]
}

impl fmt::Debug for EvServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvServer")
            .field("addr", &self.local)
            .field("loops", &self.loops.handles.len())
            .finish()
    }
}
