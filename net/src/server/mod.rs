//! Servers: one builder, any backend. The builder and the accept path
//! it installs live in `builder.rs` and `attach.rs`; here, the running
//! server: its sessions, pushes and stop.

mod attach;
mod builder;

pub use builder::ServerBuilder;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tracing::warn;
use walle_codec::Codec;
use walle_packet::{Protocol, Route, WalleFormat};
use walle_process::{CloseReason, HandlerError, Routes};

use crate::NetError;
use crate::conn::ProcessParts;
use crate::hub::Hub;
use crate::options::{Backend, ServerOptions};
use crate::session::SessionHandle;

/// Decides on each new session: `Err` refuses it (the connection is
/// closed, the reason logged); `Ok` admits it, perhaps with values set.
pub type SessionHook<C> = Arc<dyn Fn(&SessionHandle<C>) -> Result<(), HandlerError> + Send + Sync>;

/// A running backend.
pub(crate) trait Running: Send + Sync {
    fn local_addr(&self) -> SocketAddr;
    /// Counters of the backend.
    fn io_stats(&self) -> crate::IoStats {
        crate::IoStats::default()
    }
    /// Stops accepting, flushes queued writes for at most `drain`, closes
    /// every connection, and returns when the backend's threads are done.
    fn stop(&self, drain: Duration);
    /// True on one of the backend's own threads (a reactor, a runtime
    /// worker), which [`stop`](Running::stop) must not wait for.
    fn is_own_thread(&self) -> bool;
}

struct Shared<C> {
    hub: Hub<C>,
    parts: ProcessParts<C>,
    options: ServerOptions,
    on_session: Option<SessionHook<C>>,
    next_id: AtomicU64,
    /// Connections refused before they had a session.
    refused: AtomicU64,
    metrics: ServerMetrics,
    /// The backend's name, for the connections' spans.
    backend: &'static str,
}

impl<C> Drop for Shared<C> {
    /// The sessions still open lose their server: their close can no
    /// longer count them off the open-connections gauge, so it is done
    /// here (the closure each session holds stays small: idle sessions
    /// are many).
    fn drop(&mut self) {
        self.metrics.open.decrement(self.hub.count() as f64);
    }
}

/// A server's connection metrics, by backend (`backend` label):
/// `walle_connections_accepted_total`, `walle_connections_refused_total`
/// (counters) and `walle_connections_open` (gauge). Registered when the
/// server is built: install the recorder before.
pub(crate) struct ServerMetrics {
    pub(crate) accepted: metrics::Counter,
    pub(crate) refused: metrics::Counter,
    pub(crate) open: metrics::Gauge,
}

impl ServerMetrics {
    fn new(backend: &'static str) -> Self {
        ServerMetrics {
            accepted: metrics::counter!("walle_connections_accepted_total", "backend" => backend),
            refused: metrics::counter!("walle_connections_refused_total", "backend" => backend),
            open: metrics::gauge!("walle_connections_open", "backend" => backend),
        }
    }
}

/// Writes `frame` to each session; returns how many took it.
pub(crate) fn send_all<C: Clone + Send + Sync + 'static>(
    sessions: impl Iterator<Item = SessionHandle<C>>,
    frame: &Bytes,
) -> usize {
    sessions.filter(|h| h.send_frame(frame).is_ok()).count()
}

