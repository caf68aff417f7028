//! Where handlers run: the [`Dispatch`] seam and the one strategy that
//! needs no executor, [`Inline`].
//!
//! Strategies that own threads or a runtime (a worker pool, per-key
//! workers, tokio tasks) live in the io layer (`walle_net::Dispatcher`),
//! so that this crate stays a state machine with no executor.

use crate::context::{Job, Task};
use crate::error::Error;

/// What a [`NoRuntime`](Error::NoRuntime) error of a dispatcher without an
/// executor says.
const NO_EXECUTOR: &str = "async handlers need a dispatcher with an executor: \
     give the process one (walle_net::Dispatcher runs them on tokio), or make \
     the handler sync";

/// Where a process's handlers run: one dispatcher serves every connection
/// of a server, so it must be shared across threads.
///
/// [`submit`](Dispatch::submit) gets each request as a [`Job`] and runs
/// it ([`Job::run`]), now or later, here or on another thread; or refuses
/// it, giving it back with the reason, and the request is then answered
/// with that error's code (code 10 for [`Error::Overloaded`]) and counted
/// as rejected. [`spawn`](Dispatch::spawn) does the same for the
/// [`Task`] of an async handler, which needs an executor to be polled on.
///
/// A dispatcher that queues jobs and runs them later, on the thread that
/// asks for them:
///
/// ```
/// use std::sync::Mutex;
/// use walle_process::{Dispatch, Error, Job};
///
/// #[derive(Debug, Default)]
/// struct Later(Mutex<Vec<Job>>);
///
/// impl Dispatch for Later {
///     fn submit(&self, job: Job) -> Result<(), (Job, Error)> {
///         let mut queue = self.0.lock().unwrap();
///         if queue.len() >= 1024 {
///             return Err((job, Error::Overloaded("queue full")));
///         }
///         queue.push(job);
///         Ok(())
///     }
/// }
///
/// impl Later {
///     fn run_queued(&self) {
///         let jobs = std::mem::take(&mut *self.0.lock().unwrap());
///         jobs.into_iter().for_each(Job::run);
///     }
/// }
/// ```
pub trait Dispatch: Send + Sync + 'static {
    /// Runs or queues `job`; gives it back with the reason when it cannot
    /// take it (a full queue, stopped workers).
    // The error path is a refusal, cold: the job travels back by value.
    #[allow(clippy::result_large_err)]
    fn submit(&self, job: Job) -> Result<(), (Job, Error)>;

    /// Polls `task` (an async handler, or work a handler spawned) to
    /// completion on an executor; gives it back with the reason when it
    /// cannot. By default there is no executor: [`Error::NoRuntime`].
    #[allow(clippy::result_large_err)]
    fn spawn(&self, task: Task) -> Result<(), (Task, Error)> {
        Err((task, Error::NoRuntime(NO_EXECUTOR)))
    }

    /// Fails when this dispatcher cannot work at all from a thread with no
    /// runtime (an event loop's), so that an io layer can report the
    /// mistake when a server is built rather than once per request.
    fn check(&self) -> Result<(), Error> {
        Ok(())
    }

    /// True when [`submit`](Dispatch::submit) does nothing but run each
    /// job at once on the calling thread, as [`Inline`] does. A process
    /// then runs its requests itself and never calls `submit`: no job is
    /// made or moved, and the request skips a call through the trait
    /// object. Read once, when the process is built. By default false.
    fn runs_inline(&self) -> bool {
        false
    }
}

/// Runs each request on the thread that handed the process its frame (an
/// io thread): no hop, no queue. Handlers must not block. Async handlers
/// are refused with [`Error::NoRuntime`]: there is no executor here.
///
/// The default of a [`Process`](crate::Process); the io layer's
/// `walle_net::Dispatcher::inline()` also runs async handlers, on tokio.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inline;

impl Dispatch for Inline {
    fn submit(&self, job: Job) -> Result<(), (Job, Error)> {
        job.run();
        Ok(())
    }

    fn runs_inline(&self) -> bool {
        true
    }
}
