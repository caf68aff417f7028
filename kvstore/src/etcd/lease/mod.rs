//! Leases of an [`EtcdStore`](super::EtcdStore): the TTL puts of one TTL
//! share a lease, kept alive at a third of the TTL. When etcd says the
//! lease is gone (it expired while the process could not reach etcd), a new
//! one is granted and the keys put again (BEHAVIOURS 50).

mod keeper;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use etcd_client::Client;
use tokio::task::{AbortHandle, JoinHandle};

use self::keeper::{Owned, Slot, grant, keep, lease_not_found, lock};
use super::{EtcdOptions, timed};
use crate::Result;

/// The store's leases and the TTL keys it owns.
pub(super) struct Leases {
    client: Client,
    options: EtcdOptions,
    slots: tokio::sync::Mutex<HashMap<i64, Arc<Slot>>>,
    /// key -> (TTL seconds, value): what to put again on a new lease.
    owned: Arc<Owned>,
    /// Every keep-alive task, stopped with the store.
    keepers: Mutex<Vec<AbortHandle>>,
    /// The leases of held locks, revoked with the store.
    locks: Arc<Mutex<HashSet<i64>>>,
}

/// A lease of its own (a lock's), kept alive by its own task. Dropped
/// without [`revoke`](OwnLease::revoke) (a lock wait given up), it stops
/// the keep-alive and revokes the lease in the background, so no stale
/// contender stays behind.
pub(super) struct OwnLease {
    client: Client,
    id: i64,
    keeper: JoinHandle<()>,
    after: Duration,
    locks: Arc<Mutex<HashSet<i64>>>,
    armed: bool,
}

impl OwnLease {
    pub(super) fn id(&self) -> i64 {
        self.id
    }

    /// Stops the keep-alive and revokes the lease.
    pub(super) async fn revoke(mut self) -> Result<()> {
        self.revocation().await
    }

    /// Disarms: stops the keep-alive, forgets the lease, and returns the
    /// request that revokes it.
    fn revocation(&mut self) -> impl Future<Output = Result<()>> + use<> {
        self.armed = false;
        self.keeper.abort();
        lock(&self.locks).remove(&self.id);
        let (mut leases, id, after) = (self.client.lease_client(), self.id, self.after);
        async move {
            timed("lease revoke", after, leases.revoke(id))
                .await
                .map(drop)
        }
    }
}

impl Drop for OwnLease {
    fn drop(&mut self) {
        if self.armed {
            let revocation = self.revocation();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(revocation);
            }
        }
    }
}

/// etcd counts TTLs in whole seconds: round up, at least one (etcd itself
/// raises a TTL under its minimum, 2 s by default, to that minimum).
pub(super) fn ttl_secs(ttl: Duration) -> i64 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(secs.max(1)).unwrap_or(i64::MAX)
}

impl Leases {
    pub(super) fn new(client: Client, options: EtcdOptions) -> Self {
        Leases {
            client,
            options,
            slots: tokio::sync::Mutex::new(HashMap::new()),
            owned: Arc::new(Mutex::new(HashMap::new())),
            keepers: Mutex::new(Vec::new()),
            locks: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// Runs `write(lease)` with the lease of `ttl` and records `key` as
    /// owned; a write that finds the lease gone gets a new one and runs
    /// again.
    pub(super) async fn write<F, Fut, T>(
        &self,
        key: &str,
        value: &Bytes,
        ttl: Duration,
        write: F,
    ) -> Result<T>
    where
        F: Fn(i64) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let slot = self.slot(ttl_secs(ttl)).await?;
        let mut lease = slot.lease.lock().await;
        let written = match write(*lease).await {
            Err(error) if lease_not_found(&error) => {
                tracing::warn!(lease = *lease, "lease gone: granting a new one");
                *lease = self.grant(slot.secs).await?;
                slot.put_back(&self.client, &self.options, &self.owned, *lease)
                    .await;
                write(*lease).await?
            }
            other => other?,
        };
        lock(&self.owned).insert(key.to_owned(), (slot.secs, value.clone()));
        Ok(written)
    }

    /// `key` is no longer a TTL key of this store.
    pub(super) fn forget(&self, key: &str) {
        lock(&self.owned).remove(key);
    }

    /// The keys beneath `prefix` are no longer TTL keys of this store.
    pub(super) fn forget_tree(&self, prefix: &str) {
        lock(&self.owned).retain(|key, _| !key.starts_with(prefix));
    }

    /// A lease of its own for a lock: kept alive until revoked, dropped or
    /// the store stops; not granted again if lost.
    pub(super) async fn own_lease(&self, ttl: Duration) -> Result<OwnLease> {
        let secs = ttl_secs(ttl);
        let id = self.grant(secs).await?;
        let slot = Slot::new(secs, id);
        let keeper = tokio::spawn(self.keeper(slot, false));
        self.track(&keeper);
        lock(&self.locks).insert(id);
        Ok(OwnLease {
            client: self.client.clone(),
            id,
            keeper,
            after: self.options.request_timeout(),
            locks: self.locks.clone(),
            armed: true,
        })
    }

    /// Stops the keep-alives and revokes the leases: the TTL keys go now.
    pub(super) async fn revoke_all(&self) {
        self.stop();
        lock(&self.owned).clear();
        let slots: Vec<Arc<Slot>> = self.slots.lock().await.drain().map(|(_, s)| s).collect();
        let mut ids: Vec<i64> = lock(&self.locks).drain().collect();
        for slot in slots {
            ids.push(*slot.lease.lock().await);
        }
        for id in ids {
            let mut lease = self.client.lease_client();
            let after = self.options.request_timeout();
            if let Err(error) = timed("lease revoke", after, lease.revoke(id)).await {
                tracing::warn!(id, %error, "revoking a lease at close failed; it will expire");
            }
        }
    }

    /// Stops the keep-alives (the leases then expire on their own).
    pub(super) fn stop(&self) {
        for keeper in lock(&self.keepers).drain(..) {
            keeper.abort();
        }
    }

    async fn slot(&self, secs: i64) -> Result<Arc<Slot>> {
        let mut slots = self.slots.lock().await;
        if let Some(slot) = slots.get(&secs) {
            return Ok(slot.clone());
        }
        let id = self.grant(secs).await?;
        let slot = Slot::new(secs, id);
        self.track(&tokio::spawn(self.keeper(slot.clone(), true)));
        slots.insert(secs, slot.clone());
        Ok(slot)
    }

    fn track(&self, keeper: &JoinHandle<()>) {
        let mut keepers = lock(&self.keepers);
        keepers.retain(|keeper| !keeper.is_finished());
        keepers.push(keeper.abort_handle());
    }

    fn keeper(&self, slot: Arc<Slot>, regrant: bool) -> impl Future<Output = ()> + use<> {
        let (client, options) = (self.client.clone(), self.options.clone());
        keep(client, options, self.owned.clone(), slot, regrant)
    }

    async fn grant(&self, secs: i64) -> Result<i64> {
        grant(&self.client, &self.options, secs).await
    }
}

impl Drop for Leases {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_seconds() {
        assert_eq!(ttl_secs(Duration::from_millis(1)), 1);
        assert_eq!(ttl_secs(Duration::ZERO), 1);
        assert_eq!(ttl_secs(Duration::from_secs(3)), 3);
        assert_eq!(ttl_secs(Duration::from_millis(3001)), 4);
    }
}
