//! Routes, handlers and the router that holds them.

mod fnv;
mod middleware;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use walle_codec::Codec;
use walle_packet::Packet;

use crate::context::{BoxFuture, Context};
use crate::error::{Error, HandlerError, RouteError};

use fnv::Fnv;
pub use middleware::{Middleware, Next, OwnedNext};

type SyncFn = dyn Fn(&mut Context) -> Result<(), HandlerError> + Send + Sync;
type AsyncFn = dyn Fn(Context) -> BoxFuture + Send + Sync;

pub(crate) enum Handler {
    Sync(Box<SyncFn>),
    Async(Box<AsyncFn>),
}

pub(crate) struct RouteEntry {
    pub(crate) label: String,
    /// The route's metric handles, registered at its first answer.
    pub(crate) metrics: crate::metrics::RouteSlot,
    pub(crate) middleware: Vec<Arc<dyn Middleware>>,
    pub(crate) handler: Handler,
}

/// The frozen routing table a process dispatches through.
pub(crate) struct Table {
    pub(crate) entries: Vec<RouteEntry>,
    /// Keyed by the name's bytes: a lookup compares the packet's uri
    /// bytes and needs no UTF-8 check of its own.
    by_name: HashMap<Box<[u8]>, usize, Fnv>,
    by_id: HashMap<u32, usize, Fnv>,
    fallback: Option<usize>,
    pub(crate) global: Vec<Arc<dyn Middleware>>,
}

impl Table {
    /// The route for `packet`: a non-zero numeric route first, then the
    /// string route, then the fallback (BEHAVIOURS 5). The flag is set
    /// when the packet's uri matched the route's name.
    pub(crate) fn lookup(&self, packet: &Packet) -> Option<(usize, bool)> {
        let found = match (packet.id(), packet.uri_bytes()) {
            (0, b"") => None,
            (0, uri) => self.by_name.get(uri).map(|&i| (i, true)),
            (id, _) => self.by_id.get(&id).map(|&i| (i, false)),
        };
        found.or(self.fallback.map(|i| (i, false)))
    }

    /// The handler of route `index`.
    pub(crate) fn handler(&self, index: usize) -> &Handler {
        &self.entries[index].handler
    }

    /// The name of route `index` (its label, which for a string route is
    /// the name it was registered under).
    pub(crate) fn name(&self, index: usize) -> &str {
        &self.entries[index].label
    }
}

/// Routes requests and notifies to handlers, through middleware.
///
/// `C` is the codec handlers' messages go through. Register string routes
/// with [`route`](Router::route), numeric ones with
/// [`route_id`](Router::route_id), async handlers with the `_async`
/// variants, a catch-all with [`fallback`](Router::fallback). Global
/// [`middleware`](Router::middleware) applies to every route, whenever it
/// is added; per-route middleware with [`RouteHandle::layer`].
///
/// ```
/// use bytes::Bytes;
/// use walle_codec::RawCodec;
/// use walle_process::{Context, Next, Router, Status};
///
/// let mut router = Router::new(RawCodec);
/// router.route("echo", |_ctx: &mut Context, req: Bytes| Ok(req))?;
/// router
///     .route_id(7, |_ctx: &mut Context, _req: Bytes| -> Result<Bytes, _> {
///         Err(Status::new(1001, "closed for maintenance").into())
///     })?
///     .layer(|ctx: &mut Context, next: Next<'_>| next.run(ctx));
/// router.middleware(|ctx: &mut Context, next: Next<'_>| {
///     let started = std::time::Instant::now();
///     let result = next.run(ctx); // the rest of the chain
///     let _elapsed = started.elapsed();
///     result
/// });
/// assert!(router.route("echo", |_: &mut Context, r: Bytes| Ok(r)).is_err());
/// # Ok::<(), walle_process::RouteError>(())
/// ```
pub struct Router<C> {
    codec: C,
    table: Table,
}

/// A route just registered, to add middleware to.
pub struct RouteHandle<'r> {
    entry: &'r mut RouteEntry,
}

impl RouteHandle<'_> {
    /// Adds middleware that runs for this route only, after the global ones.
    pub fn layer(self, middleware: impl Middleware) -> Self {
        self.entry.middleware.push(Arc::new(middleware));
        self
    }
}

