//! Building a [`Process`].

use std::fmt;
use std::sync::{Arc, OnceLock};

use walle_mempool::{Pool, SizedPool};
use walle_packet::Protocol;

use super::Process;
use crate::core::{Common, Core, Parts};
use crate::dispatch::{Dispatch, Inline};
use crate::error::Error;
use crate::hook::DispatchHook;
use crate::load::LoadLimit;
use crate::options::ProcessOptions;
use crate::router::Routes;
use crate::session::Session;
use crate::time::{Clock, SystemClock};
use crate::transport::Transport;

/// The process-wide pool used when a builder is given none.
pub(crate) fn default_pool() -> Arc<dyn Pool> {
    static POOL: OnceLock<Arc<dyn Pool>> = OnceLock::new();
    POOL.get_or_init(|| Arc::new(SizedPool::new())).clone()
}

/// The system clock, shared.
fn system_clock() -> Arc<dyn Clock> {
    static CLOCK: OnceLock<Arc<dyn Clock>> = OnceLock::new();
    CLOCK.get_or_init(|| Arc::new(SystemClock)).clone()
}

/// The inline dispatcher, shared by the processes given none.
fn inline_dispatcher() -> Arc<dyn Dispatch> {
    static INLINE: OnceLock<Arc<dyn Dispatch>> = OnceLock::new();
    INLINE.get_or_init(|| Arc::new(Inline)).clone()
}

/// Builds a [`Process`].
pub struct ProcessBuilder<C> {
    protocol: Protocol,
    routes: Routes<C>,
    transport: Option<Arc<dyn Transport>>,
    pool: Option<Arc<dyn Pool>>,
    dispatcher: Option<Arc<dyn Dispatch>>,
    load: Option<Arc<LoadLimit>>,
    clock: Option<Arc<dyn Clock>>,
    hook: Option<Arc<dyn DispatchHook>>,
    session: Option<Session>,
    options: ProcessOptions,
}

impl<C> ProcessBuilder<C> {
    pub(super) fn new(protocol: Protocol, routes: Routes<C>) -> Self {
        ProcessBuilder {
            protocol,
            routes,
            transport: None,
            pool: None,
            dispatcher: None,
            load: None,
            clock: None,
            hook: None,
            session: None,
            options: ProcessOptions::default(),
        }
    }

    /// Where frames are written. Required.
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }
    /// The pool payloads are encoded into (default: one per process-wide).
    pub fn pool(mut self, pool: Arc<dyn Pool>) -> Self {
        self.pool = Some(pool);
        self
    }
    /// Where handlers run (default: [`Inline`], which refuses async
    /// handlers; the io layer's dispatcher runs them on tokio).
    pub fn dispatcher(mut self, dispatcher: Arc<dyn Dispatch>) -> Self {
        self.dispatcher = Some(dispatcher);
        self
    }
    /// The bound on requests in flight, usually shared by a server. Without
    /// one, requests are not counted at all.
    pub fn load_limit(mut self, load: Arc<LoadLimit>) -> Self {
        self.load = Some(load);
        self
    }
    /// The clock call deadlines are read from (default: the system's).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }
    /// A hook that sees every frame before dispatch.
    pub fn hook(mut self, hook: Arc<dyn DispatchHook>) -> Self {
        self.hook = Some(hook);
        self
    }
    /// The session (default: a new one with id 0).
    pub fn session(mut self, session: Session) -> Self {
        self.session = Some(session);
        self
    }
    /// Settings.
    pub fn options(mut self, options: ProcessOptions) -> Self {
        self.options = options;
        self
    }

    /// The process; fails without a transport.
    pub fn build(self) -> Result<Process<C>, Error> {
        let transport = self
            .transport
            .clone()
            .ok_or(Error::NotSupported("a process needs a transport"))?;
        let session = self.session.clone().unwrap_or_else(|| Session::new(0));
        let ProcessTemplate { common, codec } = self.template();
        let core = Core::new(Parts {
            common,
            transport,
            session,
            span: tracing::Span::none(),
        });
        Ok(Process {
            core: Arc::new(core),
            codec,
        })
    }

    /// What every process of these settings shares, built once: each
    /// [`spawn`](ProcessTemplate::spawn) then builds a process of its own
    /// transport and session that keeps one pointer to it, where
    /// [`build`](Self::build) gives each process its own copy. A server
    /// spawns the process of each connection from one template. The
    /// transport and session set here, if any, are not part of it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use walle_codec::RawCodec;
    /// use walle_packet::{Protocol, WalleFormat};
    /// use walle_process::mem::MemTransport;
    /// use walle_process::{Process, Router, Session};
    ///
    /// let template = Process::builder(Protocol::new(WalleFormat::new()), Router::new(RawCodec))
    ///     .template();
    /// let first = template.spawn(Arc::new(MemTransport::new(1 << 20)), Session::new(1));
    /// let second = template.spawn(Arc::new(MemTransport::new(1 << 20)), Session::new(2));
    /// assert_eq!((first.session().id(), second.session().id()), (1, 2));
    /// ```
    pub fn template(self) -> ProcessTemplate<C> {
        let dispatcher = self.dispatcher.unwrap_or_else(inline_dispatcher);
        let common = Common {
            protocol: self.protocol,
            pool: self.pool.unwrap_or_else(default_pool),
            table: self.routes.table,
            clock: self.clock.unwrap_or_else(system_clock),
            inline: dispatcher.runs_inline(),
            dispatcher,
            load: self.load,
            hook: self.hook,
            options: self.options,
            metrics: crate::metrics::ProcessMetrics::new(),
        };
        ProcessTemplate {
            common: Arc::new(common),
            codec: self.routes.codec,
        }
    }
}

/// What the processes of one server (or any set of sessions with the same
/// settings) share, from [`ProcessBuilder::template`].
pub struct ProcessTemplate<C> {
    common: Arc<Common>,
    codec: C,
}

impl<C: Clone> ProcessTemplate<C> {
    /// A process writing to `transport`, for `session`.
    pub fn spawn(&self, transport: Arc<dyn Transport>, session: Session) -> Process<C> {
        self.spawn_in(transport, session, tracing::Span::none())
    }

    /// [`spawn`](ProcessTemplate::spawn) with the connection's span
    /// (session, peer, backend), which the process enters while it handles
    /// the connection's frames and timeouts: every request span and log
    /// line of the connection nests under it.
    pub fn spawn_in(
        &self,
        transport: Arc<dyn Transport>,
        session: Session,
        span: tracing::Span,
    ) -> Process<C> {
        let core = Core::new(Parts {
            common: self.common.clone(),
            transport,
            session,
            span,
        });
        Process {
            core: Arc::new(core),
            codec: self.codec.clone(),
        }
    }

    /// The settings every process spawned shares.
    pub fn options(&self) -> &ProcessOptions {
        &self.common.options
    }
}

impl<C> fmt::Debug for ProcessTemplate<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessTemplate")
            .field("protocol", &self.common.protocol)
            .field("options", &self.common.options)
            .finish()
    }
}

impl<C> fmt::Debug for ProcessBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessBuilder")
            .field("protocol", &self.protocol)
            .field("options", &self.options)
            .finish()
    }
}
