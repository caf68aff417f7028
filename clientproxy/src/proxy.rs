//! The client proxy: calls a service by name over the entries of a
//! discovery target.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use walle_codec::Codec;
use walle_discovery::Drivers;
use walle_net::{Backend, ClientOptions};
use walle_packet::{Protocol, Route};
use walle_process::{Error as CallError, Routes};

use crate::entry::{Entry, EntryStats, Maker};
use crate::rng::SplitMix;
use crate::table::{Shared, Table, View, follow};
use crate::{Balancer, Error, ProxyCallOptions, ProxyOptions, balancer_by_name};

/// Calls to the nodes of a discovery target, balanced, with failover.
///
/// Clones share one table of entries, one balancer and one discovery
/// watch. It connects to an entry only when a call first picks it, never
/// picks an offline entry or one put aside after a failed connect, and
/// fails a call that never reached the wire over to another entry. When
/// the last clone drops, the watch ends and the clients close.
pub struct ClientProxy<C: Clone + Send + Sync + 'static> {
    shared: Arc<Shared<C>>,
}

impl<C: Clone + Send + Sync + 'static> Clone for ClientProxy<C> {
    fn clone(&self) -> Self {
        ClientProxy {
            shared: self.shared.clone(),
        }
    }
}

/// Builds a [`ClientProxy`].
pub struct ClientProxyBuilder<C: Clone + Send + Sync + 'static> {
    target: String,
    routes: Routes<C>,
    backend: Backend,
    protocol: Option<Protocol>,
    options: ProxyOptions,
    drivers: Option<Drivers>,
    balancer: Option<Box<dyn Balancer>>,
}

impl<C: Clone + Send + Sync + 'static> ClientProxyBuilder<C> {
    /// Settings.
    pub fn options(mut self, options: ProxyOptions) -> Self {
        self.options = options;
        self
    }
    /// The options of each entry's client.
    pub fn client_options(mut self, options: ClientOptions) -> Self {
        self.options.client = options;
        self
    }
    /// The io backend of each entry's client (default: the event loop).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }
    /// The wire format pipeline (default: `walle`).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
        self
    }
    /// The drivers that resolve the target (default: [`Drivers::new`]).
    pub fn drivers(mut self, drivers: Drivers) -> Self {
        self.drivers = Some(drivers);
        self
    }
    /// A balancer of one's own, instead of the one named in the options.
    pub fn balancer(mut self, balancer: Box<dyn Balancer>) -> Self {
        self.balancer = Some(balancer);
        self
    }

    /// Resolves the target and starts following it; connects to nothing.
    /// Must run in a tokio runtime, where the discovery task lives.
    pub async fn connect(self) -> Result<ClientProxy<C>, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let balancer = match self.balancer {
            Some(balancer) => balancer,
            None => balancer_by_name(&self.options.balancer)?,
        };
        let drivers = self.drivers.unwrap_or_default();
        let discovery = drivers.resolve(&self.target).await?;
        let shutdown = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            target: self.target,
            table: RwLock::new(Table {
                entries: Vec::new(),
                balancer,
            }),
            changed: Notify::new(),
            maker: Maker {
                routes: self.routes,
                backend: self.backend,
                protocol: self.protocol,
                options: self.options.client.clone(),
            },
            options: self.options,
            rng: SplitMix::from_entropy(),
            base: Instant::now(),
            shutdown: shutdown.clone(),
        });
        shared.fill(discovery.nodes().values());
        tracing::debug!(target = %shared.target, entries = discovery.nodes().len(), "client proxy resolved");
        runtime.spawn(follow(Arc::downgrade(&shared), shutdown, discovery));
        Ok(ClientProxy { shared })
    }
}

