//! Building a [`Process`].

use std::fmt;
use std::sync::{Arc, OnceLock};

use walle_mempool::{Pool, SizedPool};
use walle_packet::Protocol;

use super::Process;
use crate::core::{Core, Parts};
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
pub(super) fn default_pool() -> Arc<dyn Pool> {
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
            .ok_or(Error::NotSupported("a process needs a transport"))?;
        let core = Core::new(Parts {
            protocol: self.protocol,
            transport,
            pool: self.pool.unwrap_or_else(default_pool),
            table: self.routes.table,
            clock: self.clock.unwrap_or_else(system_clock),
            dispatcher: self.dispatcher.unwrap_or_else(inline_dispatcher),
            load: self.load,
            hook: self.hook,
            session: self.session.unwrap_or_else(|| Session::new(0)),
            options: self.options,
        });
        Ok(Process {
            core: Arc::new(core),
            codec: self.routes.codec,
        })
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
