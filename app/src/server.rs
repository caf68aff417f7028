//! [`ServerService`]: a `walle_net` server as a [`Service`], registered in
//! discovery and stopped with the graceful sequence of BEHAVIOURS 61.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;
use walle_discovery::{Drivers, Node, Registration};
use walle_net::{Server, ServerBuilder};
use walle_process::LoadLimit;

use crate::{BoxFuture, PhaseResult, Service};

/// Where and how the server's node is published.
struct Publish {
    drivers: Drivers,
    target: String,
    node: Node,
    ttl: Duration,
}

/// Where a [`ServerService`] is bound, once started: a handle that
/// outlives moving the service into an [`App`](crate::App).
#[derive(Debug, Clone, Default)]
pub struct BoundAddr(Arc<(OnceLock<SocketAddr>, Notify)>);

impl BoundAddr {
    /// The address, if bound yet.
    pub fn get(&self) -> Option<SocketAddr> {
        self.0.0.get().copied()
    }

    /// Waits up to `within` for the address; `None` if the service was
    /// not bound by then.
    pub async fn wait(&self, within: Duration) -> Option<SocketAddr> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            // Created before the look: a bind meanwhile still wakes it.
            let bound = self.0.1.notified();
            if let Some(addr) = self.get() {
                return Some(addr);
            }
            if tokio::time::timeout_at(deadline, bound).await.is_err() {
                return self.get();
            }
        }
    }

    fn set(&self, addr: SocketAddr) {
        let _ = self.0.0.set(addr);
        self.0.1.notify_waiters();
    }
}

/// A server as a [`Service`]: `start` binds the address and serves, then
/// (when [`register`](Self::register)ed) publishes its node under a
/// discovery target. `stop` runs BEHAVIOURS 61 in order:
///
/// 1. publish the node offline, so proxies stop picking it;
/// 2. wait [`offline_grace`](Self::offline_grace) for them to see it (the
///    server still serves the calls already sent its way);
/// 3. wait (up to [`drain`](Self::drain)) until no request is in flight:
///    every handler that is running, inline or on a dispatcher, has
///    answered;
/// 4. stop the server: no new connections, queued writes flushed within its
///    `drain_timeout`, sessions closed;
/// 5. deregister the node.
///
/// The server cannot see what the proxies saw: the grace is the bound on
/// how long discovery takes to tell them (an etcd watch on a LAN: well
/// under a second). The app's stop timeout for this service should cover
/// the grace, the drain and the server's flush.
pub struct ServerService<C: Clone + Send + Sync + 'static> {
    name: String,
    builder: Option<ServerBuilder<C>>,
    addr: String,
    publish: Option<Publish>,
    offline_grace: Duration,
    drain: Duration,
    /// Counts the requests in flight across the server's sessions.
    load: Arc<LoadLimit>,
    server: Option<Server<C>>,
    registration: Option<Registration>,
    bound: BoundAddr,
}

impl<C: Clone + Send + Sync + 'static> fmt::Debug for ServerService<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerService")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("target", &self.publish.as_ref().map(|p| &p.target))
            .field("offline_grace", &self.offline_grace)
            .field("drain", &self.drain)
            .field("in_flight", &self.load.current())
            .field("bound", &self.bound.get())
            .finish()
    }
}

