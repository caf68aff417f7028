//! The keep-alive of one lease: a round trip at a third of the TTL; when
//! etcd says the lease is gone, a new one and the keys put back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn, TxnOp,
};

use super::super::{EtcdOptions, timed};
use crate::{Error, Result};

/// The lease of one TTL (in whole seconds).
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) secs: i64,
    /// The current lease id; held across a put so that a new grant waits
    /// for the puts on the old lease to be recorded.
    pub(super) lease: tokio::sync::Mutex<i64>,
    /// Some keys are not yet back on the current lease (a put back failed).
    pub(super) missing: AtomicBool,
}

impl Slot {
    pub(super) fn new(secs: i64, lease: i64) -> Arc<Slot> {
        Arc::new(Slot {
            secs,
            lease: tokio::sync::Mutex::new(lease),
            missing: AtomicBool::new(false),
        })
    }

    /// Puts the owned keys back on `lease`, noting whether some are missing.
    pub(super) async fn put_back(
        &self,
        client: &Client,
        options: &EtcdOptions,
        owned: &Owned,
        lease: i64,
    ) {
        let complete = put_back(client, options, owned, self.secs, lease).await;
        self.missing.store(!complete, Ordering::Release);
    }
}

pub(super) type Owned = Mutex<HashMap<String, (i64, Bytes)>>;

/// Whether etcd said the lease does not exist (any more).
pub(super) fn lease_not_found(error: &Error) -> bool {
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

/// The task that keeps `slot`'s lease alive; with `regrant`, a lost
/// lease is replaced and its keys put back, without, the task ends.
pub(super) async fn keep(
    client: Client,
    options: EtcdOptions,
    owned: Arc<Owned>,
    slot: Arc<Slot>,
    regrant: bool,
) {
    let period = Duration::from_millis(u64::try_from(slot.secs).unwrap_or(1) * 1000 / 3);
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

pub(super) async fn grant(client: &Client, options: &EtcdOptions, secs: i64) -> Result<i64> {
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

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
