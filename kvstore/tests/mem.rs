//! The conformance suite on the embedded `MemStore`.

mod conformance;

use std::future::Future;

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

/// A watcher that falls out of the store's change history is not left with
/// a silent gap: it gets a fresh snapshot and then the changes after it.
#[tokio::test]
async fn b47_lagging_watcher_resyncs_with_a_snapshot() {
    use std::collections::BTreeMap;
    use std::time::Duration;
    use walle_kvstore::{MemOptions, WatchEvent};

    let options = MemOptions {
        watch_history: 4,
        watch_buffer: 1,
    };
    let store = MemStore::with_options(options);
    let mut watch = store.watch_tree("/lag").await.unwrap();
    for i in 0..50 {
        let value = bytes::Bytes::from(i.to_string());
        store
            .put(&format!("/lag/{i:02}"), value, None)
            .await
            .unwrap();
    }
    let mut state = BTreeMap::new();
    let mut snapshots = 0;
    while state.len() < 50 {
        let event = tokio::time::timeout(Duration::from_secs(5), watch.next());
        match event.await.unwrap().unwrap() {
            WatchEvent::Snapshot { pairs, .. } => {
                snapshots += 1;
                state = pairs.into_iter().map(|p| (p.key, p.value)).collect();
            }
            WatchEvent::Put(pair) => {
                state.insert(pair.key, pair.value);
            }
            WatchEvent::Delete { key, .. } => {
                state.remove(&key);
            }
        }
    }
    assert!(snapshots >= 2, "the watcher lagged and was resynced");
    let listed: BTreeMap<_, _> = store
        .list("/lag")
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.key, p.value))
        .collect();
    assert_eq!(state, listed);
}

/// Lease expiry runs on tokio's clock: with time paused, a dead client's
/// TTL key lives exactly until its deadline.
#[tokio::test(start_paused = true)]
async fn b46_mem_ttl_follows_the_tokio_clock() {
    use std::time::Duration;

    let store = MemStore::new();
    let owner = store.client();
    owner
        .put(
            "/clock/k",
            bytes::Bytes::from_static(b"x"),
            Some(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(
        store.exists("/clock/k").await.unwrap(),
        "refreshed while its owner lives"
    );
    drop(owner);
    tokio::time::sleep(Duration::from_millis(4_999)).await;
    assert!(store.exists("/clock/k").await.unwrap());
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert!(!store.exists("/clock/k").await.unwrap());
}

/// A `MemStore` lock dropped where no runtime runs is still released: its
/// release needs no I/O.
#[test]
fn b49_mem_lock_dropped_outside_a_runtime_is_released() {
    use std::time::Duration;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = MemStore::new();
    let held = runtime
        .block_on(store.lock("/locks/sync", Duration::from_secs(60)))
        .unwrap();
    drop(held);
    let again = runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(1),
            store.lock("/locks/sync", Duration::from_secs(60)),
        )
        .await
    });
    again.expect("released at drop").unwrap();
}

/// Without a runtime there is no reaper task: a dead client's TTL key is
/// still gone once its TTL has passed, at the next operation.
#[test]
fn b46_mem_expiry_without_a_runtime() {
    use std::time::Duration;

    let store = MemStore::new();
    let owner = store.client();
    let ttl = Some(Duration::from_millis(50));
    let put = owner.put("/bare/k", bytes::Bytes::from_static(b"x"), ttl);
    let mut task = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(
        std::pin::pin!(put).poll(&mut task).is_ready(),
        "MemStore answers at once"
    );
    drop(owner);
    std::thread::sleep(Duration::from_millis(80));
    let exists = store.exists("/bare/k");
    let std::task::Poll::Ready(exists) = std::pin::pin!(exists).poll(&mut task) else {
        panic!()
    };
    assert!(!exists.unwrap());
}
