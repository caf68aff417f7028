//! Where handlers run: dispatch strategies and the load limit.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crossbeam_channel::{Sender, TrySendError, bounded};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::Context;
use crate::core::run_request;
use crate::router::Table;

/// The dispatch strategy of a server: where handlers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "workers")]
pub enum Dispatch {
    /// On the io thread that read the frame: no hop, no queue. Handlers
    /// must not block.
    #[default]
    Inline,
    /// On a pool of `n` worker threads sharing one bounded queue.
    Pool(usize),
    /// On `n` worker threads, each request on the worker its key (the
    /// session id by default) maps to: per-key order, the game-logic model.
    Keyed(usize),
    /// As tasks on a tokio runtime.
    Tokio,
}

/// Chooses the key of a request under [`Dispatch::Keyed`].
pub type KeyFn = Arc<dyn Fn(&Context) -> u64 + Send + Sync>;

/// Runs requests according to a [`Dispatch`] strategy. One dispatcher
/// serves every connection of a server; worker threads exit when it is
/// dropped and their queues drain.
pub struct Dispatcher {
    kind: Dispatch,
    queues: Vec<Sender<Context>>,
    runtime: Option<tokio::runtime::Handle>,
    key: Option<KeyFn>,
}

/// Default room of each worker queue.
pub const DEFAULT_QUEUE: usize = 4096;

impl Dispatcher {
    /// Handlers run where frames are read.
    pub fn inline() -> Self {
        Dispatcher {
            kind: Dispatch::Inline,
            queues: Vec::new(),
            runtime: None,
            key: None,
        }
    }

    /// A dispatcher for `kind`, with worker queues of `queue` requests each.
    /// `Dispatch::Tokio` uses the runtime of [`with_runtime`], or the one
    /// current when requests arrive.
    ///
    /// [`with_runtime`]: Dispatcher::with_runtime
    pub fn new(kind: Dispatch, queue: usize) -> std::io::Result<Self> {
        let mut dispatcher = Dispatcher {
            kind,
            ..Dispatcher::inline()
        };
        // Pool: n workers on one queue. Keyed: one queue per worker.
        let (workers, queues) = match kind {
            Dispatch::Inline | Dispatch::Tokio => (0, 0),
            Dispatch::Pool(n) => (n.max(1), 1),
            Dispatch::Keyed(n) => (n.max(1), n.max(1)),
        };
        let receivers: Vec<_> = (0..queues)
            .map(|_| {
                let (tx, rx) = bounded::<Context>(queue.max(1));
                dispatcher.queues.push(tx);
                rx
            })
            .collect();
        for i in 0..workers {
            let rx = receivers[i % queues].clone();
            thread::Builder::new()
                .name(format!("walle-worker-{i}"))
                .spawn(move || {
                    for mut ctx in rx {
                        let core = ctx.core().clone();
                        run_request(&mut ctx, &core.table);
                    }
                })?;
        }
        Ok(dispatcher)
    }

    /// Async handlers (and `Dispatch::Tokio`) run on `runtime`.
    pub fn with_runtime(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Chooses the key under `Dispatch::Keyed` (default: the session id).
    pub fn with_key(mut self, key: impl Fn(&Context) -> u64 + Send + Sync + 'static) -> Self {
        self.key = Some(Arc::new(key));
        self
    }

    /// The strategy.
    pub fn kind(&self) -> Dispatch {
        self.kind
    }

    pub(crate) fn runtime(&self) -> Option<tokio::runtime::Handle> {
        self.runtime
            .clone()
            .or_else(|| tokio::runtime::Handle::try_current().ok())
    }

    /// Runs or queues `ctx`; a full queue (or a missing runtime) gives it
    /// back.
    pub(crate) fn submit(&self, mut ctx: Context, table: &Table) -> Result<(), Context> {
        let queue = match self.kind {
            Dispatch::Inline => {
                run_request(&mut ctx, table);
                return Ok(());
            }
            Dispatch::Tokio => {
                let Some(runtime) = self.runtime() else {
                    return Err(ctx);
                };
                runtime.spawn(async move {
                    let mut ctx = ctx;
                    let core = ctx.core().clone();
                    run_request(&mut ctx, &core.table);
                });
                return Ok(());
            }
            Dispatch::Pool(_) => &self.queues[0],
            Dispatch::Keyed(_) => {
                let key = match &self.key {
                    Some(key) => key(&ctx),
                    None => ctx.session().id(),
                };
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                key.hash(&mut hasher);
                &self.queues[(hasher.finish() % self.queues.len() as u64) as usize]
            }
        };
        match queue.try_send(ctx) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(ctx)) => {
                warn!("dispatch queue full");
                Err(ctx)
            }
            Err(TrySendError::Disconnected(ctx)) => Err(ctx),
        }
    }
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("kind", &self.kind)
            .field("queues", &self.queues.len())
            .finish()
    }
}

/// A bound on requests in flight, shared by the connections of a server.
/// `0` means no bound.
#[derive(Debug, Default)]
pub struct LoadLimit {
    current: AtomicUsize,
    max: usize,
}

impl LoadLimit {
    /// A limit of `max` requests in flight (0: unlimited).
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(LoadLimit {
            current: AtomicUsize::new(0),
            max,
        })
    }

    /// Requests in flight now.
    pub fn current(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    /// Takes a place, or `None` when the limit is reached. Racing callers
    /// cannot exceed it: the count rises first and falls back on refusal.
    pub fn try_acquire(self: &Arc<Self>) -> Option<LoadGuard> {
        let before = self.current.fetch_add(1, Ordering::AcqRel);
        if self.max != 0 && before >= self.max {
            self.current.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(LoadGuard(self.clone()))
    }
}

/// A place in a [`LoadLimit`], given back on drop.
#[derive(Debug)]
pub struct LoadGuard(Arc<LoadLimit>);

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, Ordering::AcqRel);
    }
}
