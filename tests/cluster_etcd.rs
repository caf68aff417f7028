//! The `cluster` example as separate processes on a real etcd: three
//! nodes and a gate, load through the gate from this test, and a node
//! lost under load. SIGTERM (the graceful stop of BEHAVIOURS 61) costs no
//! call; SIGKILL costs at most the calls in flight on that node, later
//! calls succeed, and the node leaves a proxy within TTL + 2 s.

mod support;

#[path = "../examples/cluster/cluster.rs"]
mod cluster;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use walle::clientproxy::ClientProxy;
use walle::kvstore::testing::Etcd;
use walle::prelude::*;

const BOUND: Duration = Duration::from_secs(20);
const CONNS: usize = 4;
const DEPTH: usize = 8;

fn example() -> PathBuf {
    support::example("cluster")
}

/// One `cluster` process, its stdout lines arriving on a channel.
struct Part {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Part {
    fn start(name: &str, args: &[&str]) -> Part {
        let mut child = Command::new(example())
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the cluster example");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Part {
            name: name.to_owned(),
            child,
            lines,
        }
    }

    /// The next line, within the bound.
    fn line(&self) -> String {
        self.lines
            .recv_timeout(BOUND)
            .unwrap_or_else(|e| panic!("{}: no line within {BOUND:?}: {e}", self.name))
    }

    /// The address of the first line, `<who>: listening on <addr>, ...`.
    fn listening(&self) -> String {
        let line = self.line();
        let addr = line
            .split_once("listening on ")
            .and_then(|(_, rest)| rest.split(',').next())
            .unwrap_or_else(|| panic!("{}: unexpected first line {line:?}", self.name));
        addr.to_owned()
    }

    fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.child.id()).expect("a pid");
        kill(Pid::from_raw(pid), signal).expect("signal the part");
    }

    /// Waits (bounded) for the exit.
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + BOUND;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.name);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node(target: &str, name: &str) -> Part {
    let part = Part::start(
        name,
        &[
            "node",
            "--target",
            target,
            "--addr",
            "127.0.0.1:0",
            "--name",
            name,
        ],
    );
    part.listening();
    part
}

/// Three nodes and a gate on a fresh etcd.
struct Cluster {
    _etcd: Etcd,
    target: String,
    nodes: Vec<Part>,
    gate: Part,
    gate_addr: String,
}

fn cluster() -> Cluster {
    let etcd = Etcd::start_or_panic();
    let target = format!("etcd://{}/cluster/nodes", etcd.address());
    let nodes: Vec<Part> = ["node-1", "node-2", "node-3"]
        .iter()
        .map(|name| node(&target, name))
        .collect();
    let gate = Part::start(
        "gate",
        &["gate", "--target", &target, "--listen", "127.0.0.1:0"],
    );
    let gate_addr = gate.listening();
    Cluster {
        _etcd: etcd,
        target,
        nodes,
        gate,
        gate_addr,
    }
}

/// Load through the gate for `secs`, with `at_second_one` run when the
/// first per-second line arrives. Returns the report and the lines.
async fn load_with(
    gate: &str,
    secs: f64,
    at_second_one: impl FnOnce(),
) -> (cluster::load::LoadReport, Vec<String>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let gate = gate.to_owned();
    let load = tokio::spawn(async move {
        let say = move |line: &str| {
            let _ = tx.send(line.to_owned());
        };
        cluster::load::run(&gate, CONNS, DEPTH, secs, &say).await
    });
    let mut lines = Vec::new();
    let mut hook = Some(at_second_one);
    while let Some(line) = rx.recv().await {
        eprintln!("client: {line}");
        if let Some(hook) = hook.take() {
            hook();
        }
        lines.push(line);
    }
    let report = tokio::time::timeout(BOUND, load)
        .await
        .expect("the load ended")
        .expect("join")
        .expect("load");
    eprintln!("client: {}", report.line());
    (report, lines)
}

fn failed_in(line: &str) -> u64 {
    line.rsplit_once("failed=")
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or_else(|| panic!("no failed= in {line:?}"))
}

async fn watcher(target: &str) -> ClientProxy<RawCodec> {
    ClientProxy::builder(target, Router::new(RawCodec))
        .connect()
        .await
        .expect("a proxy of the target")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_with_sigterm_under_load_costs_no_call() {
    let mut cluster = cluster();
    let proxy = watcher(&cluster.target).await;
    let leaving = &cluster.nodes[0];
    let (report, _) = load_with(&cluster.gate_addr, 4.0, || leaving.signal(Signal::SIGTERM)).await;
    assert_eq!(report.failed, 0, "{}", report.line());
    assert!(report.ok > 0, "{}", report.line());
    assert_eq!(
        report.nodes,
        ["node-1", "node-2", "node-3"],
        "{}",
        report.line()
    );

    let leaving = &mut cluster.nodes[0];
    let status = leaving.wait();
    assert!(status.success(), "node-1 exited with {status}");
    let stopped = leaving.line();
    assert!(stopped.starts_with("node node-1: stopped"), "{stopped:?}");
    // It deregistered on its way out: gone from discovery, not expired.
    let deadline = tokio::time::Instant::now() + BOUND;
    while proxy.stats().iter().any(|s| s.id == "node-1") {
        let _ = tokio::time::timeout_at(deadline, proxy.changed()).await;
        assert!(
            tokio::time::Instant::now() < deadline,
            "node-1 still listed"
        );
    }
    cluster.gate.signal(Signal::SIGTERM);
    assert!(cluster.gate.wait().success(), "the gate stopped cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_costs_at_most_its_calls_in_flight_and_leaves_within_ttl_plus_2s()
{
    let cluster = cluster();
    let proxy = watcher(&cluster.target).await;
    let deadline = tokio::time::Instant::now() + BOUND;
    while proxy.stats().len() < 3 {
        let _ = tokio::time::timeout_at(deadline, proxy.changed()).await;
        assert!(tokio::time::Instant::now() < deadline, "three nodes listed");
    }
    let killed = std::sync::Mutex::new(None);
    let victim = &cluster.nodes[1];
    let (report, lines) = load_with(&cluster.gate_addr, 5.0, || {
        victim.signal(Signal::SIGKILL);
        *killed.lock().expect("lock") = Some(Instant::now());
    })
    .await;
    let killed = killed.lock().expect("lock").expect("killed at second one");
    let in_flight = (CONNS * DEPTH) as u64;
    assert!(
        report.failed <= in_flight,
        "{} > {in_flight} in flight",
        report.line()
    );
    assert!(report.ok > 0, "{}", report.line());
    let tail: Vec<u64> = lines.iter().rev().take(2).map(|l| failed_in(l)).collect();
    assert_eq!(tail, [0, 0], "later calls succeed: {lines:?}");

    let limit = cluster::NODE_TTL + Duration::from_secs(2);
    let until = tokio::time::Instant::from_std(killed + limit);
    while proxy.stats().iter().any(|s| s.id == "node-2") {
        let _ = tokio::time::timeout_at(until, proxy.changed()).await;
        assert!(
            tokio::time::Instant::now() < until,
            "node-2 still listed {limit:?} after SIGKILL"
        );
    }
    eprintln!("node-2 left the proxy {:?} after SIGKILL", killed.elapsed());
}
