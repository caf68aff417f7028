//! Clients: eager or lazy dial, reconnects, pushes through a router.
//!
//! One state machine per client ([`state`]: idle, connecting, backoff,
//! connected, closed), fed by [`Inner::apply`] alone. A driver task on the
//! client's runtime ([`driver`]) runs what it asks for: an async dial
//! (through the backend's [`dial::Dialer`]), a backoff timer. Each dial
//! has an epoch, so news from an older connection cannot touch a newer
//! one; a connection's end comes back with its close reason ([`link`]).
//! The task holds the client weakly: dropping the last [`Client`] closes
//! it and ends the task.

mod builder;
mod dial;
mod driver;
mod kcp_dial;
mod live;
mod state;

pub use builder::{ClientBuilder, ClientOptions};
pub use state::ClientState;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tokio::sync::Notify;
use tracing::debug;
use walle_codec::Codec;
use walle_packet::{Protocol, Route, WalleFormat};
use walle_process::{CallOptions, CloseReason, Error, Process, Routes};

use crate::NetError;
use crate::conn::ProcessParts;
use crate::endpoint::{Endpoint, IntoEndpoint};
use crate::options::{Backend, later};
use dial::Dialer;
use live::Live;
use state::{Effect, Event, Machine};

/// Set by the driver task as it ends.
#[derive(Default)]
struct Ended {
    flag: AtomicBool,
    notify: Notify,
}

struct Inner<C: Clone + Send + Sync + 'static> {
    endpoint: Endpoint,
    /// Where the driver task runs, and with it the dials and the tasks of
    /// tokio-driven connections.
    runtime: tokio::runtime::Handle,
    /// The backend's name, for `Debug`.
    backend: &'static str,
    dialer: Box<dyn Dialer>,
    parts: ProcessParts<C>,
    options: ClientOptions,
    machine: Mutex<Machine<Live<C>>>,
    /// The connected process, as the machine last had it: the calls' fast
    /// path reads it without the machine's lock. Written by `apply_states`
    /// under that lock, so it follows the machine's order.
    connected: ArcSwapOption<Process<C>>,
    /// Woken after every event: the driver task and waiting callers.
    wake: Arc<Notify>,
    ended: Arc<Ended>,
    sessions: AtomicU64,
    /// An eager client's first dial has not ended yet (connected, failed
    /// or closed): its calls wait for it.
    first_dial: AtomicBool,
}

/// Where a caller waiting for a connection stands.
enum Ready<C> {
    Connected(Process<C>),
    Closed,
    /// The dials ran out of attempts; the last one's error.
    GaveUp(io::Error),
    Pending,
}

