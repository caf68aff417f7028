//! [`Dispatcher`]: the strategies of [`Strategy`] behind the process
//! layer's [`Dispatch`] trait.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use walle_process::{Context, Dispatch, Error, Job, Task};

use super::tasks::{NO_RUNTIME, Tasks};
use super::workers::Workers;
use super::{DEFAULT_MAX_TASKS, DispatchOptions, KeyFn, Strategy};

/// Runs requests according to a [`Strategy`]. One dispatcher serves
/// every connection of a server; worker threads exit when it is dropped
/// and their queues drain.
///
/// Under every strategy, async handlers (and work a handler starts with
/// [`Context::spawn`]) run as tokio tasks, bounded as
/// [`DispatchOptions::max_tasks`] says.
///
/// ```
/// use std::sync::Arc;
/// use walle_codec::RawCodec;
/// use walle_net::{Dispatcher, Server, Strategy};
/// use walle_process::Router;
///
/// let dispatcher = Arc::new(Dispatcher::new(Strategy::Pool(4), 1024)?);
/// let builder = Server::builder(Router::new(RawCodec)).dispatcher(dispatcher);
/// # drop(builder);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Dispatcher {
    strategy: Strategy,
    workers: Workers,
    tasks: Tasks,
    key: Option<KeyFn>,
}

/// The inline dispatcher the io layer gives processes built without one,
/// shared.
pub(crate) fn shared_inline() -> Arc<dyn Dispatch> {
    static INLINE: OnceLock<Arc<dyn Dispatch>> = OnceLock::new();
    INLINE
        .get_or_init(|| Arc::new(Dispatcher::inline()))
        .clone()
}

impl Dispatcher {
    /// Handlers run where frames are read. Async handlers run on the tokio
    /// runtime current when their request arrives, if any.
    pub fn inline() -> Self {
        Dispatcher {
            strategy: Strategy::Inline,
            workers: Workers::none(),
            tasks: Tasks::new(DEFAULT_MAX_TASKS),
            key: None,
        }
    }

    /// A dispatcher for `strategy`, with worker queues of `queue` requests
    /// each and the default bound on tokio tasks.
    pub fn new(strategy: Strategy, queue: usize) -> std::io::Result<Self> {
        Dispatcher::with_options(strategy, DispatchOptions::default().queue(queue))
    }

    /// A dispatcher for `strategy` with `options`.
    ///
    /// Tokio tasks (`Strategy::Tokio`, async handlers) go to the runtime
    /// of [`with_runtime`], else to the multi-thread runtime current here
    /// (so a dispatcher made inside one also works from io threads that
    /// have none; a current-thread runtime is not kept, as it runs tasks
    /// only while its owner polls it), else to the one current when a
    /// request arrives; with none, requests are answered with
    /// [`Error::NoRuntime`] (see [`check_runtime`]). The runtime kept must
    /// outlive the dispatcher's use: tasks sent to a runtime that has shut
    /// down never run, and their callers wait for their call timeouts.
    ///
    /// [`with_runtime`]: Dispatcher::with_runtime
    /// [`check_runtime`]: Dispatcher::check_runtime
    pub fn with_options(strategy: Strategy, options: DispatchOptions) -> std::io::Result<Self> {
        // Pool: n workers on one queue. Keyed: one queue per worker.
        let workers = match strategy {
            Strategy::Inline | Strategy::Tokio => Workers::none(),
            Strategy::Pool(n) => Workers::start(n.max(1), 1, options.queue)?,
            Strategy::Keyed(n) => Workers::start(n.max(1), n.max(1), options.queue)?,
        };
        Ok(Dispatcher {
            strategy,
            workers,
            tasks: Tasks::new(options.max_tasks).keep_current(),
            key: None,
        })
    }

    /// Async handlers (and `Strategy::Tokio`) run on `runtime`.
    pub fn with_runtime(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.tasks.runtime = Some(runtime);
        self
    }

    /// Chooses the key under `Strategy::Keyed` (default: the session id).
    pub fn with_key(mut self, key: impl Fn(&Context) -> u64 + Send + Sync + 'static) -> Self {
        self.key = Some(Arc::new(key));
        self
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Fails with [`Error::NoRuntime`] when this is a `Strategy::Tokio`
    /// dispatcher with no runtime to spawn on from this thread: every
    /// request would be refused. An io layer calls it (through
    /// [`Dispatch::check`]) when a server is built, to report the mistake
    /// once rather than per request.
    pub fn check_runtime(&self) -> Result<(), Error> {
        match (self.strategy, self.tasks.runtime()) {
            (Strategy::Tokio, None) => Err(Error::NoRuntime(NO_RUNTIME)),
            _ => Ok(()),
        }
    }

    /// Tokio tasks in flight now: requests under `Strategy::Tokio` and
    /// async handlers.
    pub fn tasks_in_flight(&self) -> usize {
        self.tasks.in_flight()
    }

    /// The worker queue of `job` under `Strategy::Keyed`.
    fn queue_of(&self, job: &Job) -> usize {
        let key = match &self.key {
            Some(key) => key(job.context()),
            None => job.session_id(),
        };
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        (hasher.finish() % self.workers.len().max(1) as u64) as usize
    }
}

impl Dispatch for Dispatcher {
    fn submit(&self, job: Job) -> Result<(), (Job, Error)> {
        match self.strategy {
            Strategy::Inline => {
                job.run();
                Ok(())
            }
            Strategy::Tokio => {
                self.tasks
                    .spawn(&self.tasks.jobs, job, |job| async move { job.run() })
            }
            Strategy::Pool(_) => self.workers.push(0, job),
            Strategy::Keyed(_) => self.workers.push(self.queue_of(&job), job),
        }
    }

    fn spawn(&self, task: Task) -> Result<(), (Task, Error)> {
        self.tasks.spawn(&self.tasks.handlers, task, |task| task)
    }

    fn check(&self) -> Result<(), Error> {
        self.check_runtime()
    }

    fn runs_inline(&self) -> bool {
        self.strategy == Strategy::Inline
    }
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("strategy", &self.strategy)
            .field("queues", &self.workers.len())
            .field("tasks_in_flight", &self.tasks.in_flight())
            .finish()
    }
}
