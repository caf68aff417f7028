use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use walle_kvstore::{BoxFuture, EtcdOptions, EtcdStore, Store};

use super::{Driver, Target};
use crate::{Discovery, Error, Registry, Result, StoreRegistry};

/// `etcd://host:port[,host:port]/prefix`: nodes in etcd. One connection per
/// distinct host list, shared by the registries and discoveries opened
/// through this driver.
#[derive(Debug, Default)]
pub struct EtcdDriver {
    /// Options for new connections; the endpoints come from the target.
    options: EtcdOptions,
    stores: Mutex<HashMap<String, EtcdStore>>,
}

impl EtcdDriver {
    /// A driver whose connections use `options` (timeouts, retries).
    pub fn new(options: EtcdOptions) -> Self {
        EtcdDriver {
            options,
            stores: Mutex::new(HashMap::new()),
        }
    }

    async fn store(&self, target: &Target) -> Result<EtcdStore> {
        let hosts: Vec<String> = target.hosts().map(str::to_owned).collect();
        if hosts.is_empty() {
            return Err(Error::InvalidTarget {
                target: target.to_string(),
                reason: "an etcd target names its hosts: etcd://host:port/services/name",
            });
        }
        if let Some(store) = self.cached(target.authority()) {
            return Ok(store);
        }
        let options = EtcdOptions {
            endpoints: hosts,
            ..self.options.clone()
        };
        let store = EtcdStore::connect(options).await?;
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        Ok(stores
            .entry(target.authority().to_owned())
            .or_insert(store)
            .clone())
    }

    fn cached(&self, authority: &str) -> Option<EtcdStore> {
        let stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        stores.get(authority).cloned()
    }
}

impl Driver for EtcdDriver {
    fn registry<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Arc<dyn Registry>>> {
        Box::pin(async move {
            let prefix = target.prefix()?;
            let store = self.store(target).await?;
            let store: Arc<dyn Store> = Arc::new(store);
            Ok(Arc::new(StoreRegistry::new(store, prefix)) as Arc<dyn Registry>)
        })
    }

    fn resolve<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Discovery>> {
        Box::pin(async move {
            let prefix = target.prefix()?;
            let store = self.store(target).await?;
            Discovery::watch(&store, prefix).await
        })
    }
}
