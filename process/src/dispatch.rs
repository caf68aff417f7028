//! Where handlers run: dispatch strategies and the load limit.

use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use crossbeam_channel::{Sender, TrySendError, bounded};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::core::run_request;
use crate::router::Table;
use crate::{Context, Error};

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
    /// As tasks on a tokio runtime, at most
    /// [`max_tasks`](DispatchOptions::max_tasks) at once.
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
    /// Tokio tasks in flight for `Dispatch::Tokio` requests, and for async
    /// handlers: counted apart, so that a request's task never waits for
    /// a place its own handler needs.
    tasks: Arc<LoadLimit>,
    handlers: Arc<LoadLimit>,
}

/// Default room of each worker queue.
pub const DEFAULT_QUEUE: usize = 4096;

/// Default bound on the tokio tasks a dispatcher has in flight.
pub const DEFAULT_MAX_TASKS: usize = 65_536;

/// What a [`NoRuntime`](Error::NoRuntime) error says.
pub(crate) const NO_RUNTIME: &str = "Dispatch::Tokio and async handlers need a tokio runtime: \
     create the dispatcher inside one, give it one with Dispatcher::with_runtime, \
     or run the io layer inside one";

/// Settings of a [`Dispatcher`]. Loadable from a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct DispatchOptions {
    /// Room of each worker queue (`Pool`, `Keyed`), in requests. Default
    /// [`DEFAULT_QUEUE`].
    pub queue: usize,
    /// Most tokio tasks in flight at once for requests under
    /// `Dispatch::Tokio`, and as many again for async handlers under any
    /// strategy (counted apart, so that a request's task never holds the
    /// place its handler needs). A request over it is answered with code
    /// 10 (overloaded), as a full queue is. 0 means no bound (not advised:
    /// a flood of requests then grows memory without end). Default
    /// [`DEFAULT_MAX_TASKS`].
    pub max_tasks: usize,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        DispatchOptions {
            queue: DEFAULT_QUEUE,
            max_tasks: DEFAULT_MAX_TASKS,
        }
    }
}

impl DispatchOptions {
    /// Sets the room of each worker queue.
    pub fn queue(mut self, requests: usize) -> Self {
        self.queue = requests;
        self
    }
    /// Sets the bound on tokio tasks in flight.
    pub fn max_tasks(mut self, tasks: usize) -> Self {
        self.max_tasks = tasks;
        self
    }
}

impl Dispatcher {
    /// Handlers run where frames are read. Async handlers run on the tokio
    /// runtime current when their request arrives, if any.
    pub fn inline() -> Self {
        Dispatcher {
            kind: Dispatch::Inline,
            queues: Vec::new(),
            runtime: None,
            key: None,
            tasks: LoadLimit::new(DEFAULT_MAX_TASKS),
            handlers: LoadLimit::new(DEFAULT_MAX_TASKS),
        }
    }

    /// A dispatcher for `kind`, with worker queues of `queue` requests each
    /// and the default bound on tokio tasks.
    pub fn new(kind: Dispatch, queue: usize) -> std::io::Result<Self> {
        Dispatcher::with_options(kind, DispatchOptions::default().queue(queue))
    }

    /// A dispatcher for `kind` with `options`.
    ///
    /// Tokio tasks (`Dispatch::Tokio`, async handlers) go to the runtime of
    /// [`with_runtime`], else to the multi-thread runtime current here (so a
    /// dispatcher made inside one also works from io threads that have
    /// none; a current-thread runtime is not kept, as it runs tasks only
    /// while its owner polls it), else to the one current when a request
    /// arrives; with none, requests are answered with [`Error::NoRuntime`]
    /// (see [`check_runtime`]). The runtime kept must outlive the
    /// dispatcher's use: tasks sent to a runtime that has shut down never
    /// run, and their callers wait for their call timeouts.
    ///
    /// [`with_runtime`]: Dispatcher::with_runtime
    /// [`check_runtime`]: Dispatcher::check_runtime
    pub fn with_options(kind: Dispatch, options: DispatchOptions) -> std::io::Result<Self> {
        let queue = options.queue;
        let mut dispatcher = Dispatcher {
            kind,
            // A current-thread runtime runs tasks only while its owner
            // polls it: tasks sent to it from io threads could wait
            // forever, so only a multi-thread runtime is kept.
            runtime: tokio::runtime::Handle::try_current()
                .ok()
                .filter(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread),
            tasks: LoadLimit::new(options.max_tasks),
            handlers: LoadLimit::new(options.max_tasks),
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

    /// Fails with [`Error::NoRuntime`] when this is a `Dispatch::Tokio`
    /// dispatcher with no runtime to spawn on from this thread: every
    /// request would be refused. An io layer calls it when a server is
    /// built, to report the mistake once rather than per request.
    pub fn check_runtime(&self) -> Result<(), Error> {
        match (self.kind, self.runtime()) {
            (Dispatch::Tokio, None) => Err(Error::NoRuntime(NO_RUNTIME)),
            _ => Ok(()),
        }
    }

    /// Tokio tasks in flight now: requests under `Dispatch::Tokio` and
    /// async handlers.
    pub fn tasks_in_flight(&self) -> usize {
        self.tasks.current() + self.handlers.current()
    }

    /// Spawns the async handler `make` returns as a tokio task, within the
    /// bound on handlers in flight. `make` is not called when this fails.
    pub(crate) fn spawn_handler<F>(&self, make: impl FnOnce() -> F) -> Result<(), Error>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn_within(&self.handlers, make)
    }

    /// Spawns the future `make` returns as a tokio task holding a place in
    /// `limit`. `make` is not called when this fails.
    fn spawn_within<F>(&self, limit: &Arc<LoadLimit>, make: impl FnOnce() -> F) -> Result<(), Error>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let runtime = self.runtime().ok_or(Error::NoRuntime(NO_RUNTIME))?;
        let Some(task) = limit.try_acquire() else {
            warn!(limit = limit.max, "tokio tasks in flight at their bound");
            return Err(Error::Overloaded("too many tokio tasks in flight"));
        };
        let future = make();
        runtime.spawn(async move {
            let _task = task;
            future.await
        });
        Ok(())
    }

    /// Runs or queues `ctx`; a full queue, the task bound or a missing
    /// runtime gives it back with the reason.
    // The error path is a refusal, cold: the context travels back by value.
    #[allow(clippy::result_large_err)]
    pub(crate) fn submit(&self, mut ctx: Context, table: &Table) -> Result<(), (Context, Error)> {
        let queue = match self.kind {
            Dispatch::Inline => {
                run_request(&mut ctx, table);
                return Ok(());
            }
            Dispatch::Tokio => {
                let mut slot = Some(ctx);
                let spawned = self.spawn_within(&self.tasks, || {
                    let mut ctx = slot.take();
                    async move {
                        if let Some(ctx) = &mut ctx {
                            let core = ctx.core().clone();
                            run_request(ctx, &core.table);
                        }
                    }
                });
                return match (spawned, slot) {
                    (Err(error), Some(ctx)) => Err((ctx, error)),
                    _ => Ok(()),
                };
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
                Err((ctx, Error::Overloaded("dispatch queue full")))
            }
            Err(TrySendError::Disconnected(ctx)) => {
                Err((ctx, Error::Overloaded("dispatch workers have stopped")))
            }
        }
    }
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("kind", &self.kind)
            .field("queues", &self.queues.len())
            .field("tasks_in_flight", &self.tasks.current())
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
