//! Clients: eager or lazy dial, reconnects, pushes through a router.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tracing::{debug, info, warn};
use walle_codec::Codec;
use walle_mempool::Pool;
use walle_packet::{Protocol, Route, WalleFormat};
use walle_process::{CallOptions, Dispatcher, Error, Process, Routes, Session, Transport};

use crate::conn::{Attach, Handler, ProcessParts};
use crate::options::{Backend, ConnOptions, millis};
use crate::{NetError, evloop, tcp};

/// Settings of a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Dial on first use instead of at build.
    pub lazy: bool,
    /// Reconnect attempts after a disconnect or failed dial: 0 never, N up
    /// to N in a row, negative forever.
    pub reconnect: i32,
    /// Wait between reconnect attempts.
    #[serde(with = "millis")]
    pub reconnect_wait: Duration,
    /// Bound of one dial.
    #[serde(with = "millis")]
    pub connect_timeout: Duration,
    /// How long a call waits for a connection; 0: fail at once with
    /// `SessionClosed` while not connected.
    #[serde(with = "millis")]
    pub wait_connected: Duration,
    /// Per-connection settings.
    pub conn: ConnOptions,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            lazy: false,
            reconnect: 0,
            reconnect_wait: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(3),
            wait_connected: Duration::ZERO,
            conn: ConnOptions::default(),
        }
    }
}

impl ClientOptions {
    /// Dials on first use.
    pub fn lazy(mut self, lazy: bool) -> Self {
        self.lazy = lazy;
        self
    }
    /// Sets reconnect attempts and the wait between them.
    pub fn reconnect(mut self, attempts: i32, wait: Duration) -> Self {
        self.reconnect = attempts;
        self.reconnect_wait = wait;
        self
    }
    /// Sets how long calls wait for a connection.
    pub fn wait_connected(mut self, wait: Duration) -> Self {
        self.wait_connected = wait;
        self
    }
    /// Sets the per-connection settings.
    pub fn conn(mut self, conn: ConnOptions) -> Self {
        self.conn = conn;
        self
    }
}

enum State<C> {
    Idle,
    Connecting,
    Connected(Process<C>),
    Closed,
}

struct Inner<C> {
    addr: SocketAddr,
    backend: Backend,
    parts: ProcessParts<C>,
    options: ClientOptions,
    state: Mutex<State<C>>,
    changed: Notify,
    closed: AtomicBool,
    /// Failed dials in a row.
    failures: AtomicU64,
    sessions: AtomicU64,
}

/// Builds a [`Client`].
pub struct ClientBuilder<C> {
    addr: Result<SocketAddr, NetError>,
    backend: Backend,
    protocol: Protocol,
    routes: Routes<C>,
    options: ClientOptions,
    pool: Option<Arc<dyn Pool>>,
    dispatcher: Option<Arc<Dispatcher>>,
}

impl<C: Clone + Send + Sync + 'static> ClientBuilder<C> {
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
    /// Settings.
    pub fn options(mut self, options: ClientOptions) -> Self {
        self.options = options;
        self
    }
    /// The buffer pool.
    pub fn pool(mut self, pool: Arc<dyn Pool>) -> Self {
        self.pool = Some(pool);
        self
    }
    /// Where handlers of pushed messages run.
    pub fn dispatcher(mut self, dispatcher: Arc<Dispatcher>) -> Self {
        self.dispatcher = Some(dispatcher);
        self
    }

    /// The client. Unless lazy, it dials now and fails if it cannot
    /// connect (after its reconnect attempts).
    pub fn build(self) -> Result<Client<C>, NetError> {
        let mut options = self.options;
        options.conn.client = true;
        let inner = Arc::new(Inner {
            addr: self.addr?,
            backend: self.backend,
            parts: ProcessParts {
                protocol: self.protocol,
                routes: self.routes,
                pool: self.pool,
                dispatcher: self.dispatcher,
                load: None,
            },
            options,
            state: Mutex::new(State::Idle),
            changed: Notify::new(),
            closed: AtomicBool::new(false),
            failures: AtomicU64::new(0),
            sessions: AtomicU64::new(1),
        });
        let client = Client { inner };
        if !client.inner.options.lazy {
            client.inner.clone().dial_now()?;
        }
        Ok(client)
    }
}

