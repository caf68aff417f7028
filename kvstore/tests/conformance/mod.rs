//! The conformance suite of the `Store` trait, written once and run
//! against `MemStore` (tests/mem.rs) and `EtcdStore` on an etcd started by
//! the harness (tests/etcd.rs). Each case names its BEHAVIOURS number.

mod b49;

use std::time::Duration;

use bytes::Bytes;
use walle_kvstore::{BoxFuture, Error, Store, Watch, WatchEvent};

pub use self::b49::*;

/// How a suite gets its stores.
pub trait Fixture: Send + Sync {
    /// The store under test.
    fn store(&self) -> &dyn Store;
    /// Another client of the same data, as another process would be.
    fn client(&self) -> BoxFuture<'_, Box<dyn Store>>;
}

/// Generates one `#[tokio::test]` per case, each on a fresh fixture from
/// `$fixture().await`.
#[macro_export]
macro_rules! conformance {
    ($fixture:path) => {
        $crate::conformance!(@cases $fixture;
            b44_missing_keys_and_empty_lists,
            b45_spellings_of_a_key_are_one_key,
            crud_with_revisions,
            tree_prefix_is_exact,
            b46_ttl_key_lives_with_its_owner_and_dies_after_it,
            b46_close_revokes_ttl_keys,
            b47_watch_tree_snapshot_then_changes,
            b47_watch_ends_only_when_stopped,
            b47_watch_outlives_the_dropped_store_handle,
            b48_watch_key_value_then_changes,
            b49_compare_and_swap,
            b49_compare_and_delete,
            b49_concurrent_cas_never_false_success,
            b49_lock_excludes_and_passes_on,
            b49_lock_freed_when_owner_dies,
            closed_store_refuses
        );
    };
    (@cases $fixture:path; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $fixture().await;
                conformance::$case(&fixture).await;
            }
        )*
    };
}

const WAIT: Duration = Duration::from_secs(10);

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

async fn next(watch: &mut Watch) -> WatchEvent {
    tokio::time::timeout(WAIT, watch.next())
        .await
        .expect("a watch event within 10 s")
        .expect("the watch is still open")
}

fn put_of(event: &WatchEvent) -> (&str, &[u8]) {
    match event {
        WatchEvent::Put(pair) => (pair.key.as_str(), &pair.value[..]),
        other => panic!("expected a put, got {other:?}"),
    }
}

fn delete_of(event: &WatchEvent) -> &str {
    match event {
        WatchEvent::Delete { key, .. } => key,
        other => panic!("expected a delete, got {other:?}"),
    }
}

/// Polls until `key` is gone, within `limit`.
async fn gone_within(store: &dyn Store, key: &str, limit: Duration) -> Duration {
    let started = std::time::Instant::now();
    while store.exists(key).await.unwrap() {
        assert!(
            started.elapsed() < limit,
            "{key} still there after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

pub async fn b44_missing_keys_and_empty_lists(f: &dyn Fixture) {
    let s = f.store();
    assert!(matches!(s.get("/nope").await, Err(Error::KeyNotFound(k)) if k == "/nope"));
    assert!(matches!(s.delete("nope").await, Err(Error::KeyNotFound(_))));
    assert!(!s.exists("/nope").await.unwrap());
    assert!(s.list("/empty").await.unwrap().is_empty());
    assert_eq!(s.delete_tree("/empty").await.unwrap(), 0);
    assert!(matches!(s.get("/").await, Err(Error::InvalidKey(_))));
}

pub async fn b45_spellings_of_a_key_are_one_key(f: &dyn Fixture) {
    let s = f.store();
    s.put("a/b", b("1"), None).await.unwrap();
    for spelling in ["/a/b", "a/b", "a/b/", "//a//b"] {
        assert_eq!(s.get(spelling).await.unwrap().value, "1", "{spelling}");
    }
    s.put("/a/b/", b("2"), None).await.unwrap();
    let listed = s.list("a").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].key.as_str(), &listed[0].value[..]),
        ("/a/b", &b"2"[..])
    );
    assert_eq!(s.list("/a/").await.unwrap(), listed);
    s.delete("a//b").await.unwrap();
    assert!(!s.exists("/a/b").await.unwrap());
}

