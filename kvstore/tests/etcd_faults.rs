//! BEHAVIOURS 50 against a real etcd: watches resume without losing a
//! change across a restart, and TTL keys come back after their lease was
//! lost while etcd was frozen. Every wait is bounded; these tests check
//! behaviour, not speed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use walle_kvstore::testing::Etcd;
use walle_kvstore::{Error, EtcdStore, Store, Watch, WatchEvent};

async fn connect(etcd: &Etcd) -> EtcdStore {
    EtcdStore::builder()
        .endpoint(etcd.endpoint())
        .request_timeout(Duration::from_secs(1))
        .connect()
        .await
        .expect("connect to the harness etcd")
}

fn start() -> Etcd {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Etcd::start_or_panic()
}

/// Creates `key`, retrying while etcd is away, as a writer that queues its
/// changes would. A create that etcd applied but could not acknowledge
/// (it was still electing itself after the restart) is not written twice:
/// a retry that finds the key already there with this value is done.
async fn put_retrying(store: &EtcdStore, key: &str, value: String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let bytes = Bytes::from(value.clone());
        let error = match store.compare_and_swap(key, None, bytes, None).await {
            Ok(_) => return,
            Err(Error::Conflict { .. }) => {
                let stored = store.get(key).await.expect("read back the key");
                assert_eq!(
                    stored.value,
                    value.as_bytes(),
                    "{key} written by someone else"
                );
                return;
            }
            Err(error) => error,
        };
        assert!(
            Instant::now() < deadline,
            "put {key} never succeeded: {error}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn next(watch: &mut Watch, within: Duration) -> WatchEvent {
    tokio::time::timeout(within, watch.next())
        .await
        .expect("a watch event in time")
        .expect("the watch is open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b50_watch_resumes_across_an_etcd_restart_missing_nothing() {
    let mut etcd = start();
    let (writer, watcher) = (connect(&etcd).await, connect(&etcd).await);
    let mut watch = watcher.watch_tree("/restart").await.unwrap();
    assert!(matches!(
        next(&mut watch, Duration::from_secs(5)).await,
        WatchEvent::Snapshot { .. }
    ));

    let mut expected = Vec::new();
    for i in 0..5 {
        expected.push((format!("/restart/before-{i}"), format!("v{i}")));
    }
    for (key, value) in &expected {
        put_retrying(&writer, key, value.clone()).await;
    }
    // Wait until the watcher has the first changes, so the restart falls
    // in the middle of an open watch.
    assert!(matches!(
        next(&mut watch, Duration::from_secs(5)).await,
        WatchEvent::Put(_)
    ));

    etcd.stop();
    // Changes made while etcd is down: the writer keeps retrying them.
    let during: Vec<(String, String)> = (0..5)
        .map(|i| (format!("/restart/during-{i}"), format!("d{i}")))
        .collect();
    expected.extend(during.iter().cloned());
    let queued = {
        let writer = writer.clone();
        tokio::spawn(async move {
            for (key, value) in during {
                put_retrying(&writer, &key, value).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    etcd.restart()
        .expect("restart etcd on the same ports and data");
    tokio::time::timeout(Duration::from_secs(30), queued)
        .await
        .unwrap()
        .unwrap();
    for i in 0..5 {
        let (key, value) = (format!("/restart/after-{i}"), format!("a{i}"));
        put_retrying(&writer, &key, value.clone()).await;
        expected.push((key, value));
    }

    // Every change, in order, exactly once (the first was read above).
    let mut seen = vec![expected[0].clone()];
    let mut last_revision = 0;
    while seen.len() < expected.len() {
        match next(&mut watch, Duration::from_secs(20)).await {
            WatchEvent::Put(pair) => {
                assert!(pair.mod_revision > last_revision, "revisions only grow");
                last_revision = pair.mod_revision;
                seen.push((pair.key, String::from_utf8(pair.value.to_vec()).unwrap()));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, expected);
    let idle = tokio::time::timeout(Duration::from_millis(300), watch.next()).await;
    assert!(
        idle.is_err(),
        "no duplicate after the last change: {idle:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b50_ttl_keys_put_back_on_a_new_lease_after_etcd_was_frozen() {
    let etcd = start();
    let ttl = Duration::from_secs(2);
    let (owner, watcher) = (connect(&etcd).await, connect(&etcd).await);
    owner
        .put("/frozen/a", Bytes::from_static(b"1"), Some(ttl))
        .await
        .unwrap();
    owner
        .put("/frozen/b", Bytes::from_static(b"2"), Some(ttl))
        .await
        .unwrap();
    let old_lease = watcher.get("/frozen/a").await.unwrap().lease;
    let mut watch = watcher.watch_tree("/frozen").await.unwrap();
    next(&mut watch, Duration::from_secs(5)).await;

    etcd.pause().unwrap();
    tokio::time::sleep(ttl + Duration::from_secs(2)).await;
    etcd.resume().unwrap();
    let resumed = Instant::now();

    // etcd revokes the expired lease (both keys go), then the owner's
    // keep-alive learns the lease is gone, gets a new one and puts both back.
    let mut state = BTreeMap::new();
    let (mut deleted, mut leases) = (0, Vec::new());
    while deleted < 2 || state.len() < 2 {
        match next(&mut watch, ttl + Duration::from_secs(2)).await {
            WatchEvent::Delete { key, .. } => {
                deleted += 1;
                state.remove(&key);
            }
            WatchEvent::Put(pair) => {
                leases.push(pair.lease);
                state.insert(pair.key, pair.value);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let back = resumed.elapsed();
    assert!(
        back <= ttl + Duration::from_secs(2),
        "keys back after {back:?}"
    );
    assert_eq!(state.get("/frozen/a").map(|v| &v[..]), Some(&b"1"[..]));
    assert_eq!(state.get("/frozen/b").map(|v| &v[..]), Some(&b"2"[..]));
    assert!(
        leases.iter().all(|&lease| lease != old_lease && lease != 0),
        "{leases:?}"
    );
    eprintln!("keys back {back:?} after etcd resumed");

    // The new lease is kept alive too.
    tokio::time::sleep(ttl * 2).await;
    assert!(watcher.exists("/frozen/a").await.unwrap());
}
