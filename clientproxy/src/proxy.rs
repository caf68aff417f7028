//! The client proxy: calls a service by name over the entries of a
//! discovery target.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use walle_codec::Codec;
use walle_net::Backend;
use walle_packet::Route;
use walle_process::{Error as CallError, Routes};

use crate::entry::{Entry, EntryStats};
use crate::table::{Shared, View};
use crate::{ClientProxyBuilder, Error, ProxyCallOptions, ProxyOptions};

/// Calls to the nodes of a discovery target, balanced, with failover.
///
/// Clones share one table of entries, one balancer and one discovery
/// watch. It connects to an entry only when a call first picks it, never
/// picks an offline entry or one put aside after a failed connect, and
/// fails a call that never reached the wire over to another entry. When
/// the last clone drops, the watch ends and the clients close.
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use walle_clientproxy::{ClientProxy, EntryStatus};
/// use walle_codec::RawCodec;
/// use walle_discovery::{Drivers, Node};
/// use walle_net::{Backend, Server};
/// use walle_process::{Context, Router};
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let mut router = Router::new(RawCodec);
/// router.route("echo", |_: &mut Context, req: Bytes| Ok(req))?;
/// let server = Server::builder(router).backend(Backend::tcp()).bind("127.0.0.1:0")?;
/// let node = Node::new(server.local_addr().to_string()).with_id("echo-1");
/// let _reg = Drivers::new().register("mem:///doc/echo", node, Duration::from_secs(3)).await?;
///
/// let proxy = ClientProxy::builder("mem:///doc/echo", Router::new(RawCodec))
///     .backend(Backend::tcp())
///     .connect()
///     .await?;
/// assert_eq!(proxy.stats()[0].status, EntryStatus::Idle); // lazy
/// let answer: Bytes = proxy.call("echo", &Bytes::from_static(b"hi")).await?;
/// assert_eq!(answer, Bytes::from_static(b"hi"));
/// assert_eq!(proxy.stats()[0].status, EntryStatus::Connected);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ClientProxy<C: Clone + Send + Sync + 'static> {
    pub(crate) shared: Arc<Shared<C>>,
}

impl<C: Clone + Send + Sync + 'static> Clone for ClientProxy<C> {
    fn clone(&self) -> Self {
        ClientProxy {
            shared: self.shared.clone(),
        }
    }
}

