//! The `cluster` example's in-process run (`examples/cluster/cluster.rs`)
//! through the public API: three nodes on `mem://` behind a gate, a load
//! client through the gate, and a clean stop.

#[path = "../examples/cluster/cluster.rs"]
mod cluster;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_cluster_answers_every_call_from_all_three_nodes_and_stops_cleanly() {
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        cluster::run_local("mem:///cluster-test/nodes", 1.0, &|line| {
            eprintln!("{line}")
        }),
    )
    .await
    .expect("the cluster ran within its bound")
    .expect("the cluster ran");
    assert!(report.load.ok > 0, "{:?}", report.load);
    assert_eq!(report.load.failed, 0, "{:?}", report.load);
    assert_eq!(report.load.calls, report.load.ok);
    assert_eq!(
        report.load.nodes,
        ["node-1", "node-2", "node-3"],
        "round-robin reaches every node"
    );
    // A user's counter lives on one node: the second call counts 2 there.
    for (user, first) in &report.counts[..3] {
        let (node, count) = first.split_once(':').expect("<node>:<count>");
        assert_eq!(count, "1", "{user}: {first}");
        let again = report.counts[3..]
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, a)| a.as_str());
        assert_eq!(again, Some(format!("{node}:2").as_str()), "{user}");
    }
    assert!(report.clean, "every app stopped cleanly");
}
