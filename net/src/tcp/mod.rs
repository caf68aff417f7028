//! The tokio backend: a reader task and a writer task per connection, as
//! the Go goroutine-per-connection servers do.

mod conn;

use std::cell::Cell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::Notify;
use tracing::{debug, warn};

use crate::conn::Attach;
use crate::options::{ConnOptions, TcpOptions};
use crate::server::Running;

pub(crate) use conn::TcpConn;

/// Connections of one server, to close them at stop.
#[derive(Default)]
pub(crate) struct Registry {
    conns: Mutex<HashMap<u64, Arc<TcpConn>>>,
    next: AtomicU64,
}

impl Registry {
    fn add(&self, conn: Arc<TcpConn>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, conn);
        id
    }
    pub(crate) fn remove(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
    fn all(&self) -> Vec<Arc<TcpConn>> {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
    fn len(&self) -> usize {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

pub(crate) struct TcpServer {
    local: SocketAddr,
    runtime: Mutex<Option<Runtime>>,
    runtime_id: u64,
    stop_accepting: Arc<Notify>,
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

/// Binds `addr` and serves on a runtime of its own.
pub(crate) fn serve(
    addr: SocketAddr,
    opts: &TcpOptions,
    conn: ConnOptions,
    attach: Attach,
) -> io::Result<TcpServer> {
    let (runtime, runtime_id) = runtime(opts.workers, "walle-tcp")?;
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let local = std_listener.local_addr()?;
    let listener = {
        let _guard = runtime.enter();
        TcpListener::from_std(std_listener)?
    };
    let stop_accepting = Arc::new(Notify::new());
    let registry = Arc::new(Registry::default());
    let conn = Arc::new(conn);
    let (stop, reg) = (stop_accepting.clone(), registry.clone());
    runtime.spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => conn::start(stream, peer, &attach, conn.clone(), Some(reg.clone())),
                    Err(e) => {
                        debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                _ = stop.notified() => return,
            }
        }
    });
    Ok(TcpServer {
        local,
        runtime: Mutex::new(Some(runtime)),
        runtime_id,
        stop_accepting,
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

    fn stop(&self, drain: Duration) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        self.stop_accepting.notify_one();
        let deadline = Instant::now() + drain;
        for conn in self.registry.all() {
            conn.shutdown();
        }
        while self.registry.len() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        if self.registry.len() > 0 {
            warn!(
                left = self.registry.len(),
                "drain timeout: closing connections with unsent data"
            );
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

/// Starts the tasks of a client connection the caller dialled. Must run
/// inside [`client_runtime`], whose tasks then serve it.
pub(crate) fn adopt(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    attach: &Attach,
    conn: Arc<ConnOptions>,
) {
    conn::start(stream, peer, attach, conn, None);
}
