//! Registry, discovery and drivers on the embedded store (no etcd).
//! Each test names its BEHAVIOURS number.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use walle_discovery::{
    BoxFuture, Change, Discovery, Driver, Drivers, Error, MemDriver, Node, Registration, Registry,
    State, StoreRegistry, Target,
};
use walle_kvstore::{MemStore, Store};

const TTL: Duration = Duration::from_secs(3);

async fn next(discovery: &mut Discovery) -> Change {
    tokio::time::timeout(Duration::from_secs(5), discovery.next())
        .await
        .expect("a change within 5 s")
        .expect("discovery still open")
}

fn registry(store: &MemStore, prefix: &str) -> Arc<dyn Registry> {
    Arc::new(StoreRegistry::new(Arc::new(store.clone()), prefix))
}

#[tokio::test]
async fn b51_online_offline_deregister() {
    let store = MemStore::new();
    let node = Node::new("10.0.0.5:7000").with_id("n1");
    let mut registration = Registration::register(registry(&store, "/svc/a"), node, TTL)
        .await
        .unwrap();
    let read = |store: MemStore| async move {
        let pair = store.get("/svc/a/n1").await.unwrap();
        Node::from_json("n1", &pair.value).unwrap().state
    };
    assert_eq!(read(store.clone()).await, State::Online);
    registration.offline().await.unwrap();
    assert_eq!(read(store.clone()).await, State::Offline);
    assert_eq!(registration.node().state, State::Offline);
    registration.online().await.unwrap();
    assert_eq!(read(store.clone()).await, State::Online);
    assert_ne!(
        store.get("/svc/a/n1").await.unwrap().lease,
        0,
        "published with its TTL"
    );
    registration.deregister().await.unwrap();
    assert!(
        !store.exists("/svc/a/n1").await.unwrap(),
        "deregister deletes the key"
    );
}

#[tokio::test]
async fn b52_wildcard_listen_address_is_published_reachable() {
    let store = MemStore::new();
    for listen in ["0.0.0.0:7001", "[::]:7001"] {
        let node = Node::new(listen).with_id("wild");
        match Registration::register(registry(&store, "/svc/b"), node, TTL).await {
            Ok(registration) => {
                let published: std::net::SocketAddr = registration.node().addr.parse().unwrap();
                assert!(!published.ip().is_unspecified(), "{listen} -> {published}");
                assert_eq!(published.port(), 7001);
                let stored = store.get("/svc/b/wild").await.unwrap().value;
                assert!(!String::from_utf8_lossy(&stored).contains(&listen[..listen.len() - 5]));
                registration.deregister().await.unwrap();
            }
            // A machine without IPv6 has no `::` address to give: the error
            // says so rather than publishing the wildcard.
            Err(Error::NoReachableAddress { reason, .. }) => {
                assert!(listen.starts_with('['), "{reason}")
            }
            Err(other) => panic!("{other}"),
        }
    }
}

#[tokio::test]
async fn b53_exact_prefix_stripped_and_bad_entries_skipped() {
    let store = MemStore::new();
    let json = |addr: &str| Bytes::from(Node::new(addr).to_json().unwrap());
    store
        .put("/svc/echo/n-1", json("10.0.0.1:1"), None)
        .await
        .unwrap();
    store
        .put("/svc/echo/bad", Bytes::from_static(b"not json"), None)
        .await
        .unwrap();
    store
        .put("/svc/echo2/n-9", json("10.0.0.9:9"), None)
        .await
        .unwrap();
    store
        .put("/svc/echoes", json("10.0.0.8:8"), None)
        .await
        .unwrap();
    let mut discovery = Discovery::watch(&store, "svc/echo/").await.unwrap();
    let ids: Vec<&String> = discovery.nodes().keys().collect();
    assert_eq!(
        ids,
        ["n-1"],
        "ids intact; sibling prefixes and bad JSON left out"
    );
    assert_eq!(discovery.nodes()["n-1"].addr, "10.0.0.1:1");

    store
        .put("/svc/echo/also-bad", Bytes::from_static(b"{}"), None)
        .await
        .unwrap();
    store
        .put("/svc/echo/n.2", json("10.0.0.2:2"), None)
        .await
        .unwrap();
    assert!(matches!(next(&mut discovery).await, Change::Insert(n) if n.id == "n.2"));
    // A node whose value turns bad is no longer a node.
    store
        .put("/svc/echo/n-1", Bytes::from_static(b"[]"), None)
        .await
        .unwrap();
    assert_eq!(next(&mut discovery).await, Change::Remove("n-1".into()));
}

#[tokio::test]
async fn b54_storage_key_is_the_node_id() {
    let store = MemStore::new();
    let node = Node::new("10.0.0.3:3")
        .with_id("id-42")
        .with_balancer("rr")
        .with_metadata("v", "2");
    let registration = Registration::register(registry(&store, "/svc/c"), node.clone(), TTL)
        .await
        .unwrap();
    let stored = store.get("/svc/c/id-42").await.unwrap();
    assert_eq!(Node::from_json("id-42", &stored.value).unwrap(), node);
    registration.deregister().await.unwrap();
    let bad = Registration::register(registry(&store, "/svc/c"), node.with_id("a/b"), TTL).await;
    assert!(matches!(bad, Err(Error::InvalidNode(_))));
}