impl<C: Clone + Send + Sync + 'static> ClientProxy<C> {
    pub(crate) fn from_shared(shared: Arc<Shared<C>>) -> Self {
        ClientProxy { shared }
    }

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

    /// Closes the proxy for every clone: calls from now on fail with
    /// [`Error::Closed`], the discovery watch ends, and each entry's client
    /// closes once its calls in flight end (bounded by
    /// [`ProxyOptions::drain`](crate::ProxyOptions::drain)). Resolves when
    /// all are closed; a second close resolves at once.
    pub async fn close(&self) {
        self.shared.close().await;
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared
            .closed
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Resolves at the next change of membership or of an entry's online
    /// state in discovery (not at a connect or the end of a backoff).
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
        let mut tried: Vec<Arc<Entry<C>>> = Vec::new();
        let mut last: Option<Error> = None;
        loop {
            let Some(entry) = self.pick(options.key, &tried, last.is_none()).await else {
                return Err(self.none_left(last));
            };
            // Failed entries are kept out of the next picks; a call that
            // succeeds at once allocates nothing for this.
            let give_up = tried.len() >= self.shared.options.max_failover as usize;
            // Counted from before the dial, so a drain that starts meanwhile
            // waits for this call.
            let in_flight = entry.start_call();
            let failed = match self.connect(&entry).await {
                Ok(Some(process)) => {
                    entry.count_call();
                    let call = process.call_with(route, req, options.call);
                    let on_wire = call.seq().is_some();
                    let error = match call.await {
                        Ok(resp) => return Ok(resp),
                        Err(error) => error,
                    };
                    entry.count_failure();
                    let lost = matches!(error, CallError::SessionClosed | CallError::Io(_));
                    if lost {
                        entry.drop_client_of(&process);
                    }
                    let retry = if on_wire {
                        options.idempotent && (lost || matches!(error, CallError::Timeout))
                    } else {
                        lost || matches!(error, CallError::Overloaded(_))
                    };
                    tracing::debug!(id = %entry.id, %error, on_wire, retry, "call failed");
                    if !retry {
                        return Err(Error::Call(error));
                    }
                    Error::Call(error)
                }
                Ok(None) => self.no_node(),
                Err(error) => error,
            };
            if give_up {
                return Err(failed);
            }
            drop(in_flight);
            tried.push(entry);
            last = Some(failed);
        }
    }

    /// Sends a one-way message to the entry the balancer picks (dialing
    /// it first if needed); fails over like a call that never reached the
    /// wire.
    pub async fn notify<'r, M>(&self, route: impl Into<Route<'r>>, msg: &M) -> Result<(), Error>
    where
        C: Codec<M>,
    {
        self.notify_inner(None, route.into(), msg).await
    }

    /// [`notify`](Self::notify) with a balancing key, so a consistent-hash
    /// proxy sends one user's messages to the node of their calls.
    pub async fn notify_keyed<'r, M>(
        &self,
        key: &[u8],
        route: impl Into<Route<'r>>,
        msg: &M,
    ) -> Result<(), Error>
    where
        C: Codec<M>,
    {
        self.notify_inner(Some(key), route.into(), msg).await
    }

    async fn notify_inner<M>(
        &self,
        key: Option<&[u8]>,
        route: Route<'_>,
        msg: &M,
    ) -> Result<(), Error>
    where
        C: Codec<M>,
    {
        let mut tried: Vec<Arc<Entry<C>>> = Vec::new();
        let mut last: Option<Error> = None;
        loop {
            let Some(entry) = self.pick(key, &tried, last.is_none()).await else {
                return Err(self.none_left(last));
            };
            let give_up = tried.len() >= self.shared.options.max_failover as usize;
            let error = match self.connect(&entry).await {
                Ok(Some(process)) => match process.notify(route, msg) {
                    Ok(()) => return Ok(()),
                    Err(error @ (CallError::SessionClosed | CallError::Io(_))) => {
                        entry.drop_client_of(&process);
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
            tried.push(entry);
            last = Some(error);
        }
    }

    /// The error of a call that found no entry: closed, the last attempt's
    /// error, or no node.
    fn none_left(&self, last: Option<Error>) -> Error {
        if self.is_closed() {
            return Error::Closed {
                target: self.shared.target.clone(),
            };
        }
        last.unwrap_or_else(|| self.no_node())
    }

    fn no_node(&self) -> Error {
        Error::NoNode {
            target: self.shared.target.clone(),
        }
    }

    /// The entry's connection, or the connect error naming it.
    async fn connect(&self, entry: &Entry<C>) -> Result<Option<walle_process::Process<C>>, Error> {
        let shared = &self.shared;
        entry
            .process(
                &shared.maker,
                &shared.options.health,
                shared.base,
                &shared.rng,
            )
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
        tried: &[Arc<Entry<C>>],
        first: bool,
    ) -> Option<Arc<Entry<C>>> {
        let wait = if first {
            self.shared.options.wait_for_node
        } else {
            Duration::ZERO
        };
        // The common case, a usable entry at once, neither registers on
        // `changed` (a lock) nor reads the clock for a deadline.
        if let Some(entry) = self.pick_now(key, tried) {
            return Some(entry);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(entry) = self.pick_now(key, tried) {
                return Some(entry);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline || self.is_closed() {
                return None;
            }
            // A backoff ending is no event: wake when the first one ends.
            let next = match self.shared.next_backoff_end() {
                Some(wait) => deadline.min(now + wait),
                None => deadline,
            };
            let _ = tokio::time::timeout_at(next, changed).await;
        }
    }

    fn pick_now(&self, key: Option<&[u8]>, tried: &[Arc<Entry<C>>]) -> Option<Arc<Entry<C>>> {
        if self.is_closed() {
            return None;
        }
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
        // One read guard: a second one could wait behind a writer queued
        // after the first.
        let table = self.shared.table();
        f.debug_struct("ClientProxy")
            .field("target", &self.shared.target)
            .field("balancer", &table.balancer.name())
            .field("entries", &table.entries.len())
            .finish()
    }
}
