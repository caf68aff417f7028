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
    let etcd = Etcd::start_or_panic();
    OnEtcd {
        store: connect(&etcd).await,
        etcd,
    }
}

conformance!(fixture);

/// A missing etcd binary makes the harness fail, saying how to install it:
/// a test that needs etcd fails, it is not skipped.
#[test]
fn harness_without_etcd_fails_with_the_install_command() {
    let error = walle_kvstore::testing::Etcd::start_binary("/nonexistent/bin/etcd").unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("apt-get install etcd-server etcd-client"),
        "{text}"
    );
    assert!(text.contains("/nonexistent/bin/etcd"), "{text}");
}