impl<C: Clone + Send + Sync + 'static> Inner<C> {
    fn machine(&self) -> MutexGuard<'_, Machine<Live<C>>> {
        self.machine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Feeds `event` to the state machine. True unless the event brought
    /// a connection that was turned away.
    fn apply(&self, event: Event<Live<C>>) -> bool {
        self.apply_states(event).2
    }

    /// Feeds `event` to the state machine: the one place the client's
    /// state changes. Closes a connection the machine hands back (outside
    /// the lock: that runs close callbacks, which feed events again) and
    /// wakes the driver and the waiting callers. Returns the state before
    /// and after, and whether a connection the event brought was kept.
    fn apply_states(&self, event: Event<Live<C>>) -> (ClientState, ClientState, bool) {
        let (from, effect, to) = {
            let mut machine = self.machine();
            let from = machine.state();
            let effect = machine.handle(event, Instant::now());
            let live = machine.connection().map(|l| &l.process);
            let same = match (live, &*self.connected.load()) {
                (Some(live), Some(seen)) => live.ptr_eq(seen),
                (None, None) => true,
                _ => false,
            };
            if !same {
                self.connected.store(live.map(|p| Arc::new(p.clone())));
            }
            (from, effect, machine.state())
        };
        if from != to {
            debug!(endpoint = %self.endpoint, ?from, ?to, "client state");
            if from == ClientState::Connecting || to == ClientState::Closed {
                self.first_dial.store(false, Ordering::Relaxed);
            }
        }
        self.wake.notify_waiters();
        let kept = match effect {
            Effect::None => true,
            Effect::Close(link) => {
                link.process.close();
                false
            }
        };
        (from, to, kept)
    }

    /// The live connection, if its process is still open.
    fn live<T>(&self, f: impl FnOnce(&Live<C>) -> T) -> Option<T> {
        self.machine()
            .connection()
            .filter(|l| !l.process.is_closed())
            .map(f)
    }

    /// `f` on the connected process, if it is still open, read without
    /// the machine's lock (the calls' fast path).
    fn connected<T>(&self, f: impl FnOnce(&Process<C>) -> T) -> Option<T> {
        self.connected
            .load()
            .as_deref()
            .filter(|p| !p.is_closed())
            .map(f)
    }

    fn current(&self) -> Option<Process<C>> {
        self.connected(Process::clone)
    }

    /// The connection if there is one; starts a dial if idle (unless the
    /// dials gave up since round `round`).
    fn poll_ready(&self, round: u64) -> Ready<C> {
        {
            let machine = self.machine();
            if let Some(link) = machine.connection().filter(|l| !l.process.is_closed()) {
                return Ready::Connected(link.process.clone());
            }
            match machine.state() {
                ClientState::Closed => return Ready::Closed,
                ClientState::Idle if machine.gave_up() > round => {
                    return Ready::GaveUp(machine.last_error());
                }
                ClientState::Idle => {}
                _ => return Ready::Pending,
            }
        }
        self.apply(Event::Want);
        Ready::Pending
    }

    /// Waits up to `wait` for a connection (`None`: for as long as the
    /// dials go on).
    async fn ready(&self, wait: Option<Duration>) -> Ready<C> {
        let deadline = wait.and_then(|w| Instant::now().checked_add(w));
        let round = self.machine().gave_up();
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.poll_ready(round) {
                Ready::Pending => {}
                done => return done,
            }
            match deadline {
                None => notified.await,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ready::Pending;
                    }
                    let _ = tokio::time::timeout(left, notified).await;
                }
            }
        }
    }

    /// Dials unless lazy, and waits for the outcome.
    async fn establish(&self) -> Result<(), NetError> {
        if self.options.lazy {
            return Ok(());
        }
        match self.ready(None).await {
            Ready::Connected(_) | Ready::Pending => Ok(()),
            Ready::Closed => Err(NetError::Stopped),
            Ready::GaveUp(e) => Err(NetError::Io(e)),
        }
    }
}

impl<C: Clone + Send + Sync + 'static> Drop for Inner<C> {
    /// The last handle is gone: close the connection; the driver task,
    /// holding only a weak reference, ends.
    fn drop(&mut self) {
        self.apply(Event::Close);
    }
}

/// The error of a call on a closed client.
fn closed_error() -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::NotConnected,
        "the client is closed",
    ))
}

/// A client connection with its own process: calls, notifies, and a
/// router for what the server pushes (BEHAVIOURS 39-41).
///
/// Clones share one connection. Dropping the last clone closes it and
/// stops reconnecting.
pub struct Client<C: Clone + Send + Sync + 'static> {
    inner: Arc<Inner<C>>,
}

impl<C: Clone + Send + Sync + 'static> Clone for Client<C> {
    fn clone(&self) -> Self {
        Client {
            inner: self.inner.clone(),
        }
    }
}