pub async fn crud_with_revisions(f: &dyn Fixture) {
    let s = f.store();
    let r1 = s.put("/c/x", b("1"), None).await.unwrap();
    let r2 = s.put("/c/y", b("1"), None).await.unwrap();
    let r3 = s.put("/c/x", b("2"), None).await.unwrap();
    assert!(r1 < r2 && r2 < r3, "{r1} {r2} {r3}");
    let x = s.get("/c/x").await.unwrap();
    assert_eq!((x.create_revision, x.mod_revision, x.lease), (r1, r3, 0));
    assert_eq!(x.value, "2");
    let keys: Vec<String> = s
        .list("/c")
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(keys, ["/c/x", "/c/y"]);
    assert_eq!(s.delete_tree("/c").await.unwrap(), 2);
    assert!(s.list("/c").await.unwrap().is_empty());
}

pub async fn tree_prefix_is_exact(f: &dyn Fixture) {
    let s = f.store();
    s.put("/p/a/1", b("in"), None).await.unwrap();
    s.put("/p/a", b("the dir key itself"), None).await.unwrap();
    s.put("/p/ab/1", b("sibling"), None).await.unwrap();
    let keys: Vec<String> = s
        .list("/p/a")
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(keys, ["/p/a/1"]);
    assert_eq!(s.delete_tree("/p/a").await.unwrap(), 1);
    assert!(s.exists("/p/ab/1").await.unwrap());
    assert!(s.exists("/p/a").await.unwrap());
}

pub async fn b46_ttl_key_lives_with_its_owner_and_dies_after_it(f: &dyn Fixture) {
    let ttl = Duration::from_secs(2);
    let owner = f.client().await;
    owner.put("/ttl/n1", b("alive"), Some(ttl)).await.unwrap();
    let pair = f.store().get("/ttl/n1").await.unwrap();
    assert_ne!(pair.lease, 0, "a TTL key is on a lease");
    // Refreshed while its owner lives: still there well past the TTL.
    tokio::time::sleep(ttl + Duration::from_secs(2)).await;
    assert!(f.store().exists("/ttl/n1").await.unwrap());
    // The owner dies without closing (a watch it opened still running does
    // not keep it alive): the key goes within TTL (+ slack).
    let watch = owner.watch_tree("/ttl").await.unwrap();
    drop(owner);
    gone_within(f.store(), "/ttl/n1", ttl + Duration::from_secs(2)).await;
    drop(watch);
}

pub async fn b46_close_revokes_ttl_keys(f: &dyn Fixture) {
    let owner = f.client().await;
    owner
        .put("/ttl/c1", b("x"), Some(Duration::from_secs(30)))
        .await
        .unwrap();
    owner
        .put("/ttl/c2", b("x"), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    owner.put("/ttl/plain", b("x"), None).await.unwrap();
    owner.close().await.unwrap();
    gone_within(f.store(), "/ttl/c1", Duration::from_secs(2)).await;
    gone_within(f.store(), "/ttl/c2", Duration::from_secs(2)).await;
    assert!(
        f.store().exists("/ttl/plain").await.unwrap(),
        "keys without TTL stay"
    );
}

pub async fn b47_watch_tree_snapshot_then_changes(f: &dyn Fixture) {
    let s = f.store();
    let mut empty = s.watch_tree("/w").await.unwrap();
    let WatchEvent::Snapshot { pairs, revision } = next(&mut empty).await else {
        panic!("the first event is the snapshot")
    };
    assert!(pairs.is_empty(), "an empty snapshot is delivered too");
    s.put("/w/a", b("1"), None).await.unwrap();
    s.put("/elsewhere/a", b("1"), None).await.unwrap();
    s.put("/w/b", b("1"), None).await.unwrap();
    s.put("/w/a", b("2"), None).await.unwrap();
    s.delete("/w/b").await.unwrap();
    s.delete_tree("/w").await.unwrap();
    let first = next(&mut empty).await;
    assert!(first.revision() > revision);
    assert_eq!(put_of(&first), ("/w/a", &b"1"[..]));
    assert_eq!(put_of(&next(&mut empty).await), ("/w/b", &b"1"[..]));
    assert_eq!(put_of(&next(&mut empty).await), ("/w/a", &b"2"[..]));
    assert_eq!(delete_of(&next(&mut empty).await), "/w/b");
    assert_eq!(delete_of(&next(&mut empty).await), "/w/a");

    s.put("/w/z", b("9"), None).await.unwrap();
    let mut late = s.watch_tree("w/").await.unwrap();
    let WatchEvent::Snapshot { pairs, .. } = next(&mut late).await else {
        panic!()
    };
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].key, "/w/z");
}

