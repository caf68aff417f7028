//! Building a client: its settings and its builder.

use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use walle_mempool::Pool;
use walle_packet::Protocol;
use walle_process::{Dispatch, Routes};

use super::state::{Event, Machine, Policy};
use super::{Client, Ended, Inner, dial, driver};
use crate::conn::ProcessParts;
use crate::endpoint::Endpoint;
use crate::options::{Backend, ConnOptions, millis};
use crate::{NetError, tcp};

/// Settings of a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Dial on first use instead of at build.
    pub lazy: bool,
    /// Reconnect attempts after a disconnect or failed dial: 0 never, N up
    /// to N in a row, negative forever.
    pub reconnect: i32,
    /// Wait before the first reconnect attempt; it doubles with each
    /// failed attempt in a row, up to `reconnect_max_wait`, and each wait
    /// is jittered into its upper half.
    #[serde(with = "millis")]
    pub reconnect_wait: Duration,
    /// The longest wait between reconnect attempts.
    #[serde(with = "millis")]
    pub reconnect_max_wait: Duration,
    /// Bound of one dial.
    #[serde(with = "millis")]
    pub connect_timeout: Duration,
    /// How long a call waits for a connection; 0: fail at once with
    /// `SessionClosed` while not connected.
    #[serde(with = "millis")]
    pub wait_connected: Duration,
    /// Run the client's dials and its connections' io on the multi-thread
    /// tokio runtime the client is built in (`build` called inside it, or
    /// `connect`): calls and their io then share that runtime's threads,
    /// with no hand-over from one thread to another for each request and
    /// answer. On the event loop backend the connections are then driven
    /// by that runtime (as the tcp backend's are, with the same TLS
    /// settings) instead of by the shared client reactors: with the calls
    /// on the runtime's threads, that is the faster of the two (the
    /// throughput bench's `client` and `client-loops` entries). Off (the
    /// default), built outside a runtime, or inside a current-thread one:
    /// dials on walle's shared client runtime (two threads), and io on the
    /// backend's own (the event loop's client reactors, or that runtime).
    ///
    /// The runtime must have io and timers enabled, and must outlive the
    /// client: its tasks are the client's, and once that runtime has shut
    /// down the client has none left (it no longer reconnects, and calls
    /// then under way may never end). A server's handlers run on the
    /// server's runtime, so do not build such a client there.
    pub caller_runtime: bool,
    /// Per-connection settings.
    pub conn: ConnOptions,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            lazy: false,
            reconnect: 0,
            reconnect_wait: Duration::from_secs(1),
            reconnect_max_wait: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(3),
            wait_connected: Duration::ZERO,
            caller_runtime: false,
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
    /// Sets the longest wait between reconnect attempts.
    pub fn reconnect_max_wait(mut self, wait: Duration) -> Self {
        self.reconnect_max_wait = wait;
        self
    }
    /// Sets the bound of one dial (and of the connection's setup).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
    /// Sets how long calls wait for a connection.
    pub fn wait_connected(mut self, wait: Duration) -> Self {
        self.wait_connected = wait;
        self
    }
    /// Sets whether the client runs on the runtime it is built in (see
    /// [`caller_runtime`](Self::caller_runtime)).
    pub fn caller_runtime(mut self, on: bool) -> Self {
        self.caller_runtime = on;
        self
    }
    /// Sets the per-connection settings.
    pub fn conn(mut self, conn: ConnOptions) -> Self {
        self.conn = conn;
        self
    }
}

/// Builds a [`Client`].
pub struct ClientBuilder<C> {
    pub(super) endpoint: Result<Endpoint, NetError>,
    pub(super) backend: Backend,
    pub(super) protocol: Protocol,
    pub(super) routes: Routes<C>,
    pub(super) options: ClientOptions,
    pub(super) pool: Option<Arc<dyn Pool>>,
    pub(super) dispatcher: Option<Arc<dyn Dispatch>>,
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
    /// Where handlers of pushed messages run: a [`Dispatcher`](crate::Dispatcher) or any
    /// other [`Dispatch`] (default: inline on the io threads, async
    /// handlers on the tokio runtime current there, if any).
    pub fn dispatcher(mut self, dispatcher: Arc<dyn Dispatch>) -> Self {
        self.dispatcher = Some(dispatcher);
        self
    }

    /// The client. Unless lazy, it dials now and waits until connected,
    /// or fails once its reconnect attempts ran out (with `reconnect`
    /// negative it waits until the server is up). Fails at once when the
    /// endpoint given to [`Client::builder`] did not parse
    /// ([`NetError::Endpoint`]) or names a scheme the backend cannot dial
    /// ([`NetError::UnsupportedScheme`]).
    ///
    /// Called inside a tokio runtime, it never blocks: it starts the dial
    /// and returns at once, and calls wait for the connection as
    /// configured. Use [`connect`](Self::connect) there to wait for it.
    pub fn build(self) -> Result<Client<C>, NetError> {
        let client = self.start()?;
        if client.inner.options.lazy {
            return Ok(client);
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            client.inner.apply(Event::Want);
        } else {
            tcp::client_runtime().block_on(client.inner.establish())?;
        }
        Ok(client)
    }

    /// The client, from async code. Unless lazy, it dials now and
    /// resolves once connected, or fails once its reconnect attempts ran
    /// out.
    pub async fn connect(self) -> Result<Client<C>, NetError> {
        let client = self.start()?;
        client.inner.establish().await?;
        Ok(client)
    }

    /// The client, idle, with its driver task started.
    fn start(self) -> Result<Client<C>, NetError> {
        let endpoint = self.endpoint?.for_transport(self.backend.transport());
        let backend = self
            .backend
            .with_max_frame(self.protocol.framing().max_frame);
        // A current-thread runtime's one thread may block on the very
        // client whose tasks it would have to run.
        let caller = tokio::runtime::Handle::try_current().ok().filter(|caller| {
            self.options.caller_runtime
                && caller.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        });
        let dialer = dial::dialer_for(&backend, &endpoint, caller.is_some())?;
        let parts = ProcessParts {
            protocol: self.protocol,
            routes: self.routes,
            pool: self.pool,
            dispatcher: self.dispatcher,
            load: None,
            template: Default::default(),
        };
        parts.check(&backend)?;
        let mut options = self.options;
        options.conn.client = true;
        let policy = Policy {
            attempts: options.reconnect,
            base: options.reconnect_wait,
            cap: options.reconnect_max_wait,
        };
        let eager = !options.lazy;
        let runtime = caller.unwrap_or_else(|| tcp::client_runtime().handle().clone());
        let inner = Arc::new(Inner {
            runtime,
            endpoint,
            backend: backend.name(),
            dialer,
            parts,
            options,
            machine: Mutex::new(Machine::new(policy)),
            connected: Default::default(),
            wake: Arc::new(Notify::new()),
            ended: Arc::new(Ended::default()),
            sessions: AtomicU64::new(1),
            first_dial: AtomicBool::new(eager),
        });
        driver::spawn(&inner);
        Ok(Client { inner })
    }
}

impl<C> fmt::Debug for ClientBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoint", &self.endpoint)
            .field("backend", &self.backend)
            .field("options", &self.options)
            .finish()
    }
}
