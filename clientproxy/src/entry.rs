//! One entry of the proxy's table: a node, its client (made on first
//! pick), its health and its counters.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Notify;
use walle_discovery::Node;
use walle_net::{Backend, Client, ClientOptions, NetError};
use walle_packet::Protocol;
use walle_process::{Process, Routes};

use crate::Health;
use crate::HealthOptions;
use crate::rng::SplitMix;

/// What an entry is doing, as [`EntryStats`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum EntryStatus {
    /// Online in discovery and connected.
    Connected,
    /// Online in discovery, with no connection (never picked yet, or its
    /// connection ended); the next pick dials it.
    Idle,
    /// Online, but put aside after failed connects until its backoff ends.
    Unhealthy,
    /// Offline in discovery: never picked.
    Offline,
}

/// One entry of a proxy, as [`ClientProxy::stats`](crate::ClientProxy::stats) reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct EntryStats {
    /// The node id.
    pub id: String,
    /// The node's address.
    pub addr: String,
    /// What it is doing.
    pub status: EntryStatus,
    /// Calls in flight on it.
    pub in_flight: usize,
    /// Calls sent to it (each attempt that got a connection counts).
    pub calls: u64,
    /// Attempts on it that failed: failed connects and failed calls.
    pub failures: u64,
}

/// How the proxy makes an entry's client.
pub(crate) struct Maker<C> {
    pub(crate) routes: Routes<C>,
    pub(crate) backend: Backend,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) options: ClientOptions,
}

impl<C: Clone + Send + Sync + 'static> Maker<C> {
    async fn connect(&self, endpoint: &str) -> Result<Client<C>, NetError> {
        let mut builder = Client::builder(endpoint, self.routes.clone())
            .backend(self.backend.clone())
            .options(
                self.options
                    .clone()
                    .lazy(false)
                    .reconnect(0, Duration::ZERO),
            );
        if let Some(protocol) = &self.protocol {
            builder = builder.protocol(protocol.clone());
        }
        builder.connect().await
    }
}

/// One node of the target.
pub(crate) struct Entry<C: Clone + Send + Sync + 'static> {
    pub(crate) id: String,
    pub(crate) node: Node,
    online: AtomicBool,
    removed: AtomicBool,
    /// Nanoseconds since the proxy's base instant until which the entry is
    /// put aside; 0 while healthy.
    until: AtomicU64,
    health: Mutex<Health>,
    client: Mutex<Option<Client<C>>>,
    dial: tokio::sync::Mutex<()>,
    in_flight: AtomicUsize,
    calls: AtomicU64,
    failures: AtomicU64,
    idle: Notify,
    metrics: EntryMetrics,
}

/// An entry's metrics, labelled by node id (`entry`):
/// `walle_proxy_in_flight` (gauge), `walle_proxy_calls_total` and
/// `walle_proxy_failures_total` (counters).
struct EntryMetrics {
    in_flight: metrics::Gauge,
    calls: metrics::Counter,
    failures: metrics::Counter,
}

