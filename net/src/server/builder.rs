//! The server's builder: the backend, the format, the pool, the dispatch
//! and the hook it serves with, and `bind`, which starts the backend.

use std::fmt;
use std::net::ToSocketAddrs;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use tracing::info;
use walle_mempool::Pool;
use walle_packet::Protocol;
use walle_process::{Dispatch, HandlerError, LoadLimit, Routes};

use super::attach::attach;
use super::{Running, Server, SessionHook, Shared};
use crate::conn::ProcessParts;
use crate::hub::Hub;
use crate::options::{Backend, ServerOptions};
use crate::session::SessionHandle;
use crate::{NetError, evloop, tcp, ws};

/// Builds a [`Server`]: a backend, a format, a codec (through the routes),
/// a pool, a router and a dispatch strategy.
pub struct ServerBuilder<C> {
    pub(super) routes: Routes<C>,
    pub(super) backend: Backend,
    pub(super) protocol: Protocol,
    pub(super) pool: Option<Arc<dyn Pool>>,
    pub(super) dispatcher: Option<Arc<dyn Dispatch>>,
    pub(super) load: Option<Arc<LoadLimit>>,
    pub(super) options: ServerOptions,
    pub(super) on_session: Option<SessionHook<C>>,
}

impl<C: Clone + Send + Sync + 'static> ServerBuilder<C> {
    /// The io backend (default: the event loop).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }
    /// The wire format pipeline (default: `walle`).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }
    /// The buffer pool.
    pub fn pool(mut self, pool: Arc<dyn Pool>) -> Self {
        self.pool = Some(pool);
        self
    }
    /// Where handlers run: a [`Dispatcher`](crate::Dispatcher) or any
    /// other [`Dispatch`] (default: inline on the io threads, async
    /// handlers on the tokio runtime current there, if any).
    pub fn dispatcher(mut self, dispatcher: Arc<dyn Dispatch>) -> Self {
        self.dispatcher = Some(dispatcher);
        self
    }
    /// A bound on requests in flight across all sessions.
    pub fn load_limit(mut self, load: Arc<LoadLimit>) -> Self {
        self.load = Some(load);
        self
    }
    /// The bound given with [`load_limit`](Self::load_limit), if any: a
    /// service wrapping the builder reads requests in flight from it.
    pub fn current_load_limit(&self) -> Option<&Arc<LoadLimit>> {
        self.load.as_ref()
    }
    /// Settings.
    pub fn options(mut self, options: ServerOptions) -> Self {
        self.options = options;
        self
    }
    /// A hook run for each new session (BEHAVIOURS 35), on the accept
    /// path before the session reads anything; an error refuses it. Keep it
    /// short: on the tcp backend a `stop` waits for a hook that is running,
    /// so a hook must not wait on the stop itself.
    pub fn on_session(
        mut self,
        hook: impl Fn(&SessionHandle<C>) -> Result<(), HandlerError> + Send + Sync + 'static,
    ) -> Self {
        self.on_session = Some(Arc::new(hook));
        self
    }

    /// Binds `addr` and starts serving.
    pub fn bind(self, addr: impl ToSocketAddrs) -> Result<Server<C>, NetError> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or(NetError::Config("no address to bind"))?;
        let conn = self.options.conn.clone();
        let parts = ProcessParts {
            protocol: self.protocol,
            routes: self.routes,
            pool: self.pool,
            dispatcher: self.dispatcher,
            load: self.load,
            template: Default::default(),
        };
        parts.check(&self.backend)?;
        let shared = Arc::new(Shared {
            hub: Hub::new(self.options.max_sessions),
            parts,
            options: self.options,
            on_session: self.on_session,
            next_id: AtomicU64::new(1),
            refused: AtomicU64::new(0),
            metrics: super::ServerMetrics::new(self.backend.name()),
            backend: self.backend.name(),
        });
        let attach = attach(Arc::downgrade(&shared));
        let running: Arc<dyn Running> = match &self.backend {
            Backend::Evloop(opts) => Arc::new(evloop::serve(addr, opts, conn, attach)?),
            Backend::Tcp(opts) => Arc::new(tcp::serve(addr, opts, conn, attach)?),
            Backend::Kcp(opts) => Arc::new(evloop::kcp::serve(addr, opts, conn, attach)?),
            Backend::Ws(opts) => {
                let max_frame = shared.parts.protocol.framing().max_frame;
                Arc::new(ws::serve(addr, opts, max_frame, conn, attach)?)
            }
        };
        info!(addr = %running.local_addr(), backend = self.backend.name(), format = shared.parts.protocol.wrapper().name(), "serving");
        Ok(Server {
            shared,
            running,
            backend: self.backend,
            stopping: Mutex::new(None),
        })
    }
}

impl<C> fmt::Debug for ServerBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("backend", &self.backend)
            .field("options", &self.options)
            .finish()
    }
}
