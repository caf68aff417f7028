use std::fmt;

use super::Handler;
use crate::{Context, HandlerError};

/// Code around the rest of a route's chain.
///
/// Middleware receives the context and a [`Next`]: code before
/// `next.run(ctx)` runs on the way in, code after it as the chain unwinds.
/// Not calling `next` stops the chain; [`Context::abort`] answers the
/// request with an error first. To move the rest of the chain to another
/// executor, take the context with [`Context::defer`] and send it, with
/// `next`, where it should run.
pub trait Middleware: Send + Sync + 'static {
    /// Runs this middleware.
    fn handle(&self, ctx: &mut Context, next: Next) -> Result<(), HandlerError>;
}

impl<F> Middleware for F
where
    F: Fn(&mut Context, Next) -> Result<(), HandlerError> + Send + Sync + 'static,
{
    fn handle(&self, ctx: &mut Context, next: Next) -> Result<(), HandlerError> {
        self(ctx, next)
    }
}

/// The rest of a route's chain: remaining middleware, then the handler.
/// Owned (two indices into the routing table the context leads to), so it
/// can travel to another thread with a deferred context.
pub struct Next {
    pub(crate) route: usize,
    pub(crate) index: usize,
}

impl Next {
    /// Runs the rest of the chain. Does nothing once the context was
    /// aborted or deferred.
    pub fn run(self, ctx: &mut Context) -> Result<(), HandlerError> {
        if ctx.is_aborted() || ctx.is_deferred() {
            return Ok(());
        }
        let Next { route, index } = self;
        // The connection's own handle: cloning it touches no cache line that
        // another connection's thread writes.
        let core = ctx.core().clone();
        let table = &*core.table;
        let global = table.global.len();
        let entry = &table.entries[route];
        let middleware = if index < global {
            Some(&table.global[index])
        } else {
            entry.middleware.get(index - global)
        };
        if let Some(middleware) = middleware {
            return middleware.handle(
                ctx,
                Next {
                    route,
                    index: index + 1,
                },
            );
        }
        match &entry.handler {
            Handler::Sync(handler) => handler(ctx),
            Handler::Async(handler) => {
                let runtime = ctx.runtime().ok_or(crate::Error::NotSupported(
                    "async handlers need a tokio runtime (the dispatcher's or the current one)",
                ))?;
                let owned = ctx.defer();
                runtime.spawn(handler(owned));
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next")
            .field("route", &self.route)
            .field("index", &self.index)
            .finish()
    }
}
