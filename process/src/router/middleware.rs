use std::fmt;
use std::sync::Arc;

use super::{Handler, Table};
use crate::context::Context;
use crate::error::HandlerError;

/// Code around the rest of a route's chain.
///
/// Middleware receives the context and a [`Next`]: code before
/// `next.run(ctx)` runs on the way in, code after it as the chain unwinds.
/// Not calling `next` stops the chain; [`Context::abort`] answers the
/// request with an error first. To move the rest of the chain to another
/// executor, take the context with [`Context::defer`] and send it, with
/// [`Next::into_owned`], where it should run.
pub trait Middleware: Send + Sync + 'static {
    /// Runs this middleware.
    fn handle(&self, ctx: &mut Context, next: Next<'_>) -> Result<(), HandlerError>;
}

impl<F> Middleware for F
where
    F: Fn(&mut Context, Next<'_>) -> Result<(), HandlerError> + Send + Sync + 'static,
{
    fn handle(&self, ctx: &mut Context, next: Next<'_>) -> Result<(), HandlerError> {
        self(ctx, next)
    }
}

/// The rest of a route's chain: remaining middleware, then the handler.
/// It borrows the routing table, so running a chain costs no reference
/// count; [`into_owned`](Next::into_owned) makes one that can travel to
/// another thread with a deferred context.
pub struct Next<'a> {
    table: &'a Arc<Table>,
    route: usize,
    index: usize,
}

/// The rest of a route's chain, owned: to finish on another executor.
pub struct OwnedNext {
    table: Arc<Table>,
    route: usize,
    index: usize,
}

impl OwnedNext {
    /// Runs the rest of the chain.
    pub fn run(self, ctx: &mut Context) -> Result<(), HandlerError> {
        Next {
            table: &self.table,
            route: self.route,
            index: self.index,
        }
        .run(ctx)
    }
}

impl fmt::Debug for OwnedNext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedNext")
            .field("route", &self.route)
            .field("index", &self.index)
            .finish()
    }
}

impl<'a> Next<'a> {
    /// The whole chain of route `route` of `table`.
    pub(crate) fn start(table: &'a Arc<Table>, route: usize) -> Self {
        Next {
            table,
            route,
            index: 0,
        }
    }

    /// An owned copy of the rest of the chain, for `ctx`, the context
    /// about to move elsewhere with [`Context::defer`] (the chain is that
    /// of its process, which the copy holds).
    pub fn into_owned(self, _ctx: &Context) -> OwnedNext {
        OwnedNext {
            table: self.table.clone(),
            route: self.route,
            index: self.index,
        }
    }

    /// Runs the rest of the chain. Does nothing once the context was
    /// aborted or deferred.
    pub fn run(self, ctx: &mut Context) -> Result<(), HandlerError> {
        if ctx.is_aborted() || ctx.is_deferred() {
            return Ok(());
        }
        let Next {
            table,
            route,
            index,
        } = self;
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
                    table,
                    route,
                    index: index + 1,
                },
            );
        }
        match &entry.handler {
            Handler::Sync(handler) => handler(ctx),
            // The dispatcher's executor runs it (refused: answered here).
            Handler::Async(_) => ctx.spawn_handler(route),
        }
    }
}

impl fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next")
            .field("route", &self.route)
            .field("index", &self.index)
            .finish()
    }
}
