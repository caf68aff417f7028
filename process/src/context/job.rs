//! A request on its way to an executor: a [`Job`] to run its route's
//! chain, a [`Task`] to run an async handler.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use super::Context;

/// A boxed future of an async handler or of work a handler spawned.
pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A request ready to run: a decoded packet with its route still to find,
/// handed to [`Dispatch::submit`](crate::Dispatch::submit).
///
/// [`run`](Job::run) runs the route's middleware and handler and answers
/// the request's errors, wherever it is called. A job dropped without
/// running answers its request with code 7 (no caller waits for nothing),
/// and holds its place in the load count until then. A job is the request
/// itself, not a box around it: queuing one allocates only what the
/// queue does.
pub struct Job(Context);

impl Job {
    pub(crate) fn new(ctx: Context) -> Self {
        Job(ctx)
    }

    /// Runs the request through its route's chain; panics of the chain
    /// are contained and the request answered with code 1.
    pub fn run(self) {
        self.0.run()
    }

    /// The request: its packet, metadata and session, to choose where it
    /// runs (a key for per-key order, say).
    pub fn context(&self) -> &Context {
        &self.0
    }

    /// The id of the session the request came in on.
    pub fn session_id(&self) -> u64 {
        self.0.session().id()
    }

    /// The request, to answer a refused job with the refusal.
    pub(crate) fn into_context(self) -> Context {
        self.0
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Job").field(&self.0).finish()
    }
}

/// Async work for an executor, handed to
/// [`Dispatch::spawn`](crate::Dispatch::spawn): an async handler with its
/// request, or a future a handler started with
/// [`Context::spawn`](crate::Context::spawn). Poll it to completion (it
/// is `Unpin`). An async handler starts on the first poll, so a task
/// refused before being polled gives its request back to be answered
/// with the refusal.
pub struct Task(State);

enum State {
    /// An async handler not started yet: route index and request.
    Handler {
        ctx: Context,
        route: usize,
    },
    Running(BoxFuture),
    Done,
}

impl Task {
    pub(crate) fn handler(ctx: Context, route: usize) -> Self {
        Task(State::Handler { ctx, route })
    }

    pub(crate) fn future(future: BoxFuture) -> Self {
        Task(State::Running(future))
    }

    /// The request of an async handler that has not started.
    pub(crate) fn into_context(self) -> Option<Context> {
        match self.0 {
            State::Handler { ctx, .. } => Some(ctx),
            State::Running(_) | State::Done => None,
        }
    }
}

impl Future for Task {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.get_mut();
        if let State::Handler { .. } = this.0 {
            if let State::Handler { ctx, route } = std::mem::replace(&mut this.0, State::Done) {
                this.0 = State::Running(ctx.into_handler_future(route));
            }
        }
        match &mut this.0 {
            State::Running(future) => {
                let polled = future.as_mut().poll(cx);
                if polled.is_ready() {
                    this.0 = State::Done;
                }
                polled
            }
            State::Handler { .. } | State::Done => Poll::Ready(()),
        }
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            State::Handler { route, .. } => f.debug_struct("Task").field("route", route).finish(),
            State::Running(_) => f.write_str("Task(running)"),
            State::Done => f.write_str("Task(done)"),
        }
    }
}
