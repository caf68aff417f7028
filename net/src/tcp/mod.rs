//! The tokio backend: a reader task and a writer task per connection, as
//! the Go goroutine-per-connection servers do.
//!
//! The tasks (`conn`: the reader, its timers, the close order; `write`:
//! the bounded queue and the writer) are generic over the connection's
//! link, a [`Link`](link::Link): TCP (`link`), or a WebSocket (`crate::ws`,
//! which serves through [`serve_with`] and starts its connections with
//! [`start`]).

mod conn;
mod link;
#[cfg(test)]
mod tests;
pub(crate) mod tls;
mod write;

pub(crate) use conn::start;
pub(crate) use link::{ByteStream, Link};

use std::cell::Cell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, mpsc};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::Notify;
use tracing::{debug, warn};

use walle_process::CloseReason;

use crate::conn::{Attach, Handler};
use crate::options::{ConnOptions, TcpOptions, later};
use crate::server::Running;

use conn::Shut;

/// Connections of one server, to close them at stop.
#[derive(Default)]
pub(crate) struct Registry {
    state: Mutex<Conns>,
    /// Signalled whenever a connection leaves.
    left: Condvar,
    /// Open while the server accepts: held by the accept task while it
    /// sets a connection up, closed by the stop before it looks at the
    /// connections, so none registers after the stop began.
    accepting: Mutex<bool>,
}

#[derive(Default)]
struct Conns {
    live: HashMap<u64, Live>,
    next: u64,
}

/// A registered connection: its io side and its process side.
struct Live {
    conn: Arc<dyn Shut>,
    handler: Arc<dyn Handler>,
}