/// A client connection with its own process: calls, notifies, and a
/// router for what the server pushes (BEHAVIOURS 39-41).
pub struct Client<C> {
    inner: Arc<Inner<C>>,
}

impl<C> Clone for Client<C> {
    fn clone(&self) -> Self {
        Client {
            inner: self.inner.clone(),
        }
    }
}

impl<C: Clone + Send + Sync + 'static> Inner<C> {
    fn state(&self) -> MutexGuard<'_, State<C>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, state: State<C>) {
        *self.state() = state;
        self.changed.notify_waiters();
    }

    fn attach(self: &Arc<Self>) -> Attach {
        let weak = Arc::downgrade(self);
        Arc::new(move |transport: Arc<dyn Transport>, _peer: SocketAddr| {
            let inner = weak.upgrade()?;
            let session = Session::new(inner.sessions.fetch_add(1, Ordering::Relaxed));
            let mut options = inner.options.conn.process.clone();
            options.echo_heartbeat = false;
            let process = inner.parts.build(transport, session.clone(), options)?;
            let weak = Arc::downgrade(&inner);
            session.on_close(move || {
                if let Some(inner) = weak.upgrade() {
                    inner.disconnected();
                }
            });
            inner.failures.store(0, Ordering::Relaxed);
            inner.set(State::Connected(process.clone()));
            info!(addr = %inner.addr, "connected");
            Some(Arc::new(process) as Arc<dyn Handler>)
        })
    }

    /// Dials once, on this thread.
    fn dial_now(self: Arc<Self>) -> Result<(), NetError> {
        loop {
            {
                let mut state = self.state();
                match *state {
                    State::Closed => return Err(NetError::Stopped),
                    State::Connected(_) => return Ok(()),
                    _ => *state = State::Connecting,
                }
            }
            let conn = Arc::new(self.options.conn.clone());
            let timeout = self.options.connect_timeout;
            let dialed = match &self.backend {
                Backend::Evloop(_) => evloop::connect(self.addr, timeout, self.attach(), conn),
                Backend::Tcp(_) => tcp::connect(self.addr, timeout, self.attach(), conn),
            };
            match dialed {
                // The reactor or task finishes the setup: wait for it briefly.
                Ok(()) => return self.await_setup(),
                Err(e) => {
                    let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                    warn!(addr = %self.addr, error = %e, failures, "dial failed");
                    if !self.may_retry(failures) {
                        self.set(State::Idle);
                        return Err(NetError::Io(e));
                    }
                    std::thread::sleep(self.options.reconnect_wait);
                }
            }
        }
    }

    fn await_setup(&self) -> Result<(), NetError> {
        let deadline = Instant::now() + self.options.connect_timeout;
        while Instant::now() < deadline {
            match *self.state() {
                State::Connected(_) => return Ok(()),
                State::Closed => return Err(NetError::Stopped),
                State::Idle => return Err(NetError::Process(Error::SessionClosed)),
                State::Connecting => {}
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Err(NetError::Process(Error::SessionClosed))
    }

    fn may_retry(&self, failures: u64) -> bool {
        let limit = self.options.reconnect;
        !self.closed.load(Ordering::Acquire) && (limit < 0 || failures <= limit as u64)
    }

    /// The connection closed: pending calls have failed (the process did
    /// that); reconnect if allowed.
    fn disconnected(self: &Arc<Self>) {
        if self.closed.load(Ordering::Acquire) {
            self.set(State::Closed);
            return;
        }
        debug!(addr = %self.addr, "disconnected");
        self.set(State::Idle);
        if self.options.reconnect == 0 {
            return;
        }
        self.spawn_dial(true);
    }

    fn spawn_dial(self: &Arc<Self>, wait_first: bool) {
        {
            let mut state = self.state();
            if !matches!(*state, State::Idle) {
                return;
            }
            *state = State::Connecting;
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        let wait = self.options.reconnect_wait;
        let spawned = std::thread::Builder::new()
            .name("walle-dial".into())
            .spawn(move || {
                if wait_first {
                    std::thread::sleep(wait);
                }
                if let Some(inner) = weak.upgrade() {
                    inner.set(State::Idle);
                    if let Err(e) = inner.dial_now() {
                        debug!(error = %e, "dial gave up");
                    }
                }
            });
        if spawned.is_err() {
            self.set(State::Idle);
        }
    }

    fn current(&self) -> Option<Process<C>> {
        match &*self.state() {
            State::Connected(p) if !p.is_closed() => Some(p.clone()),
            _ => None,
        }
    }

    /// The live process, dialing if idle; waits as configured.
    async fn process(self: &Arc<Self>) -> Result<Process<C>, Error> {
        let deadline = Instant::now() + self.options.wait_connected;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(process) = self.current() {
                return Ok(process);
            }
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::SessionClosed);
            }
            if matches!(*self.state(), State::Idle) {
                self.spawn_dial(false);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::SessionClosed);
            }
            let _ = tokio::time::timeout(left, notified).await;
        }
    }
}