pub async fn b47_watch_ends_only_when_stopped(f: &dyn Fixture) {
    let watcher = f.client().await;
    let mut watch = watcher.watch_tree("/quiet").await.unwrap();
    next(&mut watch).await;
    let idle = tokio::time::timeout(Duration::from_millis(500), watch.next()).await;
    assert!(
        idle.is_err(),
        "an idle watch neither ends nor invents events"
    );
    watcher.close().await.unwrap();
    let ended = tokio::time::timeout(WAIT, watch.next()).await.unwrap();
    assert!(ended.is_none(), "closing the store ends its watches");
}

pub async fn b47_watch_outlives_the_dropped_store_handle(f: &dyn Fixture) {
    let watcher = f.client().await;
    let mut watch = watcher.watch_tree("/kept").await.unwrap();
    next(&mut watch).await;
    drop(watcher);
    f.store().put("/kept/a", b("1"), None).await.unwrap();
    assert_eq!(put_of(&next(&mut watch).await), ("/kept/a", &b"1"[..]));
}

pub async fn b48_watch_key_value_then_changes(f: &dyn Fixture) {
    let s = f.store();
    s.put("/k/one", b("v1"), None).await.unwrap();
    let mut watch = s.watch("k/one").await.unwrap();
    let WatchEvent::Snapshot { pairs, .. } = next(&mut watch).await else {
        panic!()
    };
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].value, "v1");
    s.put("/k/one/child", b("not this key"), None)
        .await
        .unwrap();
    s.put("/k/other", b("nor this"), None).await.unwrap();
    s.put("/k/one", b("v2"), None).await.unwrap();
    s.delete("/k/one").await.unwrap();
    s.put("/k/one", b("v3"), None).await.unwrap();
    assert_eq!(put_of(&next(&mut watch).await), ("/k/one", &b"v2"[..]));
    assert_eq!(delete_of(&next(&mut watch).await), "/k/one");
    assert_eq!(put_of(&next(&mut watch).await), ("/k/one", &b"v3"[..]));

    let mut missing = s.watch("/k/none").await.unwrap();
    let WatchEvent::Snapshot { pairs, .. } = next(&mut missing).await else {
        panic!()
    };
    assert!(pairs.is_empty());
}

pub async fn closed_store_refuses(f: &dyn Fixture) {
    let store = f.client().await;
    store.put("/closing", b("x"), None).await.unwrap();
    store.close().await.unwrap();
    assert!(matches!(store.get("/closing").await, Err(Error::Closed)));
    assert!(matches!(
        store.put("/closing", b("y"), None).await,
        Err(Error::Closed)
    ));
    assert!(matches!(store.watch_tree("/").await, Err(Error::Closed)));
    assert_eq!(f.store().get("/closing").await.unwrap().value, "x");
}