impl Registry {
    fn conns(&self) -> MutexGuard<'_, Conns> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn add(&self, conn: Arc<dyn Shut>, handler: Arc<dyn Handler>) -> u64 {
        let mut conns = self.conns();
        let id = conns.next;
        conns.next += 1;
        conns.live.insert(id, Live { conn, handler });
        id
    }
    /// A connection is done: its session closed, its tasks finished.
    pub(crate) fn remove(&self, id: u64) {
        self.conns().live.remove(&id);
        self.left.notify_all();
    }
    fn all(&self) -> Vec<Arc<dyn Shut>> {
        self.conns().live.values().map(|l| l.conn.clone()).collect()
    }
    fn len(&self) -> usize {
        self.conns().live.len()
    }
    /// Runs `setup` (which starts a connection) if the server still
    /// accepts, holding the gate a stop closes; `None` once it is closed.
    pub(crate) fn while_accepting<R>(&self, setup: impl FnOnce() -> R) -> Option<R> {
        let open = self.accepting.lock().unwrap_or_else(|e| e.into_inner());
        open.then(setup)
    }
    /// Waits until no connection is left, or `deadline`; true if none is.
    fn wait_empty(&self, deadline: Instant) -> bool {
        let mut conns = self.conns();
        while !conns.live.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            conns = self
                .left
                .wait_timeout(conns, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
    /// Closes what is left at once: sessions first, then sockets.
    fn close_all(&self) {
        let left: Vec<Live> = self.conns().live.drain().map(|(_, l)| l).collect();
        for live in &left {
            live.handler.closed(CloseReason::Stopped);
            live.conn.abort();
        }
        self.left.notify_all();
    }
}

pub(crate) struct TcpServer {
    local: SocketAddr,
    runtime: Mutex<Option<Runtime>>,
    runtime_id: u64,
    stop_accepting: Arc<Notify>,
    /// Disconnected when the accept task ends, and its listener with it.
    accept_done: Mutex<mpsc::Receiver<()>>,
    registry: Arc<Registry>,
    stopped: AtomicBool,
}

thread_local! {
    /// The id of the runtime whose worker this thread is; 0 elsewhere.
    static RUNTIME: Cell<u64> = const { Cell::new(0) };
}

static NEXT_RUNTIME: AtomicU64 = AtomicU64::new(1);

/// A runtime of `workers` threads (0: one per core), and its id.
fn runtime(workers: usize, name: &str) -> io::Result<(Runtime, u64)> {
    let workers = match workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let id = NEXT_RUNTIME.fetch_add(1, Ordering::Relaxed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .on_thread_start(move || RUNTIME.with(|r| r.set(id)))
        .enable_all()
        .build()?;
    Ok((runtime, id))
}

/// Sets an accepted connection up, on a worker of the server's runtime:
/// its stream, its peer, the attach of its process, its settings and the
/// server's registry, where it must register while the server accepts
/// ([`Registry::while_accepting`]).
pub(crate) type Start =
    Box<dyn Fn(TcpStream, SocketAddr, &Attach, Arc<ConnOptions>, &Arc<Registry>) + Send + Sync>;

/// Binds `addr` and serves on a runtime of its own.
pub(crate) fn serve(
    addr: SocketAddr,
    opts: &TcpOptions,
    conn: ConnOptions,
    attach: Attach,
) -> io::Result<TcpServer> {
    let start: Start = match &opts.tls {
        None => Box::new(|stream, peer, attach, conn, registry| {
            // The gate is held while the connection registers.
            registry.while_accepting(|| {
                link::start_tcp(stream, peer, attach, conn, Some(registry.clone()))
            });
        }),
        Some(tls) => {
            let config = crate::tls::server_config(tls)?;
            Box::new(move |stream, peer, attach, conn, registry| {
                registry.while_accepting(|| {
                    tls::start_server(stream, &config, peer, attach, conn, Some(registry.clone()))
                });
            })
        }
    };
    serve_with(addr, opts.workers, "walle-tcp", conn, attach, start)
}

/// Binds `addr` and serves on a runtime of `workers` threads named
/// `name`, setting each accepted connection up with `start`.
pub(crate) fn serve_with(
    addr: SocketAddr,
    workers: usize,
    name: &str,
    conn: ConnOptions,
    attach: Attach,
    start: Start,
) -> io::Result<TcpServer> {
    let (runtime, runtime_id) = runtime(workers, name)?;
    let std_listener = crate::socket::tcp_listener(addr, false)?;
    let local = std_listener.local_addr()?;
    let listener = {
        let _guard = runtime.enter();
        TcpListener::from_std(std_listener)?
    };
    let stop_accepting = Arc::new(Notify::new());
    let registry = Arc::new(Registry {
        accepting: Mutex::new(true),
        ..Registry::default()
    });
    let conn = Arc::new(conn);
    let (stop, reg) = (stop_accepting.clone(), registry.clone());
    let (done, accept_done) = mpsc::channel::<()>();
    runtime.spawn(async move {
        let _done = done; // dropped with the listener
        loop {
            // A stop wins over a connection ready at the same time.
            tokio::select! {
                biased;
                _ = stop.notified() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        if reg.while_accepting(|| ()).is_none() {
                            return; // the stop began: the connection is dropped unserved
                        }
                        start(stream, peer, &attach, conn.clone(), &reg);
                    }
                    Err(e) => {
                        debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
            }
        }
    });
    Ok(TcpServer {
        local,
        runtime: Mutex::new(Some(runtime)),
        runtime_id,
        stop_accepting,
        accept_done: Mutex::new(accept_done),
        registry,
        stopped: AtomicBool::new(false),
    })
}

impl Running for TcpServer {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn is_own_thread(&self) -> bool {
        RUNTIME.with(Cell::get) == self.runtime_id
    }

    fn io_stats(&self) -> crate::IoStats {
        crate::IoStats {
            connections: self.registry.len(),
            ..crate::IoStats::default()
        }
    }

    /// Closes the gate first (no connection registers after it), then
    /// every connection: each session closes (its callbacks run) before
    /// its socket is shut, after what it had queued is flushed. Waits for
    /// the readers and the writers, up to `drain`; what is left then is
    /// closed at once.
    fn stop(&self, drain: Duration) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        let deadline = later(Instant::now(), drain);
        *self
            .registry
            .accepting
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = false;
        self.stop_accepting.notify_one();
        for conn in self.registry.all() {
            conn.shutdown(CloseReason::Stopped);
        }
        if !self.registry.wait_empty(deadline) {
            warn!(
                left = self.registry.len(),
                "drain timeout: closing connections with unsent data"
            );
            self.registry.close_all();
        }
        // The listener closes with the accept task, which the closed gate
        // ends at its next turn, if the notification did not.
        let accept_done = self.accept_done.lock().unwrap_or_else(|e| e.into_inner());
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        if let Err(mpsc::RecvTimeoutError::Timeout) = accept_done.recv_timeout(wait) {
            warn!("the accept task did not end; the runtime's shutdown ends it");
        }
        if let Some(runtime) = self
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            if tokio::runtime::Handle::try_current().is_ok() {
                // Called from inside another runtime, which may not block.
                runtime.shutdown_background();
            } else {
                runtime.shutdown_timeout(Duration::from_millis(100));
            }
        }
    }
}

/// The runtime client connections of the tokio backend share.
pub(crate) fn client_runtime() -> &'static Runtime {
    static CLIENT: OnceLock<Runtime> = OnceLock::new();
    CLIENT.get_or_init(|| {
        runtime(2, "walle-tcp-client")
            .map(|(runtime, _)| runtime)
            .unwrap_or_else(|e| panic!("cannot start the client runtime: {e}"))
    })
}

/// Starts the tasks of a client connection the caller dialled, on the
/// current runtime (the client's: its caller's or [`client_runtime`]),
/// whose tasks then serve it.
pub(crate) fn adopt(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    attach: &Attach,
    conn: Arc<ConnOptions>,
) {
    link::start_tcp(stream, peer, attach, conn, None);
}
