//! The conformance suite on the embedded `MemStore`.

mod conformance;

use walle_kvstore::{BoxFuture, MemStore, Store};

struct Mem(MemStore);

impl conformance::Fixture for Mem {
    fn store(&self) -> &dyn Store {
        &self.0
    }

    fn client(&self) -> BoxFuture<'_, Box<dyn Store>> {
        Box::pin(async move { Box::new(self.0.client()) as Box<dyn Store> })
    }
}

async fn fixture() -> Mem {
    Mem(MemStore::new())
}

conformance!(fixture);
