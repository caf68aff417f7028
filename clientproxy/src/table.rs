//! The proxy's entry table and the task that keeps it in step with
//! discovery.

use std::sync::{Arc, RwLock, RwLockReadGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use walle_discovery::{Change, Discovery, Node};

use crate::entry::{Entry, Maker};
use crate::rng::SplitMix;
use crate::{Balancer, Entries, ProxyOptions};

/// The entries, in the order the balancer was last told, and the balancer.
pub(crate) struct Table<C: Clone + Send + Sync + 'static> {
    pub(crate) entries: Vec<Arc<Entry<C>>>,
    pub(crate) balancer: Box<dyn Balancer>,
}

impl<C: Clone + Send + Sync + 'static> Table<C> {
    fn tell_balancer(&mut self) {
        let ids: Vec<&str> = self.entries.iter().map(|e| e.id.as_str()).collect();
        self.balancer.update(&ids);
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.id == id)
    }
}

/// What every handle of one proxy shares.
pub(crate) struct Shared<C: Clone + Send + Sync + 'static> {
    pub(crate) target: String,
    pub(crate) table: RwLock<Table<C>>,
    /// Woken on every membership or state change.
    pub(crate) changed: Notify,
    pub(crate) maker: Maker<C>,
    pub(crate) options: ProxyOptions,
    pub(crate) rng: SplitMix,
    /// The instant entry backoffs count from.
    pub(crate) base: Instant,
    /// Where the discovery task and async calls run.
    pub(crate) runtime: tokio::runtime::Handle,
    /// Set by [`ClientProxy::close`](crate::ClientProxy::close): no more picks.
    pub(crate) closed: std::sync::atomic::AtomicBool,
    /// Ends the discovery task when the last handle drops.
    pub(crate) shutdown: Arc<Notify>,
}

impl<C: Clone + Send + Sync + 'static> Shared<C> {
    pub(crate) fn table(&self) -> RwLockReadGuard<'_, Table<C>> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Nanoseconds since the base: the clock entry backoffs compare with.
    pub(crate) fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// How long until the first online entry put aside comes back, if
    /// any is put aside now.
    pub(crate) fn next_backoff_end(&self) -> Option<Duration> {
        let now = self.now();
        let table = self.table();
        table
            .entries
            .iter()
            .filter_map(|e| e.put_aside_until(now))
            .min()
            .map(|until| Duration::from_nanos(until - now))
    }

    /// Stops following discovery, then drains every entry (bounded by the
    /// drain option) and closes its client.
    pub(crate) async fn close(&self) {
        use std::sync::atomic::Ordering;
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        self.shutdown.notify_one();
        self.changed.notify_waiters();
        let entries: Vec<Arc<Entry<C>>> = self.table().entries.clone();
        let bound = self.options.drain;
        let drains: Vec<_> = entries
            .into_iter()
            .map(|entry| tokio::spawn(async move { entry.drain(bound).await }))
            .collect();
        for drain in drains {
            let _ = drain.await;
        }
        tracing::debug!(target = %self.target, "client proxy closed");
    }

    /// Fills the table from the first snapshot.
    pub(crate) fn fill<'a>(&self, nodes: impl IntoIterator<Item = &'a Node>) {
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        table.entries = nodes
            .into_iter()
            .map(|n| Arc::new(Entry::new(n.clone())))
            .collect();
        table.tell_balancer();
    }

    /// Applies one discovery change. Unchanged entries keep their client;
    /// a removed one (or one whose address changed) drains and closes.
    pub(crate) fn apply(&self, change: Change) {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let gone = {
            let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
            match change {
                Change::Insert(node) | Change::Update(node) => match table.position(&node.id) {
                    Some(i) if table.entries[i].same_endpoint(&node) => {
                        tracing::debug!(id = %node.id, online = node.is_online(), "entry updated");
                        table.entries[i].set_online(node.is_online());
                        None
                    }
                    Some(i) => {
                        tracing::debug!(id = %node.id, addr = %node.addr, "entry moved");
                        let old =
                            std::mem::replace(&mut table.entries[i], Arc::new(Entry::new(node)));
                        table.tell_balancer();
                        Some(old)
                    }
                    None => {
                        tracing::debug!(id = %node.id, addr = %node.addr, "entry added");
                        table.entries.push(Arc::new(Entry::new(node)));
                        table.tell_balancer();
                        None
                    }
                },
                Change::Remove(id) => table.position(&id).map(|i| {
                    tracing::debug!(%id, "entry removed");
                    let old = table.entries.remove(i);
                    table.tell_balancer();
                    old
                }),
            }
        };
        if let Some(old) = gone {
            let bound = self.options.drain;
            tokio::spawn(async move { old.drain(bound).await });
        }
        self.changed.notify_waiters();
    }
}

impl<C: Clone + Send + Sync + 'static> Drop for Shared<C> {
    fn drop(&mut self) {
        self.shutdown.notify_one();
        let table = self.table.get_mut().unwrap_or_else(|e| e.into_inner());
        for entry in &table.entries {
            entry.drop_client();
        }
    }
}

/// Follows `discovery` into the table of `shared` until the proxy is gone
/// or the discovery ends.
pub(crate) async fn follow<C: Clone + Send + Sync + 'static>(
    shared: Weak<Shared<C>>,
    shutdown: Arc<Notify>,
    mut discovery: Discovery,
) {
    loop {
        let change = tokio::select! {
            change = discovery.next() => change,
            () = shutdown.notified() => return,
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match change {
            Some(change) => shared.apply(change),
            None => {
                tracing::warn!(target = %shared.target, "discovery ended; the entries stay as they are");
                return;
            }
        }
    }
}

/// The table as a balancer sees it: usable entries, minus those a call
/// already tried.
pub(crate) struct View<'a, C: Clone + Send + Sync + 'static> {
    pub(crate) entries: &'a [Arc<Entry<C>>],
    pub(crate) now: u64,
    pub(crate) tried: &'a [Arc<Entry<C>>],
}

impl<C: Clone + Send + Sync + 'static> Entries for View<'_, C> {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn is_usable(&self, index: usize) -> bool {
        self.entries
            .get(index)
            .is_some_and(|e| e.is_usable(self.now) && !self.tried.iter().any(|t| Arc::ptr_eq(t, e)))
    }

    fn in_flight(&self, index: usize) -> usize {
        self.entries.get(index).map_or(0, |e| e.in_flight())
    }

    fn node(&self, index: usize) -> Option<&Node> {
        self.entries.get(index).map(|e| &e.node)
    }
}

impl<C: Clone + Send + Sync + 'static> View<'_, C> {
    /// [`Entries::is_usable`], for checking what a balancer returned.
    pub(crate) fn is_usable_at(&self, index: usize) -> bool {
        Entries::is_usable(self, index)
    }
}
