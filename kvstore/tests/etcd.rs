//! The conformance suite on `EtcdStore`, each case against its own etcd
//! started by the harness (Debian's `etcd-server`).

mod conformance;

use walle_kvstore::testing::Etcd;
use walle_kvstore::{BoxFuture, EtcdStore, Store};

struct OnEtcd {
    // Dropped last: the stores go before the server.
    store: EtcdStore,
    etcd: Etcd,
}

impl conformance::Fixture for OnEtcd {
    fn store(&self) -> &dyn Store {
        &self.store
    }

    fn client(&self) -> BoxFuture<'_, Box<dyn Store>> {
        Box::pin(async move { Box::new(connect(&self.etcd).await) as Box<dyn Store> })
    }
}

async fn connect(etcd: &Etcd) -> EtcdStore {
    EtcdStore::builder()
        .endpoint(etcd.endpoint())
        .connect()
        .await
        .expect("connect to the harness etcd")
}

async fn fixture() -> OnEtcd {
    let etcd = Etcd::start().expect("start etcd (apt-get install etcd-server etcd-client)");
    OnEtcd {
        store: connect(&etcd).await,
        etcd,
    }
}

conformance!(fixture);
