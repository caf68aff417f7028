//! Locks on etcd's lock service, each on a lease of its own: the lock is
//! held while that lease lives.

use std::time::Duration;

use etcd_client::{Client, LockOptions};
use tokio::task::JoinHandle;

use super::{EtcdStore, timed};
use crate::{BoxFuture, Lock, Result, normalize_key};

/// A lock's lease and its keep-alive. Dropped without
/// [`revoke`](OwnLease::revoke) (a wait given up), it stops the keep-alive
/// and revokes the lease in the background, so no stale contender stays.
struct OwnLease {
    client: Client,
    id: i64,
    keeper: JoinHandle<()>,
    after: Duration,
    armed: bool,
}

impl OwnLease {
    async fn revoke(mut self) -> Result<()> {
        self.armed = false;
        self.keeper.abort();
        let mut leases = self.client.lease_client();
        timed("unlock", self.after, leases.revoke(self.id))
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
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (mut leases, id, after) = (self.client.lease_client(), self.id, self.after);
            runtime.spawn(async move { timed("unlock", after, leases.revoke(id)).await });
        }
    }
}

impl EtcdStore {
    pub(super) async fn acquire(&self, name: &str, ttl: Duration) -> Result<Lock> {
        let inner = self.open()?;
        let name = normalize_key(name)?;
        let (id, keeper) = inner.leases.own_lease(ttl).await?;
        let lease = OwnLease {
            client: inner.client.clone(),
            id,
            keeper,
            after: inner.options.request_timeout(),
            armed: true,
        };
        let mut locks = inner.client.lock_client();
        let held = locks
            .lock(name, Some(LockOptions::new().with_lease(id)))
            .await?;
        let key = String::from_utf8_lossy(held.key()).into_owned();
        let release = move || -> BoxFuture<'static, Result<()>> { Box::pin(lease.revoke()) };
        Ok(Lock::new(key, Box::new(release)))
    }
}