impl<C: Clone + Send + Sync + 'static> ServerService<C> {
    /// A service named `name` that binds `builder` on `addr` when started.
    /// The builder's [`load_limit`](ServerBuilder::load_limit), if it has
    /// one, also counts the requests a stop waits for; without one the
    /// service gives it an unbounded one that only counts.
    pub fn new(
        name: impl Into<String>,
        builder: ServerBuilder<C>,
        addr: impl Into<String>,
    ) -> Self {
        let (builder, load) = match builder.current_load_limit() {
            Some(load) => {
                let load = load.clone();
                (builder, load)
            }
            None => {
                let load = LoadLimit::new(0);
                (builder.load_limit(load.clone()), load)
            }
        };
        ServerService {
            name: name.into(),
            builder: Some(builder),
            addr: addr.into(),
            publish: None,
            offline_grace: Duration::from_secs(1),
            drain: Duration::from_secs(5),
            load,
            server: None,
            registration: None,
            bound: BoundAddr::default(),
        }
    }

    /// Publishes `node` under the discovery target URL `target` (through
    /// `drivers`) once bound, with `ttl`. A node with an empty address gets
    /// the bound one.
    pub fn register(
        mut self,
        drivers: Drivers,
        target: impl Into<String>,
        node: Node,
        ttl: Duration,
    ) -> Self {
        self.publish = Some(Publish {
            drivers,
            target: target.into(),
            node,
            ttl,
        });
        self
    }

    /// How long `stop` waits between publishing the node offline and
    /// stopping the server, so proxies see it first. Default 1 s.
    pub fn offline_grace(mut self, grace: Duration) -> Self {
        self.offline_grace = grace;
        self
    }

    /// How long `stop` waits for the requests in flight to be answered
    /// before it stops the server anyway. Default 5 s.
    pub fn drain(mut self, bound: Duration) -> Self {
        self.drain = bound;
        self
    }

    /// The bound address, once started: a handle that outlives moving the
    /// service into an [`App`](crate::App).
    pub fn bound_addr(&self) -> BoundAddr {
        self.bound.clone()
    }

    /// Requests in flight on the server now.
    pub fn in_flight(&self) -> usize {
        self.load.current()
    }

    /// Waits until no request is in flight, or the drain bound. Polled: a
    /// count of requests has no wakeup, and this runs once per stop.
    async fn drain_requests(&self) {
        let deadline = tokio::time::Instant::now() + self.drain;
        let mut in_flight = self.load.current();
        if in_flight > 0 {
            tracing::info!(service = %self.name, in_flight, "waiting for requests in flight");
        }
        while in_flight > 0 {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(service = %self.name, in_flight, bound = ?self.drain, "drain bound reached; stopping with requests in flight");
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            in_flight = self.load.current();
        }
    }

    async fn start_inner(&mut self) -> PhaseResult {
        let builder = self.builder.take().ok_or("server already started once")?;
        let server = builder.bind(self.addr.as_str())?;
        let addr = server.local_addr();
        self.bound.set(addr);
        tracing::info!(service = %self.name, %addr, "server bound");
        if let Some(publish) = &self.publish {
            let mut node = publish.node.clone();
            if node.addr.is_empty() {
                node.addr = addr.to_string();
            }
            match publish
                .drivers
                .register(&publish.target, node, publish.ttl)
                .await
            {
                Ok(registration) => self.registration = Some(registration),
                Err(e) => {
                    // This service is not stopped by the app's rollback (it
                    // did not start), so it stops its own server.
                    stop_server(server).await;
                    return Err(e.into());
                }
            }
        }
        self.server = Some(server);
        Ok(())
    }

    async fn stop_inner(&mut self) -> PhaseResult {
        let mut first_error: Option<walle_discovery::Error> = None;
        if let Some(registration) = self.registration.as_mut() {
            match registration.offline().await {
                Ok(()) => {
                    tracing::info!(service = %self.name, grace = ?self.offline_grace, "node offline; waiting for proxies");
                    tokio::time::sleep(self.offline_grace).await;
                }
                Err(e) => {
                    tracing::warn!(service = %self.name, error = %e, "cannot publish the node offline");
                    first_error = Some(e);
                }
            }
        }
        if self.server.is_some() {
            self.drain_requests().await;
        }
        if let Some(server) = self.server.take() {
            stop_server(server).await;
            tracing::info!(service = %self.name, "server stopped");
        }
        if let Some(registration) = self.registration.take()
            && let Err(e) = registration.deregister().await
        {
            tracing::warn!(service = %self.name, error = %e, "cannot deregister the node");
            first_error.get_or_insert(e);
        }
        first_error.map_or(Ok(()), |e| Err(e.into()))
    }
}

/// Stops a server off the async threads: a stop waits for the backend's
/// threads.
async fn stop_server<C: Clone + Send + Sync + 'static>(server: Server<C>) {
    let stopping = tokio::task::spawn_blocking(move || {
        server.stop();
        drop(server);
    });
    if let Err(e) = stopping.await {
        tracing::warn!(error = %e, "the server's stop did not complete");
    }
}

impl<C: Clone + Send + Sync + 'static> Service for ServerService<C> {
    fn name(&self) -> &str {
        &self.name
    }
    fn start(&mut self) -> BoxFuture<'_, PhaseResult> {
        Box::pin(self.start_inner())
    }
    fn stop(&mut self) -> BoxFuture<'_, PhaseResult> {
        Box::pin(self.stop_inner())
    }
    fn finish(&mut self) -> BoxFuture<'_, PhaseResult> {
        Box::pin(async move {
            // Only after a cut stop: whatever is left goes now.
            if let Some(server) = self.server.take() {
                stop_server(server).await;
            }
            if let Some(registration) = self.registration.take() {
                registration.deregister().await?;
            }
            Ok(())
        })
    }
}
