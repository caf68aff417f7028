//! Locks on etcd's lock service, each on a lease of its own: the lock is
//! held while that lease lives.

use std::time::Duration;

use etcd_client::LockOptions;

use super::EtcdStore;
use crate::{BoxFuture, Lock, Result, normalize_key};

impl EtcdStore {
    pub(super) async fn acquire(&self, name: &str, ttl: Duration) -> Result<Lock> {
        let inner = self.open()?;
        let name = normalize_key(name)?;
        // Dropped with this future if the wait is given up: then revoked.
        let lease = inner.leases.own_lease(ttl).await?;
        let mut locks = inner.client.lock_client();
        let options = LockOptions::new().with_lease(lease.id());
        let held = locks.lock(name, Some(options)).await?;
        let key = String::from_utf8_lossy(held.key()).into_owned();
        let release = move || -> BoxFuture<'static, Result<()>> { Box::pin(lease.revoke()) };
        Ok(Lock::new(key, Box::new(release)))
    }
}