impl<C: Clone + Send + Sync + 'static> Client<C> {
    /// Starts building a client of `endpoint` (an [`Endpoint`], a string
    /// such as `"tcp://host:port"` or `"host:port"`, a socket address)
    /// whose pushed messages go to `routes`. A string that is not an
    /// endpoint, or one the backend cannot dial, fails the build. A bare
    /// `host:port`, a `(host, port)` pair or a socket address names no
    /// transport: it is dialled over the backend's (tcp, or kcp for
    /// [`Backend::kcp`]).
    pub fn builder(endpoint: impl IntoEndpoint, routes: impl Into<Routes<C>>) -> ClientBuilder<C> {
        ClientBuilder {
            endpoint: endpoint.into_endpoint().map_err(NetError::from),
            backend: Backend::default(),
            protocol: Protocol::new(WalleFormat::new()),
            routes: routes.into(),
            options: ClientOptions::default(),
            pool: None,
            dispatcher: None,
        }
    }

    /// The server's endpoint, as given to the builder.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The address the current connection reached (the endpoint's host
    /// resolved at its dial), if connected.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.inner.live(|l| l.peer)
    }

    /// Why the latest connection closed: `None` before the first one
    /// closes. Kept across reconnects (it stays while the next connection
    /// is up) and after [`close`](Self::close) (`Local`, once the
    /// connection it closed is gone). From the client's side a server
    /// that closes the session or stops is `PeerClosed`; a broken link is
    /// `Io`, a silent one `Silent`, bad input from the server `Malformed`.
    /// Reconnects follow the configured policy whatever the reason.
    pub fn last_close_reason(&self) -> Option<CloseReason> {
        self.inner.machine().last_close().cloned()
    }

    /// What the client is doing now.
    pub fn state(&self) -> ClientState {
        self.inner.machine().state()
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

    /// Calls the server with options. While not connected the call waits
    /// for the connection up to `wait_connected` (and the call's own
    /// timeout; an eager client's first dial, made when it was built inside
    /// a runtime, is waited for up to twice `connect_timeout`: dial and
    /// setup), then fails with `SessionClosed`; it fails at once with an
    /// io error if the client is closed (`NotConnected`) or its dials ran
    /// out of attempts (the last dial's error).
    pub async fn call_with<'r, Req, Resp>(
        &self,
        route: impl Into<Route<'r>>,
        req: &Req,
        mut options: CallOptions<'_>,
    ) -> Result<Resp, Error>
    where
        C: Codec<Req> + Codec<Resp> + Unpin,
    {
        let route = route.into();
        // Connected: straight to the process, without the machine's lock,
        // the clock or a wake-up registration.
        let fast = self.inner.connected(|p| p.call_with(route, req, options));
        if let Some(call) = fast {
            return call.await;
        }
        let started = Instant::now();
        let mut wait = self.inner.options.wait_connected;
        if self.inner.first_dial.load(Ordering::Relaxed) {
            // An eager client built inside a runtime whose first dial is
            // still under way: as good as connected at build, so its calls
            // wait for that dial as `build` would have outside a runtime.
            let dial = self.inner.options.connect_timeout.saturating_mul(2);
            wait = wait.max(dial);
        }
        if let Some(timeout) = options.timeout {
            wait = wait.min(timeout);
        }
        let process = match self.inner.ready(Some(wait)).await {
            Ready::Connected(process) => process,
            Ready::Pending => return Err(Error::SessionClosed),
            Ready::Closed => return Err(closed_error()),
            Ready::GaveUp(e) => return Err(Error::Io(e)),
        };
        if let Some(timeout) = options.timeout.as_mut() {
            let waited = started.elapsed();
            if !waited.is_zero() {
                *timeout = timeout.saturating_sub(waited).max(Duration::from_millis(1));
            }
        }
        process.call_with(route, req, options).await
    }

    /// Sends a one-way message; fails with `SessionClosed` while not
    /// connected (a lazy client starts dialing), with `NotConnected` once
    /// closed.
    pub fn notify<'r, M>(&self, route: impl Into<Route<'r>>, msg: &M) -> Result<(), Error>
    where
        C: Codec<M>,
    {
        let route = route.into();
        if let Some(sent) = self.inner.connected(|p| p.notify(route, msg)) {
            return sent;
        }
        let round = self.inner.machine().gave_up();
        match self.inner.poll_ready(round) {
            Ready::Connected(process) => process.notify(route, msg),
            Ready::Closed => Err(closed_error()),
            Ready::GaveUp(_) | Ready::Pending => Err(Error::SessionClosed),
        }
    }

    /// Waits until connected, up to `timeout`, blocking this thread (not
    /// for async code: calls there wait as configured).
    pub fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = later(Instant::now(), timeout);
        while Instant::now() < deadline {
            if self.is_connected() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.is_connected()
    }

    /// Closes the client for good, whatever it is doing: the connection
    /// closes and its pending calls fail, a dial under way is abandoned
    /// (its socket dropped), no reconnect follows.
    pub fn close(&self) {
        self.inner.apply(Event::Close);
    }

    /// Resolves once the client is closed (by [`close`](Self::close) or
    /// by dropping its last handle) and has stopped dialling for good.
    /// Holding it does not keep the client open.
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let ended = self.inner.ended.clone();
        async move {
            loop {
                let notified = ended.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if ended.flag.load(Ordering::Acquire) {
                    return;
                }
                notified.await;
            }
        }
    }
}

impl<C: Clone + Send + Sync + 'static> fmt::Debug for Client<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &format_args!("{}", self.inner.endpoint))
            .field("backend", &self.inner.backend)
            .field("state", &self.state())
            .finish()
    }
}
