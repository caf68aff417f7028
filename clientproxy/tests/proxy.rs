//! The client proxy over real sockets (BEHAVIOURS 55, 56, 58).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use support::{dead_addr, node_server, proxy, register, target, until};
use walle_clientproxy::{ClientProxy, EntryStatus, Error, HealthOptions, ProxyOptions};
use walle_codec::RawCodec;
use walle_discovery::Node;

async fn echo(proxy: &ClientProxy<RawCodec>) -> String {
    let answer: Bytes = proxy
        .call("echo", &Bytes::from_static(b"hi"))
        .await
        .expect("call");
    String::from_utf8(answer.to_vec()).expect("utf8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b56_round_robin_spreads_calls_over_three_nodes() {
    let target = target("round-robin");
    let servers = [node_server("a"), node_server("b"), node_server("c")];
    let mut regs = Vec::new();
    for (name, server) in ["a", "b", "c"].into_iter().zip(&servers) {
        regs.push(register(&target, name, server).await);
    }
    let proxy = proxy(&target, ProxyOptions::default()).await;
    let mut seen = BTreeMap::new();
    for _ in 0..30 {
        *seen.entry(echo(&proxy).await).or_insert(0) += 1;
    }
    assert_eq!(
        seen,
        BTreeMap::from([("a".into(), 10), ("b".into(), 10), ("c".into(), 10)])
    );
    let stats = proxy.stats();
    assert_eq!(stats.len(), 3);
    assert!(
        stats
            .iter()
            .all(|s| s.calls == 10 && s.failures == 0 && s.in_flight == 0),
        "{stats:?}"
    );
    assert!(
        stats.iter().all(|s| s.status == EntryStatus::Connected),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b55_an_entry_is_dialled_only_when_a_call_first_picks_it() {
    let target = target("lazy");
    let server = node_server("a");
    let _reg = register(&target, "a", &server).await;
    let proxy = proxy(&target, ProxyOptions::default()).await;
    assert_eq!(proxy.stats()[0].status, EntryStatus::Idle);
    assert_eq!(
        server.session_count(),
        0,
        "no connection before the first call"
    );
    assert_eq!(echo(&proxy).await, "a");
    assert_eq!(server.session_count(), 1);
    for _ in 0..5 {
        echo(&proxy).await;
    }
    assert_eq!(server.session_count(), 1, "the client is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b55_a_removed_node_stops_being_picked_and_its_client_closes() {
    let target = target("removed");
    let (a, b) = (node_server("a"), node_server("b"));
    let reg_a = register(&target, "a", &a).await;
    let _reg_b = register(&target, "b", &b).await;
    let proxy = proxy(&target, ProxyOptions::default()).await;
    let first = [echo(&proxy).await, echo(&proxy).await];
    assert_eq!(first, ["a".to_owned(), "b".to_owned()]);
    assert_eq!((a.session_count(), b.session_count()), (1, 1));

    reg_a.deregister().await.expect("deregister");
    until(
        "a to leave the proxy",
        || proxy.stats().len() == 1,
        || proxy.changed(),
    )
    .await;
    for _ in 0..6 {
        assert_eq!(echo(&proxy).await, "b");
    }
    until(
        "a's client to close",
        || a.session_count() == 0,
        || tokio::time::sleep(Duration::from_millis(5)),
    )
    .await;
    assert_eq!(b.session_count(), 1, "the unchanged entry keeps its client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_node_is_never_picked() {
    let target = target("offline");
    let (a, b) = (node_server("a"), node_server("b"));
    let mut reg_a = register(&target, "a", &a).await;
    let _reg_b = register(&target, "b", &b).await;
    let proxy = proxy(&target, ProxyOptions::default()).await;
    reg_a.offline().await.expect("offline");
    until(
        "a to be offline",
        || {
            proxy
                .stats()
                .iter()
                .any(|s| s.id == "a" && s.status == EntryStatus::Offline)
        },
        || proxy.changed(),
    )
    .await;
    for _ in 0..6 {
        assert_eq!(echo(&proxy).await, "b");
    }
    assert_eq!(a.session_count(), 0);
    reg_a.online().await.expect("online");
    until(
        "a to be back",
        || {
            proxy
                .stats()
                .iter()
                .any(|s| s.id == "a" && s.status != EntryStatus::Offline)
        },
        || proxy.changed(),
    )
    .await;
    let answers: Vec<String> = [echo(&proxy).await, echo(&proxy).await].into();
    assert!(answers.contains(&"a".to_owned()), "{answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b58_a_refusing_node_fails_over_with_no_failed_call_and_is_put_aside() {
    let live = node_server("live");
    let dead = dead_addr();
    let target = format!("static://{dead},{}", live.local_addr());
    // A backoff longer than the test: the dead entry is tried exactly once.
    let aside = HealthOptions::default()
        .base(Duration::from_secs(60))
        .cap(Duration::from_secs(60));
    let proxy = proxy(&target, ProxyOptions::default().health(aside)).await;
    for _ in 0..10 {
        assert_eq!(echo(&proxy).await, "live", "every call succeeds");
    }
    let stats = proxy.stats();
    let dead_entry = stats.iter().find(|s| s.addr == dead).expect("dead entry");
    assert_eq!(dead_entry.status, EntryStatus::Unhealthy, "{stats:?}");
    assert_eq!(
        dead_entry.failures, 1,
        "put aside after one failed connect: {stats:?}"
    );
    assert_eq!(dead_entry.calls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b56_no_node_fails_at_once_naming_the_target() {
    let target = target("empty");
    let empty = proxy(&target, ProxyOptions::default()).await;
    let err = empty
        .call::<Bytes, Bytes>("echo", &Bytes::new())
        .await
        .expect_err("no node");
    assert!(err.is_no_node(), "{err:?}");
    assert_eq!(err.to_string(), format!("no available node for {target}"));

    // Only refusing nodes, no failover left: no call succeeds.
    let only_dead = format!("static://{}", dead_addr());
    let aside = HealthOptions::default()
        .base(Duration::from_secs(60))
        .cap(Duration::from_secs(60));
    let refusing = proxy(&only_dead, ProxyOptions::default().health(aside)).await;
    let err = refusing
        .call::<Bytes, Bytes>("echo", &Bytes::new())
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let err = refusing
        .call::<Bytes, Bytes>("echo", &Bytes::new())
        .await
        .expect_err("aside");
    assert!(err.is_no_node(), "the entry is put aside: {err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_node_picks_one_that_registers_meanwhile() {
    let target = target("wait");
    let proxy = proxy(
        &target,
        ProxyOptions::default().wait_for_node(Duration::from_secs(10)),
    )
    .await;
    let server = node_server("late");
    let call = {
        let proxy = proxy.clone();
        tokio::spawn(async move { echo(&proxy).await })
    };
    let _reg = register(&target, "late", &server).await;
    let answer = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("bounded")
        .expect("task");
    assert_eq!(answer, "late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hash_keyed_calls_stick_to_one_node() {
    let target = target("keyed");
    let servers = [node_server("a"), node_server("b"), node_server("c")];
    let mut regs = Vec::new();
    for (name, server) in ["a", "b", "c"].into_iter().zip(&servers) {
        let node = Node::new(server.local_addr().to_string()).with_id(name);
        regs.push(
            walle_discovery::Drivers::new()
                .register(&target, node, Duration::from_secs(30))
                .await
                .expect("register"),
        );
    }
    let proxy = proxy(&target, ProxyOptions::default().balancer("consistent_hash")).await;
    let mut owners = BTreeMap::new();
    for user in 0u64..40 {
        let key = user.to_be_bytes();
        let mut answers = Vec::new();
        for _ in 0..3 {
            let answer: Bytes = proxy
                .call_keyed(&key, "echo", &Bytes::new())
                .await
                .expect("call");
            answers.push(answer);
        }
        assert!(
            answers.windows(2).all(|w| w[0] == w[1]),
            "user {user}: {answers:?}"
        );
        *owners.entry(answers[0].clone()).or_insert(0) += 1;
    }
    assert_eq!(owners.len(), 3, "40 keys spread over the nodes: {owners:?}");
}