impl fmt::Debug for RouteHandle<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteHandle")
            .field("route", &self.entry.label)
            .finish()
    }
}

/// Key of a registration.
enum Key {
    Name(String),
    Id(u32),
    Fallback,
}

impl<C: Clone + Send + Sync + 'static> Router<C> {
    /// An empty router whose handlers use `codec`.
    pub fn new(codec: C) -> Self {
        Router {
            codec,
            table: Table {
                entries: Vec::new(),
                by_name: HashMap::default(),
                by_id: HashMap::default(),
                fallback: None,
                global: Vec::new(),
            },
        }
    }

    /// The codec of this router.
    pub fn codec(&self) -> &C {
        &self.codec
    }

    fn insert(&mut self, key: Key, handler: Handler) -> Result<RouteHandle<'_>, RouteError> {
        let index = self.table.entries.len();
        let label = match &key {
            Key::Name(name) if name.is_empty() => return Err(RouteError::EmptyName),
            Key::Name(name) if self.table.by_name.contains_key(name.as_bytes()) => {
                return Err(RouteError::DuplicateName(name.clone()));
            }
            Key::Id(0) => return Err(RouteError::ZeroId),
            Key::Id(id) if self.table.by_id.contains_key(id) => {
                return Err(RouteError::DuplicateId(*id));
            }
            Key::Fallback if self.table.fallback.is_some() => {
                return Err(RouteError::DuplicateFallback);
            }
            Key::Name(name) => name.clone(),
            Key::Id(id) => format!("#{id}"),
            Key::Fallback => "<fallback>".to_string(),
        };
        match key {
            Key::Name(name) => drop(
                self.table
                    .by_name
                    .insert(name.into_bytes().into_boxed_slice(), index),
            ),
            Key::Id(id) => drop(self.table.by_id.insert(id, index)),
            Key::Fallback => self.table.fallback = Some(index),
        }
        self.table.entries.push(RouteEntry {
            label,
            metrics: Default::default(),
            middleware: Vec::new(),
            handler,
        });
        Ok(RouteHandle {
            entry: &mut self.table.entries[index],
        })
    }

    fn sync<Req, Resp, F>(&self, f: F) -> Handler
    where
        C: Codec<Req> + Codec<Resp>,
        Req: 'static,
        Resp: 'static,
        F: Fn(&mut Context, Req) -> Result<Resp, HandlerError> + Send + Sync + 'static,
    {
        let codec = self.codec.clone();
        Handler::Sync(Box::new(move |ctx: &mut Context| {
            let req: Req =
                Codec::<Req>::decode(&codec, ctx.packet().payload()).map_err(Error::from)?;
            let resp = f(ctx, req)?;
            if ctx.awaits_response() {
                ctx.respond(&codec, &resp)?;
            }
            Ok(())
        }))
    }

    fn spawnable<Req, Resp, F, Fut>(&self, f: F) -> Handler
    where
        C: Codec<Req> + Codec<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: Fn(Context, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = (Context, Result<Resp, HandlerError>)> + Send + 'static,
    {
        let codec = self.codec.clone();
        let f = Arc::new(f);
        Handler::Async(Box::new(move |mut ctx: Context| {
            let codec = codec.clone();
            let f = f.clone();
            Box::pin(async move {
                let req = match Codec::<Req>::decode(&codec, ctx.packet().payload()) {
                    Ok(req) => req,
                    Err(e) => return ctx.fail(&(Box::new(Error::from(e)) as HandlerError)),
                };
                let (mut ctx, result) = f(ctx, req).await;
                match result {
                    Ok(resp) if ctx.awaits_response() => {
                        if let Err(e) = ctx.respond(&codec, &resp) {
                            ctx.fail(&(Box::new(e) as HandlerError));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => ctx.fail(&e),
                }
            })
        }))
    }

    /// Registers a handler for the string route `name`.
    pub fn route<Req, Resp, F>(&mut self, name: &str, f: F) -> Result<RouteHandle<'_>, RouteError>
    where
        C: Codec<Req> + Codec<Resp>,
        Req: 'static,
        Resp: 'static,
        F: Fn(&mut Context, Req) -> Result<Resp, HandlerError> + Send + Sync + 'static,
    {
        let handler = self.sync(f);
        self.insert(Key::Name(name.to_string()), handler)
    }

    /// Registers a handler for the numeric route `id` (non-zero).
    pub fn route_id<Req, Resp, F>(&mut self, id: u32, f: F) -> Result<RouteHandle<'_>, RouteError>
    where
        C: Codec<Req> + Codec<Resp>,
        Req: 'static,
        Resp: 'static,
        F: Fn(&mut Context, Req) -> Result<Resp, HandlerError> + Send + Sync + 'static,
    {
        let handler = self.sync(f);
        self.insert(Key::Id(id), handler)
    }

    /// Registers the handler for packets no route matches.
    pub fn fallback<Req, Resp, F>(&mut self, f: F) -> Result<RouteHandle<'_>, RouteError>
    where
        C: Codec<Req> + Codec<Resp>,
        Req: 'static,
        Resp: 'static,
        F: Fn(&mut Context, Req) -> Result<Resp, HandlerError> + Send + Sync + 'static,
    {
        let handler = self.sync(f);
        self.insert(Key::Fallback, handler)
    }

    /// Registers an async handler for the string route `name`. It runs on
    /// the executor of the process's [`Dispatch`](crate::Dispatch)er (the
    /// io layer's runs it on tokio; [`Inline`](crate::Inline), which has
    /// none, refuses it with code 4) and hands the context back with its
    /// result, so the framework can answer.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use walle_codec::RawCodec;
    /// use walle_process::{Context, Router};
    ///
    /// let mut router = Router::new(RawCodec);
    /// router.route_async("slow", |ctx: Context, req: Bytes| async move {
    ///     // ... await a database here ...
    ///     (ctx, Ok(req))
    /// })?;
    /// # Ok::<(), walle_process::RouteError>(())
    /// ```
    pub fn route_async<Req, Resp, F, Fut>(
        &mut self,
        name: &str,
        f: F,
    ) -> Result<RouteHandle<'_>, RouteError>
    where
        C: Codec<Req> + Codec<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: Fn(Context, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = (Context, Result<Resp, HandlerError>)> + Send + 'static,
    {
        let handler = self.spawnable(f);
        self.insert(Key::Name(name.to_string()), handler)
    }

    /// Registers an async handler for the numeric route `id`.
    pub fn route_async_id<Req, Resp, F, Fut>(
        &mut self,
        id: u32,
        f: F,
    ) -> Result<RouteHandle<'_>, RouteError>
    where
        C: Codec<Req> + Codec<Resp>,
        Req: Send + 'static,
        Resp: Send + 'static,
        F: Fn(Context, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = (Context, Result<Resp, HandlerError>)> + Send + 'static,
    {
        let handler = self.spawnable(f);
        self.insert(Key::Id(id), handler)
    }

    /// Adds middleware that runs for every route of this router, those
    /// registered before and after this call alike (BEHAVIOURS 7).
    pub fn middleware(&mut self, middleware: impl Middleware) -> &mut Self {
        self.table.global.push(Arc::new(middleware));
        self
    }

    /// Freezes the router for use by processes; cheap to clone and share.
    pub fn into_routes(self) -> Routes<C> {
        Routes {
            codec: self.codec,
            table: Arc::new(self.table),
        }
    }
}

impl<C> fmt::Debug for Router<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes: Vec<&str> = self
            .table
            .entries
            .iter()
            .map(|e| e.label.as_str())
            .collect();
        f.debug_struct("Router")
            .field("routes", &routes)
            .field("global", &self.table.global.len())
            .finish()
    }
}

/// A frozen [`Router`], shared by every process of a server.
pub struct Routes<C> {
    pub(crate) codec: C,
    pub(crate) table: Arc<Table>,
}

impl<C> Routes<C> {
    /// The codec handlers' messages go through.
    pub fn codec(&self) -> &C {
        &self.codec
    }
}

impl<C: Clone> Clone for Routes<C> {
    fn clone(&self) -> Self {
        Routes {
            codec: self.codec.clone(),
            table: self.table.clone(),
        }
    }
}

impl<C: Clone + Send + Sync + 'static> From<Router<C>> for Routes<C> {
    fn from(router: Router<C>) -> Self {
        router.into_routes()
    }
}

impl<C> fmt::Debug for Routes<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routes")
            .field("routes", &self.table.entries.len())
            .finish()
    }
}
