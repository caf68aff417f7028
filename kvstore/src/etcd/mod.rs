//! [`EtcdStore`]: the [`Store`] on a real etcd (v3 API, etcd-client).

mod lease;
mod lock;
mod options;
mod watch;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, KeyValue, PutOptions,
    Txn, TxnOp,
};
use tokio::sync::watch as signal;

use self::lease::Leases;
pub use self::options::{EtcdBuilder, EtcdOptions};
use crate::{BoxFuture, Error, KvPair, Lock, Result, Store, Watch, normalize_key, tree_prefix};

/// The [`Store`] on etcd.
///
/// - A put with a TTL attaches the key to the store's lease for that TTL
///   (whole seconds, rounded up), kept alive at a third of the TTL. If the
///   lease is lost (etcd could not be reached for longer than the TTL), a
///   new one is granted and the keys put back, each only if no other
///   client wrote it meanwhile.
/// - A watch resumes after a lost connection from the revision after the
///   last one it delivered, so no change is missed. If etcd compacted that
///   revision away, the watch delivers a fresh
///   [`Snapshot`](crate::WatchEvent::Snapshot) instead.
/// - Compare-and-swap and compare-and-delete are transactions on the key's
///   mod revision.
/// - Locks use etcd's lock service, on a lease of their own.
///
/// Dropping the store without [`close`](Store::close) stops the
/// keep-alives: its TTL keys then expire, as when the process dies. Its
/// watches go on until dropped.
/// Cloning shares the connection and the leases.
#[derive(Clone)]
pub struct EtcdStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    options: EtcdOptions,
    leases: Leases,
    closed: signal::Sender<bool>,
}

/// `op` within `after`.
pub(super) async fn timed<T>(
    op: &'static str,
    after: Duration,
    future: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T> {
    match tokio::time::timeout(after, future).await {
        Ok(done) => Ok(done?),
        Err(_) => Err(Error::Timeout { op, after }),
    }
}

pub(super) fn to_pair(kv: &KeyValue) -> KvPair {
    KvPair {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: revision(kv.create_revision()),
        mod_revision: revision(kv.mod_revision()),
        lease: kv.lease(),
    }
}

pub(super) fn revision(revision: i64) -> u64 {
    u64::try_from(revision).unwrap_or(0)
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> u64 {
    header.map_or(0, |h| revision(h.revision()))
}

impl EtcdStore {
    /// A builder, starting from [`EtcdOptions::default`].
    pub fn builder() -> EtcdBuilder {
        EtcdBuilder::new(EtcdOptions::default())
    }

    /// Connects with `options`.
    pub async fn connect(options: EtcdOptions) -> Result<Self> {
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(Duration::from_millis(options.connect_timeout_ms.max(1)));
        if options.keep_alive_ms > 0 {
            let ping = Duration::from_millis(options.keep_alive_ms);
            connect = connect
                .with_keep_alive(ping, ping)
                .with_keep_alive_while_idle(true);
        }
        let client = Client::connect(options.urls(), Some(connect)).await?;
        let inner = Inner {
            leases: Leases::new(client.clone(), options.clone()),
            client,
            options,
            closed: signal::Sender::new(false),
        };
        Ok(EtcdStore {
            inner: Arc::new(inner),
        })
    }

    /// The options this store was made with.
    pub fn options(&self) -> &EtcdOptions {
        &self.inner.options
    }

    fn open(&self) -> Result<&Inner> {
        if *self.inner.closed.borrow() {
            return Err(Error::Closed);
        }
        Ok(&self.inner)
    }

    async fn call<T>(
        &self,
        op: &'static str,
        future: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        timed(op, self.inner.options.request_timeout(), future).await
    }

    /// A transaction: `put` or `delete` of `key` if `compare` holds, else a
    /// read of it. Returns the revision when it held; otherwise tells a
    /// missing key from a key at another revision.
    async fn guarded(&self, key: &str, compare: Compare, op: TxnOp) -> Result<u64> {
        let mut kv = self.open()?.client.kv_client();
        let txn = Txn::new()
            .when([compare])
            .and_then([op])
            .or_else([TxnOp::get(key, None)]);
        let done = self.call("transaction", kv.txn(txn)).await?;
        if done.succeeded() {
            return Ok(header_revision(done.header()));
        }
        let exists = done.op_responses().into_iter().any(|response| {
            matches!(response, etcd_client::TxnOpResponse::Get(get) if !get.kvs().is_empty())
        });
        Err(match exists {
            true => Error::Conflict {
                key: key.to_owned(),
            },
            false => Error::KeyNotFound(key.to_owned()),
        })
    }

    async fn put_key(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        expected: Option<Option<u64>>,
    ) -> Result<u64> {
        let inner = self.open()?;
        let key = normalize_key(key)?;
        let write = |lease: i64| {
            let options = (lease != 0).then(|| PutOptions::new().with_lease(lease));
            let value = value.to_vec();
            let key = key.as_str();
            async move {
                let Some(expected) = expected else {
                    let mut kv = self.open()?.client.kv_client();
                    let done = self.call("put", kv.put(key, value, options)).await?;
                    return Ok(header_revision(done.header()));
                };
                let compare = match expected {
                    None => Compare::version(key, CompareOp::Equal, 0),
                    Some(rev) => Compare::mod_revision(key, CompareOp::Equal, rev as i64),
                };
                let put = TxnOp::put(key, value, options);
                match self.guarded(key, compare, put).await {
                    Err(Error::KeyNotFound(key)) => Err(Error::Conflict { key }),
                    other => other,
                }
            }
        };
        match ttl {
            Some(ttl) => inner.leases.write(&key, &value, ttl, write).await,
            None => {
                let revision = write(0).await?;
                inner.leases.forget(&key);
                Ok(revision)
            }
        }
    }

    async fn snapshot(&self, key: &str, prefix: bool) -> Result<(Vec<KvPair>, u64)> {
        let inner = self.open()?;
        snapshot(&inner.client, inner.options.request_timeout(), key, prefix).await
    }
}

/// The key (or the keys under the prefix) and the store revision.
pub(super) async fn snapshot(
    client: &Client,
    after: Duration,
    key: &str,
    prefix: bool,
) -> Result<(Vec<KvPair>, u64)> {
    let mut kv = client.kv_client();
    let options = prefix.then(|| GetOptions::new().with_prefix());
    let got = timed("get", after, kv.get(key, options)).await?;
    let pairs = got.kvs().iter().map(to_pair).collect();
    Ok((pairs, header_revision(got.header())))
}

impl fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.inner.options.endpoints)
            .field("closed", &*self.inner.closed.borrow())
            .finish_non_exhaustive()
    }
}