impl EntryMetrics {
    fn new(id: &str) -> Self {
        EntryMetrics {
            in_flight: metrics::gauge!("walle_proxy_in_flight", "entry" => id.to_owned()),
            calls: metrics::counter!("walle_proxy_calls_total", "entry" => id.to_owned()),
            failures: metrics::counter!("walle_proxy_failures_total", "entry" => id.to_owned()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<C: Clone + Send + Sync + 'static> Entry<C> {
    pub(crate) fn new(node: Node) -> Self {
        let metrics = EntryMetrics::new(&node.id);
        Entry {
            id: node.id.clone(),
            online: AtomicBool::new(node.is_online()),
            node,
            removed: AtomicBool::new(false),
            until: AtomicU64::new(0),
            health: Mutex::new(Health::new()),
            client: Mutex::new(None),
            dial: tokio::sync::Mutex::new(()),
            in_flight: AtomicUsize::new(0),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            idle: Notify::new(),
            metrics,
        }
    }

    /// Whether `node` (an update of this entry's id) can keep this
    /// entry and its client: same network and address.
    pub(crate) fn same_endpoint(&self, node: &Node) -> bool {
        self.node.addr == node.addr && self.node.net == node.net
    }

    pub(crate) fn set_online(&self, online: bool) {
        self.online.store(online, Ordering::Relaxed);
    }

    /// Online and not put aside at `now` (nanoseconds since the base).
    pub(crate) fn is_usable(&self, now: u64) -> bool {
        if !self.online.load(Ordering::Relaxed) || self.removed.load(Ordering::Relaxed) {
            return false;
        }
        let until = self.until.load(Ordering::Relaxed);
        until == 0 || now >= until
    }

    /// When an online entry put aside at `now` comes back (nanoseconds
    /// since the base); `None` when it is not put aside.
    pub(crate) fn put_aside_until(&self, now: u64) -> Option<u64> {
        let until = self.until.load(Ordering::Relaxed);
        let online = self.online.load(Ordering::Relaxed) && !self.is_removed();
        (online && until > now).then_some(until)
    }

    /// SeqCst, as the store in `drain` and the count in `InFlight::drop`:
    /// each side stores then loads the other's flag, so one of them sees
    /// both and the drain's wakeup cannot be missed.
    pub(crate) fn is_removed(&self) -> bool {
        self.removed.load(Ordering::SeqCst)
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The endpoint to dial: the address, with the network as scheme
    /// unless it is plain tcp.
    fn endpoint(&self) -> String {
        match self.node.net.as_str() {
            "" | "tcp" => self.node.addr.clone(),
            net => format!("{net}://{}", self.node.addr),
        }
    }

    fn current(&self) -> Option<Process<C>> {
        lock(&self.client).as_ref().and_then(Client::process)
    }

    /// The entry's connection: the current one, or a fresh dial (one at a
    /// time; calls that pick the entry meanwhile wait for it). A failed
    /// dial puts the entry aside for a backoff.
    pub(crate) async fn process(
        &self,
        maker: &Maker<C>,
        health: &HealthOptions,
        base: Instant,
        rng: &SplitMix,
    ) -> Result<Option<Process<C>>, NetError> {
        if let Some(process) = self.current() {
            return Ok(Some(process));
        }
        let _dialing = self.dial.lock().await;
        if let Some(process) = self.current() {
            return Ok(Some(process));
        }
        // Another call's dial may have failed meanwhile: the entry is put
        // aside, and this call moves on rather than dial again at once.
        let now = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if !self.is_usable(now) {
            return Ok(None);
        }
        match maker.connect(&self.endpoint()).await {
            Ok(client) => {
                lock(&self.health).handle_connect_ok();
                self.until.store(0, Ordering::Relaxed);
                if self.is_removed() {
                    // Drained (or the proxy closed) while dialling: nothing
                    // would close this client later.
                    client.close();
                    return Ok(None);
                }
                let process = client.process();
                if let Some(old) = lock(&self.client).replace(client) {
                    old.close();
                }
                tracing::debug!(id = %self.id, addr = %self.node.addr, "entry connected");
                Ok(process)
            }
            Err(error) => {
                self.count_failure();
                let now = Instant::now();
                let wait = lock(&self.health).handle_connect_failed(now, health, rng.next_u64());
                let until = now.saturating_duration_since(base) + wait;
                let nanos = u64::try_from(until.as_nanos()).unwrap_or(u64::MAX).max(1);
                self.until.store(nanos, Ordering::Relaxed);
                tracing::warn!(id = %self.id, addr = %self.node.addr, %error, ?wait, "connect failed; entry put aside");
                Err(error)
            }
        }
    }

    /// Counts a call in flight on the entry (from before its dial) until
    /// the guard drops.
    pub(crate) fn start_call(&self) -> InFlight<'_, C> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.metrics.in_flight.increment(1.0);
        InFlight { entry: self }
    }

    /// Counts a call that got a connection to go out on.
    pub(crate) fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.metrics.calls.increment(1);
    }

    pub(crate) fn count_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.metrics.failures.increment(1);
    }

    /// Forgets the connection `used` when it is still the entry's (another
    /// call may have dialled a new one since), so the next pick dials.
    pub(crate) fn drop_client_of(&self, used: &Process<C>) {
        let mut slot = lock(&self.client);
        let stale = slot
            .as_ref()
            .is_some_and(|c| c.process().is_none_or(|p| p.ptr_eq(used)));
        if stale && let Some(client) = slot.take() {
            drop(slot);
            client.close();
        }
    }

    /// Closes and forgets the entry's connection.
    pub(crate) fn drop_client(&self) {
        if let Some(client) = lock(&self.client).take() {
            client.close();
        }
    }

    /// Marks the entry removed, waits (up to `bound`) for its calls in
    /// flight to end, then closes its client.
    pub(crate) async fn drain(&self, bound: Duration) {
        self.removed.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight() == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::warn!(id = %self.id, in_flight = self.in_flight(), "drain bound reached; closing");
                break;
            }
        }
        self.drop_client();
        tracing::debug!(id = %self.id, "removed entry closed");
    }

    pub(crate) fn stats(&self, now: u64) -> EntryStats {
        let status = if !self.online.load(Ordering::Relaxed) {
            EntryStatus::Offline
        } else if !self.is_usable(now) {
            EntryStatus::Unhealthy
        } else if self.current().is_some() {
            EntryStatus::Connected
        } else {
            EntryStatus::Idle
        };
        EntryStats {
            id: self.id.clone(),
            addr: self.node.addr.clone(),
            status,
            in_flight: self.in_flight(),
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

/// A call in flight on an entry.
pub(crate) struct InFlight<'a, C: Clone + Send + Sync + 'static> {
    entry: &'a Entry<C>,
}

impl<C: Clone + Send + Sync + 'static> Drop for InFlight<'_, C> {
    fn drop(&mut self) {
        self.entry.metrics.in_flight.decrement(1.0);
        if self.entry.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 && self.entry.is_removed() {
            self.entry.idle.notify_waiters();
        }
    }
}
