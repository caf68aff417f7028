//! Leases of an [`EtcdStore`](super::EtcdStore): the TTL puts of one TTL
//! share a lease, kept alive at a third of the TTL. When etcd says the
//! lease is gone (it expired while the process could not reach etcd), a new
//! one is granted and the keys put again (BEHAVIOURS 50).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn, TxnOp,
};
use tokio::task::{AbortHandle, JoinHandle};

use super::{EtcdOptions, timed};
use crate::{Error, Result};

/// The lease of one TTL (in whole seconds).
#[derive(Debug)]
struct Slot {
    secs: i64,
    /// The current lease id; held across a put so that a new grant waits
    /// for the puts on the old lease to be recorded.
    lease: tokio::sync::Mutex<i64>,
    /// Some keys are not yet back on the current lease (a put back failed).
    missing: AtomicBool,
}

impl Slot {
    fn new(secs: i64, lease: i64) -> Arc<Slot> {
        Arc::new(Slot {
            secs,
            lease: tokio::sync::Mutex::new(lease),
            missing: AtomicBool::new(false),
        })
    }

    /// Puts the owned keys back on `lease`, noting whether some are missing.
    async fn put_back(&self, client: &Client, options: &EtcdOptions, owned: &Owned, lease: i64) {
        let complete = put_back(client, options, owned, self.secs, lease).await;
        self.missing.store(!complete, Ordering::Release);
    }
}

type Owned = Mutex<HashMap<String, (i64, Bytes)>>;

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
        self.armed = false;
        self.keeper.abort();
        lock(&self.locks).remove(&self.id);
        let mut leases = self.client.lease_client();
        timed("lease revoke", self.after, leases.revoke(self.id))
            .await
            .map(drop)
    }
}

impl Drop for OwnLease {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.keeper.abort();
        lock(&self.locks).remove(&self.id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (mut leases, id, after) = (self.client.lease_client(), self.id, self.after);
            runtime.spawn(async move { timed("lease revoke", after, leases.revoke(id)).await });
        }
    }
}

/// etcd counts TTLs in whole seconds: round up, at least one (etcd itself
/// raises a TTL under its minimum, 2 s by default, to that minimum).
pub(super) fn ttl_secs(ttl: Duration) -> i64 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(secs.max(1)).unwrap_or(i64::MAX)
}

/// Whether etcd said the lease does not exist (any more).
fn lease_not_found(error: &Error) -> bool {
    match error {
        Error::Etcd(etcd_client::Error::GRpcStatus(status)) => {
            status.message().contains("lease not found")
        }
        Error::Etcd(etcd_client::Error::LeaseKeepAliveError(message)) => {
            message.contains("lease not found")
        }
        _ => false,
    }
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

    async fn grant(&self, secs: i64) -> Result<i64> {
        grant(&self.client, &self.options, secs).await
    }

    /// The task that keeps `slot`'s lease alive; with `regrant`, a lost
    /// lease is replaced and its keys put back, without, the task ends.
    fn keeper(&self, slot: Arc<Slot>, regrant: bool) -> impl Future<Output = ()> + use<> {
        let (client, options, owned) = (
            self.client.clone(),
            self.options.clone(),
            self.owned.clone(),
        );
        let period = Duration::from_millis(u64::try_from(slot.secs).unwrap_or(1) * 1000 / 3);
        async move {
            let mut stream = None;
            let mut wait = period;
            loop {
                tokio::time::sleep(wait).await;
                let mut lease = slot.lease.lock().await;
                match refresh(&client, &mut stream, *lease, period).await {
                    Ok(ttl) if ttl > 0 => {
                        if slot.missing.load(Ordering::Acquire) {
                            slot.put_back(&client, &options, &owned, *lease).await;
                        }
                        wait = period;
                    }
                    Ok(_) if !regrant => {
                        tracing::warn!(lease = *lease, "a lock's lease was lost");
                        return;
                    }
                    Ok(_) => {
                        tracing::warn!(lease = *lease, "lease lost: granting a new one");
                        stream = None;
                        match grant(&client, &options, slot.secs).await {
                            Ok(id) => {
                                *lease = id;
                                slot.put_back(&client, &options, &owned, id).await;
                                wait = period;
                            }
                            Err(error) => {
                                tracing::warn!(%error, "granting a lease failed; retrying");
                                wait = options.retry();
                            }
                        }
                    }
                    Err(error) => {
                        tracing::debug!(lease = *lease, %error, "keep-alive failed; retrying");
                        stream = None;
                        wait = options.retry().min(period);
                    }
                }
            }
        }
    }
}

impl Drop for Leases {
    fn drop(&mut self) {
        self.stop();
    }
}

type KeepAlive = (LeaseKeeper, LeaseKeepAliveStream);

/// One keep-alive round trip; the remaining TTL (or 1 when not told), 0
/// if the lease is gone.
async fn refresh(
    client: &Client,
    stream: &mut Option<KeepAlive>,
    lease: i64,
    after: Duration,
) -> Result<i64> {
    if stream
        .as_ref()
        .is_some_and(|(keeper, _)| keeper.id() != lease)
    {
        *stream = None;
    }
    let Some((keeper, responses)) = stream else {
        // Opening the stream is itself one keep-alive round trip.
        let mut leases = client.lease_client();
        return match timed("lease keep-alive", after, leases.keep_alive(lease)).await {
            Ok(open) => {
                *stream = Some(open);
                Ok(1)
            }
            Err(error) if lease_not_found(&error) => Ok(0),
            Err(error) => Err(error),
        };
    };
    timed("lease keep-alive", after, keeper.keep_alive()).await?;
    match timed("lease keep-alive", after, responses.message()).await? {
        Some(response) => Ok(response.ttl()),
        None => Err(Error::LeaseLost(lease)),
    }
}

async fn grant(client: &Client, options: &EtcdOptions, secs: i64) -> Result<i64> {
    let mut leases = client.lease_client();
    let granted = timed(
        "lease grant",
        options.request_timeout(),
        leases.grant(secs, None),
    );
    Ok(granted.await?.id())
}

/// Puts the owned keys of TTL `secs` back on `lease`, each only if it is
/// gone: a key another client wrote meanwhile is theirs now. False if some
/// could not be written (to be tried again).
async fn put_back(
    client: &Client,
    options: &EtcdOptions,
    owned: &Owned,
    secs: i64,
    lease: i64,
) -> bool {
    let keys: Vec<(String, Bytes)> = lock(owned)
        .iter()
        .filter(|(_, (s, _))| *s == secs)
        .map(|(key, (_, value))| (key.clone(), value.clone()))
        .collect();
    let mut kv = client.kv_client();
    let mut complete = true;
    for (key, value) in keys {
        let put = TxnOp::put(
            key.as_str(),
            value.to_vec(),
            Some(PutOptions::new().with_lease(lease)),
        );
        let txn = Txn::new()
            .when([Compare::version(key.as_str(), CompareOp::Equal, 0)])
            .and_then([put]);
        match timed("put back", options.request_timeout(), kv.txn(txn)).await {
            Ok(done) if done.succeeded() => tracing::info!(%key, lease, "key put back"),
            Ok(_) => {
                tracing::warn!(%key, "key written by another client meanwhile: not put back");
                lock(owned).remove(&key);
            }
            Err(error) => {
                tracing::warn!(%key, %error, "putting a key back failed; will retry");
                complete = false;
            }
        }
    }
    complete
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
