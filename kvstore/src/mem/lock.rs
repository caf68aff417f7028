//! Locks of the in-memory store, as etcd's lock service makes them: each
//! contender puts `/<name>/<lease>` on a lease of its own and holds the
//! lock when no key of the lock was created before its own.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;

use super::MemStore;
use super::backend::Backend;
use crate::watch::until_closed;
use crate::{Error, Lock, Result, normalize_key};

/// Revokes the contender's lease unless disarmed: a waiter that gives up
/// (its future dropped) leaves no key behind.
struct Contender {
    backend: Arc<Backend>,
    lease: i64,
    armed: bool,
}

impl Contender {
    fn release(backend: &Backend, lease: i64) {
        backend.write(|state| ((), state.revoke(lease).into_iter().collect()));
    }
}

impl Drop for Contender {
    fn drop(&mut self) {
        if self.armed {
            Contender::release(&self.backend, self.lease);
        }
    }
}

impl MemStore {
    pub(super) async fn acquire(&self, name: &str, ttl: Duration) -> Result<Lock> {
        let client = self.open()?;
        let name = normalize_key(name)?;
        let prefix = format!("{name}/");
        let backend = client.backend.clone();
        backend.start_reaper();
        let ((lease, key, mine), mut changes) = backend.subscribe(|state| {
            let lease = state.grant(client.id, ttl);
            let key = format!("{prefix}{lease:x}");
            let change = state.put(&key, Bytes::new(), lease);
            ((lease, key, change.revision), vec![change])
        });
        let mut contender = Contender {
            backend,
            lease,
            armed: true,
        };
        let mut closed = client.closed.subscribe();
        loop {
            let (held, ahead) = contender.backend.write(|state| {
                let held = state.get(&key).is_some();
                let contenders = state.range(&prefix);
                let ahead = contenders.iter().any(|p| p.create_revision < mine);
                ((held, ahead), Vec::new())
            });
            if !held {
                return Err(Error::LeaseLost(lease));
            }
            if !ahead {
                break;
            }
            tokio::select! {
                () = until_closed(&mut closed) => return Err(Error::Closed),
                received = changes.recv() => match received {
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return Err(Error::Closed),
                },
            }
        }
        contender.armed = false;
        let backend = contender.backend.clone();
        let release = move || -> crate::BoxFuture<'static, Result<()>> {
            Box::pin(async move {
                Contender::release(&backend, lease);
                Ok(())
            })
        };
        Ok(Lock::new(key, Box::new(release)))
    }
}