#[tokio::test]
async fn b59_driver_by_scheme_and_unknown_scheme_names_the_known() {
    let drivers = Drivers::new();
    let error = drivers
        .resolve("zk://127.0.0.1:2181/services/x")
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("\"zk\"") && text.contains("etcd, mem, static"),
        "{text}"
    );

    let fixed = drivers
        .resolve("static://10.0.0.5:7000,10.0.0.6:7000")
        .await
        .unwrap();
    let addrs: Vec<&str> = fixed.online().map(|n| n.addr.as_str()).collect();
    assert_eq!(addrs, ["10.0.0.5:7000", "10.0.0.6:7000"]);
    let noop = drivers
        .register("static://10.0.0.5:7000", Node::new("10.0.0.5:7000"), TTL)
        .await;
    noop.unwrap().deregister().await.unwrap();
    assert!(
        drivers.resolve("mem://host/services/x").await.is_err(),
        "mem has no host"
    );
    assert!(
        drivers.resolve("mem:///").await.is_err(),
        "a service path is needed"
    );
}

/// A driver of the user's own, added by name.
#[derive(Debug)]
struct Fixed(&'static str);

impl Driver for Fixed {
    fn registry<'a>(
        &'a self,
        target: &'a Target,
    ) -> BoxFuture<'a, walle_discovery::Result<Arc<dyn Registry>>> {
        Box::pin(async move {
            let store: Arc<dyn Store> = Arc::new(MemStore::new());
            Ok(Arc::new(StoreRegistry::new(store, target.path())) as Arc<dyn Registry>)
        })
    }

    fn resolve<'a>(&'a self, _: &'a Target) -> BoxFuture<'a, walle_discovery::Result<Discovery>> {
        Box::pin(async { Ok(Discovery::fixed([Node::new(self.0).with_id("only")])) })
    }
}

#[tokio::test]
async fn b59_users_add_their_own_driver() {
    let mut drivers = Drivers::new();
    assert!(drivers.add_driver("Dns", Fixed("10.9.9.9:53")).is_none());
    assert_eq!(
        drivers.schemes().collect::<Vec<_>>(),
        ["dns", "etcd", "mem", "static"]
    );
    let found = drivers.resolve("dns://resolver/services/x").await.unwrap();
    assert_eq!(found.nodes()["only"].addr, "10.9.9.9:53");
    let mine = MemDriver::new(MemStore::new());
    assert!(
        drivers.add_driver("mem", mine).is_some(),
        "replaces the default"
    );
}

#[tokio::test]
async fn mem_driver_registry_and_discovery_see_each_other() {
    let drivers = Drivers::new();
    let mut watcher = drivers
        .resolve("mem:///services/shared-check")
        .await
        .unwrap();
    let node = Node::new("127.0.0.1:7100").with_id("m1");
    let registration = drivers
        .register("mem:///services/shared-check", node, TTL)
        .await
        .unwrap();
    assert!(matches!(next(&mut watcher).await, Change::Insert(n) if n.addr == "127.0.0.1:7100"));
    registration.deregister().await.unwrap();
    assert_eq!(next(&mut watcher).await, Change::Remove("m1".into()));
}

#[tokio::test]
async fn resync_snapshot_turns_into_changes() {
    // A watcher that lags behind the history gets a snapshot; discovery
    // turns it into the inserts and removes that bring its set up to date.
    let store = MemStore::with_options(walle_kvstore::MemOptions {
        watch_history: 2,
        watch_buffer: 1,
    });
    let mut discovery = Discovery::watch(&store, "/svc/lag").await.unwrap();
    let reg = registry(&store, "/svc/lag");
    for i in 0..20 {
        let node = Node::new(format!("10.0.1.{i}:1")).with_id(format!("n{i:02}"));
        reg.publish(&node, TTL).await.unwrap();
    }
    for i in 0..10 {
        reg.unpublish(&format!("n{i:02}")).await.unwrap();
    }
    while discovery.nodes().len() != 10
        || discovery.nodes().keys().next().map(String::as_str) != Some("n10")
    {
        next(&mut discovery).await;
    }
    assert_eq!(discovery.nodes().len(), 10);
}

/// An `etcd://` target in a build without the `etcd` feature names the
/// feature to turn on instead of calling the scheme unknown.
#[test]
fn an_etcd_target_without_the_feature_names_it() {
    let target = "etcd://127.0.0.1:2379/services/echo".parse().unwrap();
    let drivers = Drivers::new();
    let found = drivers.driver(&target);
    if cfg!(feature = "etcd") {
        assert!(found.is_ok(), "{found:?}");
    } else {
        let error = found.unwrap_err();
        assert!(
            matches!(
                error,
                Error::DriverNotBuilt {
                    feature: "etcd",
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("feature \"etcd\""), "{error}");
    }
}