/// A running server. Dropping it stops it gracefully.
pub struct Server<C: Clone + Send + Sync + 'static> {
    shared: Arc<Shared<C>>,
    running: Arc<dyn Running>,
    backend: Backend,
    /// A stop started from one of the backend's own threads, running on a
    /// thread of its own; later callers wait for it.
    stopping: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl<C: Clone + Send + Sync + 'static> Server<C> {
    /// Starts building a server dispatching to `routes`.
    pub fn builder(routes: impl Into<Routes<C>>) -> ServerBuilder<C> {
        ServerBuilder {
            routes: routes.into(),
            backend: Backend::default(),
            protocol: Protocol::new(WalleFormat::new()),
            pool: None,
            dispatcher: None,
            load: None,
            options: ServerOptions::default(),
            on_session: None,
        }
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.running.local_addr()
    }

    /// The io backend's counters (the event loop's read buffers).
    pub fn io_stats(&self) -> crate::IoStats {
        self.running.io_stats()
    }

    /// The backend serving.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Connections refused before they got a session: over the accept
    /// limit, or with a process that could not be built. (A session the
    /// new-session hook refuses closes with [`CloseReason::Refused`].)
    pub fn refused_connections(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }

    /// Open sessions.
    pub fn session_count(&self) -> usize {
        self.shared.hub.len()
    }

    /// Places taken under the accept limit (sessions being set up count).
    pub fn admitted(&self) -> usize {
        self.shared.hub.admitted()
    }

    /// The session with id `id`.
    pub fn session(&self, id: u64) -> Option<SessionHandle<C>> {
        self.shared.hub.get(id)
    }

    /// The session bound to `user`.
    pub fn session_of_user(&self, user: u64) -> Option<SessionHandle<C>> {
        self.shared.hub.by_user(user)
    }

    /// Every open session.
    pub fn sessions(&self) -> Vec<SessionHandle<C>> {
        self.shared.hub.all()
    }

    /// Binds `user` to session `id`; the user's previous session, if any,
    /// is closed (BEHAVIOURS 37).
    pub fn bind_user(&self, user: u64, id: u64) -> Result<(), NetError> {
        self.shared.hub.bind(user, id)
    }

    /// Encodes a push to `route` once, as one frame shared by every target.
    pub fn encode_push<'r, M>(
        &self,
        route: impl Into<Route<'r>>,
        msg: &M,
    ) -> Result<Bytes, NetError>
    where
        C: Codec<M>,
    {
        let parts = &self.shared.parts;
        Ok(walle_process::encode_notify_frame(
            &parts.protocol,
            self.backend.frame_mode(),
            parts.routes.codec(),
            route.into(),
            msg,
        )?)
    }

    /// Pushes `msg` to every session `filter` keeps, encoding it once
    /// (BEHAVIOURS 36). Returns how many sessions took it.
    ///
    /// With an encoder that keeps per-connection state in the protocol
    /// (`AeadEncoder`), one frame cannot serve every session: each session
    /// then encodes its own.
    pub fn broadcast<'r, M>(
        &self,
        route: impl Into<Route<'r>>,
        msg: &M,
        filter: impl Fn(&SessionHandle<C>) -> bool,
    ) -> Result<usize, NetError>
    where
        C: Codec<M>,
    {
        let sessions = self.shared.hub.all().into_iter().filter(|h| filter(h));
        self.push_to(sessions, route.into(), msg)
    }

    /// Pushes `msg` to `sessions`: one frame encoded once for all, or,
    /// when an encoder of the protocol keeps per-connection state (a
    /// sealed stream's counter), one encoded by each session.
    fn push_to<M>(
        &self,
        sessions: impl Iterator<Item = SessionHandle<C>>,
        route: Route<'_>,
        msg: &M,
    ) -> Result<usize, NetError>
    where
        C: Codec<M>,
    {
        if self.shared.parts.protocol.per_connection() {
            return Ok(sessions.filter(|h| h.notify(route, msg).is_ok()).count());
        }
        let frame = self.encode_push(route, msg)?;
        Ok(send_all(sessions, &frame))
    }

    /// Pushes `msg` to the sessions with the given ids, encoding it once
    /// (per session with a per-connection encoder, as `broadcast`).
    pub fn multicast<'r, M>(
        &self,
        ids: &[u64],
        route: impl Into<Route<'r>>,
        msg: &M,
    ) -> Result<usize, NetError>
    where
        C: Codec<M>,
    {
        let sessions = ids.iter().filter_map(|&id| self.shared.hub.get(id));
        self.push_to(sessions, route.into(), msg)
    }

    /// Pushes `msg` to the sessions bound to the given users.
    pub fn multicast_users<'r, M>(
        &self,
        users: &[u64],
        route: impl Into<Route<'r>>,
        msg: &M,
    ) -> Result<usize, NetError>
    where
        C: Codec<M>,
    {
        let sessions = users.iter().filter_map(|&u| self.shared.hub.by_user(u));
        self.push_to(sessions, route.into(), msg)
    }

    /// Stops gracefully: no new connections, queued writes flushed (for
    /// at most the drain timeout), every session closed (BEHAVIOURS 38).
    ///
    /// Returns when the backend's threads are done, except in two cases.
    /// Called from one of them (a handler running inline on a reactor or
    /// a runtime worker, which cannot wait for itself), the stop runs on a
    /// thread of its own and this returns at once. Called from inside
    /// another tokio runtime, which must not block, the `tcp` backend's
    /// runtime winds down in the background after the sessions close.
    pub fn stop(&self) {
        let (running, shared) = (self.running.clone(), self.shared.clone());
        let stop = move || {
            running.stop(shared.options.drain_timeout);
            for session in shared.hub.all() {
                session.close_for(CloseReason::Stopped);
            }
        };
        if !self.running.is_own_thread() {
            stop();
            // A stop begun on a backend thread may still be under way. (The
            // lock is not held while stopping: a handler may call in.)
            let begun = self
                .stopping
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            // (Not if this is that thread, dropping the last handle.)
            if let Some(thread) = begun.filter(|t| t.thread().id() != std::thread::current().id()) {
                let _ = thread.join();
            }
            return;
        }
        let mut stopping = self.stopping.lock().unwrap_or_else(|e| e.into_inner());
        if stopping.is_some() {
            return; // already under way
        }
        match std::thread::Builder::new()
            .name("walle-stop".into())
            .spawn(stop)
        {
            Ok(thread) => *stopping = Some(thread),
            Err(e) => {
                warn!(error = %e, "cannot start the stopping thread; the server keeps running")
            }
        }
    }
}

impl<C: Clone + Send + Sync + 'static> Drop for Server<C> {
    fn drop(&mut self) {
        self.stop();
    }
}

impl<C: Clone + Send + Sync + 'static> fmt::Debug for Server<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.local_addr())
            .field("backend", &self.backend.name())
            .field("sessions", &self.session_count())
            .finish()
    }
}