impl<C: Clone + Send + Sync + 'static> Client<C> {
    /// Starts building a client of `addr` whose pushed messages go to
    /// `routes`.
    pub fn builder(addr: impl ToSocketAddrs, routes: impl Into<Routes<C>>) -> ClientBuilder<C> {
        let addr = addr
            .to_socket_addrs()
            .map_err(NetError::Io)
            .and_then(|mut a| a.next().ok_or(NetError::Config("no address to connect to")));
        ClientBuilder {
            addr,
            backend: Backend::default(),
            protocol: Protocol::new(WalleFormat::new()),
            routes: routes.into(),
            options: ClientOptions::default(),
            pool: None,
            dispatcher: None,
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The current connection's process, if connected.
    pub fn process(&self) -> Option<Process<C>> {
        self.inner.current()
    }

    /// True while connected.
    pub fn is_connected(&self) -> bool {
        self.inner.current().is_some()
    }

    /// Calls the server (dialing first if lazy and idle).
    pub async fn call<'r, Req, Resp>(
        &self,
        route: impl Into<Route<'r>>,
        req: &Req,
    ) -> Result<Resp, Error>
    where
        C: Codec<Req> + Codec<Resp> + Unpin,
    {
        self.call_with(route, req, CallOptions::default()).await
    }

    /// Calls the server with options.
    pub async fn call_with<'r, Req, Resp>(
        &self,
        route: impl Into<Route<'r>>,
        req: &Req,
        options: CallOptions<'_>,
    ) -> Result<Resp, Error>
    where
        C: Codec<Req> + Codec<Resp> + Unpin,
    {
        let route = route.into();
        let process = self.inner.process().await?;
        process.call_with(route, req, options).await
    }

    /// Sends a one-way message; fails with `SessionClosed` while not
    /// connected (a lazy client starts dialing).
    pub fn notify<'r, M>(&self, route: impl Into<Route<'r>>, msg: &M) -> Result<(), Error>
    where
        C: Codec<M>,
    {
        match self.inner.current() {
            Some(process) => process.notify(route, msg),
            None => {
                if matches!(*self.inner.state(), State::Idle) {
                    self.inner.spawn_dial(false);
                }
                Err(Error::SessionClosed)
            }
        }
    }

    /// Waits until connected, up to `timeout`.
    pub fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.is_connected() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.is_connected()
    }

    /// Closes the connection for good: pending calls fail, no reconnect.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let current = self.inner.current();
        self.inner.set(State::Closed);
        if let Some(process) = current {
            process.close();
        }
    }
}

impl<C> fmt::Debug for Client<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.inner.addr)
            .field("backend", &self.inner.backend.name())
            .finish()
    }
}

impl<C> fmt::Debug for ClientBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("backend", &self.backend)
            .field("options", &self.options)
            .finish()
    }
}
