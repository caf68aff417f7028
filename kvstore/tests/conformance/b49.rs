//! BEHAVIOURS 49 of the conformance suite: compare-and-swap,
//! compare-and-delete and locks work, or fail with an error — never a
//! false success.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use walle_kvstore::Error;

use super::{Fixture, WAIT, b};

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
