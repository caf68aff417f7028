//! Tokio tasks within a bound: requests under `Strategy::Tokio`, and async
//! handlers under every strategy.

use std::future::Future;
use std::sync::Arc;

use tokio::runtime::{Handle, RuntimeFlavor};
use tracing::warn;
use walle_process::{Error, LoadLimit};

/// What a [`NoRuntime`](Error::NoRuntime) error of a [`Dispatcher`] says.
///
/// [`Dispatcher`]: super::Dispatcher
pub(super) const NO_RUNTIME: &str = "Strategy::Tokio and async handlers need a tokio runtime: \
     create the dispatcher inside one, give it one with Dispatcher::with_runtime, \
     or run the io layer inside one";

/// Where a dispatcher's tokio tasks go, and how many may be in flight.
pub(super) struct Tasks {
    /// The runtime kept, if any; else the one current at each spawn.
    pub(super) runtime: Option<Handle>,
    /// Tasks of requests under `Strategy::Tokio`, and of async handlers:
    /// counted apart, so that a request's task never waits for a place
    /// its own handler needs.
    pub(super) jobs: Arc<LoadLimit>,
    pub(super) handlers: Arc<LoadLimit>,
}

impl Tasks {
    /// Tasks on no kept runtime, at most `max` of each kind at once.
    pub(super) fn new(max: usize) -> Self {
        Tasks {
            runtime: None,
            jobs: LoadLimit::new(max),
            handlers: LoadLimit::new(max),
        }
    }

    /// Keeps the runtime current here if it is a multi-thread one. A
    /// current-thread runtime runs tasks only while its owner polls it:
    /// tasks sent to it from io threads could wait forever.
    pub(super) fn keep_current(mut self) -> Self {
        self.runtime = Handle::try_current()
            .ok()
            .filter(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
        self
    }

    /// The runtime tasks go to from this thread, if any.
    pub(super) fn runtime(&self) -> Option<Handle> {
        self.runtime.clone().or_else(|| Handle::try_current().ok())
    }

    /// Tasks in flight now.
    pub(super) fn in_flight(&self) -> usize {
        self.jobs.current() + self.handlers.current()
    }

    /// Spawns `run(item)` as a tokio task holding a place in `limit`.
    /// Without a runtime or a place, `item` comes back with the reason and
    /// `run` is not called.
    pub(super) fn spawn<T, F>(
        &self,
        limit: &Arc<LoadLimit>,
        item: T,
        run: impl FnOnce(T) -> F,
    ) -> Result<(), (T, Error)>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Some(runtime) = self.runtime() else {
            return Err((item, Error::NoRuntime(NO_RUNTIME)));
        };
        let Some(place) = limit.try_acquire() else {
            warn!(limit = limit.max(), "tokio tasks in flight at their bound");
            return Err((item, Error::Overloaded("too many tokio tasks in flight")));
        };
        let future = run(item);
        runtime.spawn(async move {
            let _place = place;
            future.await
        });
        Ok(())
    }
}