impl<C: Clone + Send + Sync + 'static> ClientProxy<C> {
    /// Starts building a proxy of the discovery target URL `target`
    /// (`mem:///services/echo`, `static://host:port,host:port`, ...)
    /// whose clients route what servers push to `routes`.
    pub fn builder(
        target: impl Into<String>,
        routes: impl Into<Routes<C>>,
    ) -> ClientProxyBuilder<C> {
        ClientProxyBuilder {
            target: target.into(),
            routes: routes.into(),
            backend: Backend::default(),
            protocol: None,
            options: ProxyOptions::default(),
            drivers: None,
            balancer: None,
        }
    }

    /// The target URL.
    pub fn target(&self) -> &str {
        &self.shared.target
    }

    /// Each entry, in table order: state, calls in flight, calls, failures.
    pub fn stats(&self) -> Vec<EntryStats> {
        let now = self.shared.now();
        self.shared
            .table()
            .entries
            .iter()
            .map(|e| e.stats(now))
            .collect()
    }

    /// Resolves at the next change of membership or of an entry's state.
    pub fn changed(&self) -> impl Future<Output = ()> + '_ {
        self.shared.changed.notified()
    }

    /// Calls the service on the entry the balancer picks.
    pub async fn call<'r, Req, Resp>(
        &self,
        route: impl Into<Route<'r>>,
        req: &Req,
    ) -> Result<Resp, Error>
    where
        C: Codec<Req> + Codec<Resp> + Unpin,
    {
        self.call_with(route, req, ProxyCallOptions::default())
            .await
    }

    /// Calls with a balancing key (a consistent-hash balancer sends one
    /// key to one entry while the membership holds).
    pub async fn call_keyed<'r, Req, Resp>(
        &self,
        key: &[u8],
        route: impl Into<Route<'r>>,
        req: &Req,
    ) -> Result<Resp, Error>
    where
        C: Codec<Req> + Codec<Resp> + Unpin,
    {
        self.call_with(route, req, ProxyCallOptions::default().key(key))
            .await
    }

    /// Calls with options. A call that never reached the wire (no
    /// connection, a refused connect, the entry gone) moves on to another
    /// entry, up to `max_failover` more; one that reached the wire and
    /// failed is retried only when marked idempotent.
    pub async fn call_with<'r, Req, Resp>(
        &self,
        route: impl Into<Route<'r>>,
        req: &Req,
        options: ProxyCallOptions<'_>,
    ) -> Result<Resp, Error>
    where
        C: Codec<Req> + Codec<Resp> + Unpin,
    {
        let route = route.into();
        let mut tried: Vec<usize> = Vec::new();
        let mut last: Option<Error> = None;
        loop {
            let Some(entry) = self.pick(options.key, &tried, last.is_none()).await else {
                return Err(last.unwrap_or_else(|| self.no_node()));
            };
            tried.push(Arc::as_ptr(&entry) as usize);
            let give_up = tried.len() > self.shared.options.max_failover as usize;
            let process = match self.connect(&entry).await {
                Ok(Some(process)) => process,
                Ok(None) => {
                    last = Some(self.no_node());
                    if give_up {
                        return Err(self.no_node());
                    }
                    continue;
                }
                Err(error) => {
                    if give_up {
                        return Err(error);
                    }
                    last = Some(error);
                    continue;
                }
            };
            let _in_flight = entry.start_call();
            let call = process.call_with(route, req, options.call);
            let on_wire = call.seq().is_some();
            match call.await {
                Ok(resp) => return Ok(resp),
                Err(error) => {
                    entry.count_failure();
                    let lost = matches!(error, CallError::SessionClosed | CallError::Io(_));
                    if lost {
                        entry.drop_client();
                    }
                    let retry = if on_wire {
                        options.idempotent && (lost || matches!(error, CallError::Timeout))
                    } else {
                        lost || matches!(error, CallError::Overloaded(_))
                    };
                    tracing::debug!(id = %entry.id, %error, on_wire, retry, "call failed");
                    if !retry || give_up {
                        return Err(Error::Call(error));
                    }
                    last = Some(Error::Call(error));
                }
            }
        }
    }

    /// Sends a one-way message to the entry the balancer picks (dialing
    /// it first if needed); fails over like a call that never reached the
    /// wire.
    pub async fn notify<'r, M>(&self, route: impl Into<Route<'r>>, msg: &M) -> Result<(), Error>
    where
        C: Codec<M>,
    {
        let route = route.into();
        let mut tried: Vec<usize> = Vec::new();
        let mut last: Option<Error> = None;
        loop {
            let Some(entry) = self.pick(None, &tried, last.is_none()).await else {
                return Err(last.unwrap_or_else(|| self.no_node()));
            };
            tried.push(Arc::as_ptr(&entry) as usize);
            let give_up = tried.len() > self.shared.options.max_failover as usize;
            let error = match self.connect(&entry).await {
                Ok(Some(process)) => match process.notify(route, msg) {
                    Ok(()) => return Ok(()),
                    Err(error @ (CallError::SessionClosed | CallError::Io(_))) => {
                        entry.drop_client();
                        Error::Call(error)
                    }
                    Err(error) => return Err(Error::Call(error)),
                },
                Ok(None) => self.no_node(),
                Err(error) => error,
            };
            if give_up {
                return Err(error);
            }
            last = Some(error);
        }
    }

    fn no_node(&self) -> Error {
        Error::NoNode {
            target: self.shared.target.clone(),
        }
    }

    /// The entry's connection, or the connect error naming it.
    async fn connect(&self, entry: &Entry<C>) -> Result<Option<walle_process::Process<C>>, Error> {
        let shared = &self.shared;
        let random = shared.rng.next_u64();
        entry
            .process(&shared.maker, &shared.options.health, shared.base, random)
            .await
            .map_err(|source| Error::Connect {
                id: entry.id.clone(),
                addr: entry.node.addr.clone(),
                source,
            })
    }

    /// The entry for the next attempt; on a first attempt with none
    /// usable, waits up to `wait_for_node` for one.
    async fn pick(
        &self,
        key: Option<&[u8]>,
        tried: &[usize],
        first: bool,
    ) -> Option<Arc<Entry<C>>> {
        let wait = if first {
            self.shared.options.wait_for_node
        } else {
            Duration::ZERO
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(entry) = self.pick_now(key, tried) {
                return Some(entry);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return None;
            }
            // A backoff ending is no event: look again now and then.
            let next = deadline.min(now + Duration::from_millis(20));
            let _ = tokio::time::timeout_at(next, changed).await;
        }
    }

    fn pick_now(&self, key: Option<&[u8]>, tried: &[usize]) -> Option<Arc<Entry<C>>> {
        let table = self.shared.table();
        let view = View {
            entries: &table.entries,
            now: self.shared.now(),
            tried,
        };
        let index = table.balancer.pick(key, &view)?;
        table
            .entries
            .get(index)
            .filter(|_| view.is_usable_at(index))
            .cloned()
    }
}

impl<C: Clone + Send + Sync + 'static> fmt::Debug for ClientProxy<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientProxy")
            .field("target", &self.shared.target)
            .field("balancer", &self.shared.table().balancer.name())
            .field("entries", &self.shared.table().entries.len())
            .finish()
    }
}

impl<C: Clone + Send + Sync + 'static> fmt::Debug for ClientProxyBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientProxyBuilder")
            .field("target", &self.target)
            .field("options", &self.options)
            .finish()
    }
}