impl Store for EtcdStore {
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.put_key(key, value, ttl, None))
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<KvPair>> {
        Box::pin(async move {
            let key = normalize_key(key)?;
            let (mut pairs, _) = self.snapshot(&key, false).await?;
            pairs.pop().ok_or(Error::KeyNotFound(key))
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let inner = self.open()?;
            let key = normalize_key(key)?;
            let mut kv = inner.client.kv_client();
            let done = self.call("delete", kv.delete(key.as_str(), None)).await?;
            inner.leases.forget(&key);
            match done.deleted() {
                0 => Err(Error::KeyNotFound(key)),
                _ => Ok(()),
            }
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<KvPair>>> {
        Box::pin(async move { Ok(self.snapshot(&tree_prefix(prefix), true).await?.0) })
    }

    fn delete_tree<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let inner = self.open()?;
            let prefix = tree_prefix(prefix);
            let mut kv = inner.client.kv_client();
            let options = Some(DeleteOptions::new().with_prefix());
            let done = self
                .call("delete", kv.delete(prefix.as_str(), options))
                .await?;
            inner.leases.forget_tree(&prefix);
            Ok(u64::try_from(done.deleted()).unwrap_or(0))
        })
    }

    fn watch<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Watch>> {
        Box::pin(async move { self.start_watch(normalize_key(key)?, false).await })
    }

    fn watch_tree<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Watch>> {
        Box::pin(self.start_watch(tree_prefix(prefix), true))
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.put_key(key, value, ttl, Some(expected)))
    }

    fn compare_and_delete<'a>(&'a self, key: &'a str, expected: u64) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let inner = self.open()?;
            let key = normalize_key(key)?;
            let compare = Compare::mod_revision(key.as_str(), CompareOp::Equal, expected as i64);
            let delete = TxnOp::delete(key.as_str(), None);
            self.guarded(&key, compare, delete).await?;
            inner.leases.forget(&key);
            Ok(())
        })
    }

    fn lock<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<Lock>> {
        Box::pin(self.acquire(key, ttl))
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            if self.inner.closed.send_replace(true) {
                return Ok(());
            }
            self.inner.leases.revoke_all().await;
            Ok(())
        })
    }
}
