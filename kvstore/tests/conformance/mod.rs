//! The conformance suite of the `Store` trait, written once and run
//! against `MemStore` (tests/mem.rs) and `EtcdStore` on an etcd started by
//! the harness (tests/etcd.rs). Each case names its BEHAVIOURS number.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use walle_kvstore::{BoxFuture, Error, Store, Watch, WatchEvent};

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

pub async fn b49_compare_and_swap(f: &dyn Fixture) {
    let s = f.store();
    let r1 = s
        .compare_and_swap("/cas", None, b("1"), None)
        .await
        .unwrap();
    let again = s.compare_and_swap("/cas", None, b("x"), None).await;
    assert!(matches!(again, Err(Error::Conflict { .. })), "{again:?}");
    let r2 = s
        .compare_and_swap("/cas", Some(r1), b("2"), None)
        .await
        .unwrap();
    let stale = s.compare_and_swap("/cas", Some(r1), b("x"), None).await;
    assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
    let missing = s
        .compare_and_swap("/cas-none", Some(r2), b("x"), None)
        .await;
    assert!(
        matches!(missing, Err(Error::Conflict { .. })),
        "{missing:?}"
    );
    assert!(!s.exists("/cas-none").await.unwrap());
    let pair = s.get("/cas").await.unwrap();
    assert_eq!((pair.mod_revision, &pair.value[..]), (r2, &b"2"[..]));
    let r3 = s
        .compare_and_swap("/cas", Some(r2), b("3"), Some(Duration::from_secs(30)))
        .await
        .unwrap();
    let pair = s.get("/cas").await.unwrap();
    assert_eq!(pair.mod_revision, r3);
    assert_ne!(pair.lease, 0, "a CAS with a TTL puts the key on a lease");
}

pub async fn b49_compare_and_delete(f: &dyn Fixture) {
    let s = f.store();
    let r1 = s.put("/cad", b("1"), None).await.unwrap();
    let r2 = s.put("/cad", b("2"), None).await.unwrap();
    let stale = s.compare_and_delete("/cad", r1).await;
    assert!(matches!(stale, Err(Error::Conflict { .. })), "{stale:?}");
    assert!(s.exists("/cad").await.unwrap());
    let missing = s.compare_and_delete("/cad-none", r2).await;
    assert!(matches!(missing, Err(Error::KeyNotFound(_))), "{missing:?}");
    s.compare_and_delete("/cad", r2).await.unwrap();
    assert!(!s.exists("/cad").await.unwrap());
}

pub async fn b49_concurrent_cas_never_false_success(f: &dyn Fixture) {
    let s = f.store();
    s.put("/counter", b("0"), None).await.unwrap();
    let successes = Arc::new(AtomicU64::new(0));
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(f.client().await);
    }
    let tasks = stores.into_iter().map(|store| {
        let successes = successes.clone();
        tokio::spawn(async move {
            for _ in 0..10 {
                loop {
                    let pair = store.get("/counter").await.unwrap();
                    let n: u64 = std::str::from_utf8(&pair.value).unwrap().parse().unwrap();
                    let next = Bytes::from((n + 1).to_string());
                    match store
                        .compare_and_swap("/counter", Some(pair.mod_revision), next, None)
                        .await
                    {
                        Ok(_) => break,
                        Err(Error::Conflict { .. }) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
                successes.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    for task in tasks.collect::<Vec<_>>() {
        task.await.unwrap();
    }
    let value = s.get("/counter").await.unwrap().value;
    assert_eq!(value, "40", "every success was a real increment");
    assert_eq!(successes.load(Ordering::Relaxed), 40);
}

pub async fn b49_lock_excludes_and_passes_on(f: &dyn Fixture) {
    let ttl = Duration::from_secs(10);
    let (a, b) = (f.client().await, f.client().await);
    let held = a.lock("/locks/job", ttl).await.unwrap();
    assert!(held.key().starts_with("/locks/job/"), "{}", held.key());
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    let waiter = tokio::spawn(async move {
        let lock = b.lock("locks/job", ttl).await.unwrap();
        let _ = tx.send(());
        lock.unlock().await.unwrap();
        b
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rx.try_recv().is_err(), "the second contender waits");
    held.unlock().await.unwrap();
    tokio::time::timeout(WAIT, rx).await.unwrap().unwrap();
    waiter.await.unwrap();
    // Released by both: a third takes it at once.
    let again = tokio::time::timeout(WAIT, a.lock("/locks/job", ttl))
        .await
        .unwrap();
    again.unwrap().unlock().await.unwrap();
}

pub async fn b49_lock_freed_when_owner_dies(f: &dyn Fixture) {
    let ttl = Duration::from_secs(2);
    let owner = f.client().await;
    let held = owner.lock("/locks/dies", ttl).await.unwrap();
    // The process dies: no unlock, no close; only its lease runs out.
    std::mem::forget(held);
    drop(owner);
    let started = std::time::Instant::now();
    let next = tokio::time::timeout(WAIT, f.store().lock("/locks/dies", ttl)).await;
    next.expect("the lock passes on once the dead owner's lease expires")
        .unwrap();
    assert!(
        started.elapsed() <= ttl + Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
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
