use std::sync::{Arc, OnceLock};

use walle_kvstore::{BoxFuture, MemStore, Store};

use super::{Driver, Target};
use crate::{Discovery, Error, Registry, Result, StoreRegistry};

/// `mem:///prefix`: nodes in an in-process [`MemStore`], for a process
/// (or a test) that runs without etcd.
#[derive(Debug, Clone)]
pub struct MemDriver {
    store: MemStore,
}

impl MemDriver {
    /// A driver on `store`.
    pub fn new(store: MemStore) -> Self {
        MemDriver { store }
    }

    /// The driver on the process-wide store that [`Drivers::new`](super::Drivers::new)
    /// uses: a registry and a discovery of the same `mem://` target in one
    /// process see each other.
    pub fn shared() -> Self {
        static SHARED: OnceLock<MemStore> = OnceLock::new();
        MemDriver::new(SHARED.get_or_init(MemStore::new).clone())
    }

    /// The store under this driver.
    pub fn store(&self) -> &MemStore {
        &self.store
    }

    fn prefix(target: &Target) -> Result<&str> {
        if !target.authority().is_empty() {
            return Err(Error::InvalidTarget {
                target: target.to_string(),
                reason: "mem targets have no host: mem:///services/name",
            });
        }
        target.prefix()
    }
}

impl Driver for MemDriver {
    fn registry<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Arc<dyn Registry>>> {
        Box::pin(async move {
            let store: Arc<dyn Store> = Arc::new(self.store.clone());
            let registry = StoreRegistry::new(store, MemDriver::prefix(target)?);
            Ok(Arc::new(registry) as Arc<dyn Registry>)
        })
    }

    fn resolve<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Discovery>> {
        Box::pin(async move { Discovery::watch(&self.store, MemDriver::prefix(target)?).await })
    }
}
