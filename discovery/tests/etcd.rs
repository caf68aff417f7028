//! Registry and discovery on a real etcd started by the harness: what
//! operators read with `etcdctl`, state changes seen by a watcher, and the
//! node coming back after etcd was frozen past its TTL (fault test c).

use std::process::Command;
use std::time::{Duration, Instant};

use walle_discovery::{Change, Discovery, Drivers, Node, State};
use walle_kvstore::testing::Etcd;

fn start() -> Etcd {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Etcd::start_or_panic()
}

async fn next(discovery: &mut Discovery, within: Duration) -> Change {
    tokio::time::timeout(within, discovery.next())
        .await
        .expect("a change in time")
        .expect("discovery still open")
}

/// `ETCDCTL_API=3 etcdctl --endpoints <etcd> get --prefix <prefix>`, as
/// (key, value) pairs.
fn etcdctl_get_prefix(etcd: &Etcd, prefix: &str) -> Vec<(String, String)> {
    let output = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &etcd.endpoint(), "get", "--prefix", prefix])
        .output()
        .expect("run etcdctl (apt-get install etcd-server etcd-client)");
    assert!(
        output.status.success(),
        "etcdctl: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    lines
        .chunks(2)
        .map(|kv| (kv[0].to_owned(), kv[1].to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b54_etcdctl_reads_registered_nodes_as_the_documented_json() {
    let etcd = start();
    let target = format!("etcd://{}/services/echo", etcd.address());
    let drivers = Drivers::new();
    let ttl = Duration::from_secs(10);
    let first = Node::new("10.0.0.5:7000")
        .with_id("echo-1")
        .with_balancer("round-robin")
        .with_metadata("zone", "a");
    let second = Node::new("10.0.0.6:7000")
        .with_id("echo-2")
        .with_state(State::Offline);
    let one = drivers.register(&target, first, ttl).await.unwrap();
    let two = drivers.register(&target, second, ttl).await.unwrap();

    let listed = etcdctl_get_prefix(&etcd, "/services/echo");
    assert_eq!(
        listed,
        [
            (
                "/services/echo/echo-1".to_owned(),
                r#"{"net":"tcp","addr":"10.0.0.5:7000","bn":"round-robin","state":"online","md":{"zone":"a"}}"#.to_owned()
            ),
            (
                "/services/echo/echo-2".to_owned(),
                r#"{"net":"tcp","addr":"10.0.0.6:7000","bn":"","state":"offline","md":{}}"#.to_owned()
            ),
        ]
    );
    one.deregister().await.unwrap();
    two.deregister().await.unwrap();
    assert!(etcdctl_get_prefix(&etcd, "/services/echo").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b51_watcher_sees_online_offline_deregister_on_etcd() {
    let etcd = start();
    let target = format!("etcd://{}/services/game", etcd.address());
    let (registrant, watcher) = (Drivers::new(), Drivers::new());
    let mut game = watcher.resolve(&target).await.unwrap();
    let within = Duration::from_secs(5);
    let node = Node::new("10.0.0.7:7000").with_id("g1");
    let mut registration = registrant
        .register(&target, node, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        matches!(next(&mut game, within).await, Change::Insert(n) if n.id == "g1" && n.is_online())
    );
    registration.offline().await.unwrap();
    assert!(
        matches!(next(&mut game, within).await, Change::Update(n) if n.state == State::Offline)
    );
    assert_eq!(game.online().count(), 0);
    registration.online().await.unwrap();
    assert!(matches!(next(&mut game, within).await, Change::Update(n) if n.is_online()));
    registration.deregister().await.unwrap();
    assert_eq!(next(&mut game, within).await, Change::Remove("g1".into()));
    assert!(game.nodes().is_empty());
}

/// Fault test (c): etcd frozen (SIGSTOP) for longer than the TTL, then let
/// go: the lease ran out, etcd drops the node, and the registering side gets
/// a new lease and puts the node back within TTL + 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_c_node_registered_again_after_etcd_paused_past_its_ttl() {
    let etcd = start();
    let ttl = Duration::from_secs(3);
    let target = format!("etcd://{}/services/echo", etcd.address());
    let (registrant, watcher) = (Drivers::new(), Drivers::new());
    let node = Node::new("10.0.0.8:7000").with_id("survivor");
    let registration = registrant.register(&target, node, ttl).await.unwrap();
    let mut echo = watcher.resolve(&target).await.unwrap();
    assert!(echo.nodes().contains_key("survivor"));

    etcd.pause().unwrap();
    tokio::time::sleep(ttl + Duration::from_secs(2)).await;
    etcd.resume().unwrap();
    let resumed = Instant::now();

    let limit = ttl + Duration::from_secs(2);
    assert_eq!(
        next(&mut echo, limit).await,
        Change::Remove("survivor".into()),
        "the lease ran out"
    );
    let removed = resumed.elapsed();
    let back = next(&mut echo, limit.saturating_sub(resumed.elapsed())).await;
    assert!(
        matches!(back, Change::Insert(ref n) if n.id == "survivor" && n.addr == "10.0.0.8:7000"),
        "{back:?}"
    );
    let registered = resumed.elapsed();
    assert!(registered <= limit, "registered again after {registered:?}");
    eprintln!("after resume: removed at {removed:?}, registered again at {registered:?}");

    // And kept alive on its new lease.
    tokio::time::sleep(ttl * 2).await;
    assert!(echo.nodes().contains_key("survivor"));
    registration.deregister().await.unwrap();
}
