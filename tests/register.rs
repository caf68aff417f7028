//! The `register` example as a separate process: it registers, prints its
//! id, deregisters on SIGINT/SIGTERM, and — fault test (a) — when killed
//! with SIGKILL its node disappears from discovery within TTL + 2 s.

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use walle::discovery::{Change, Discovery, Drivers};
use walle::kvstore::testing::Etcd;

fn example() -> PathBuf {
    support::example("register")
}

struct Registrant {
    child: Child,
    stdout: BufReader<ChildStdout>,
    id: String,
}

impl Registrant {
    /// Starts the example and reads `registered <id> at <addr> in <target>`.
    fn start(target: &str, ttl_secs: u64) -> Registrant {
        let mut child = Command::new(example())
            .args([
                "--target",
                target,
                "--addr",
                "127.0.0.1:7000",
                "--ttl",
                &ttl_secs.to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the register example");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the first line");
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(
            words.len() >= 3 && words[0] == "registered",
            "unexpected first line {line:?}"
        );
        let id = words[1].to_owned();
        Registrant { child, stdout, id }
    }

    fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.child.id()).expect("a pid");
        kill(Pid::from_raw(pid), signal).expect("signal the example");
    }

    /// Waits for the process to exit and returns its status and the rest
    /// of its output.
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "the example did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut self.stdout, &mut rest);
        (status, rest)
    }
}

impl Drop for Registrant {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn next(discovery: &mut Discovery, within: Duration) -> Change {
    tokio::time::timeout(within, discovery.next())
        .await
        .expect("a change in time")
        .expect("discovery still open")
}

fn start_etcd() -> Etcd {
    Etcd::start_or_panic()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_a_sigkilled_registrant_disappears_within_ttl_plus_2s() {
    let etcd = start_etcd();
    let target = format!("etcd://{}/services/echo", etcd.address());
    let mut echo = Drivers::new().resolve(&target).await.unwrap();
    let ttl = Duration::from_secs(3);
    let mut registrant = Registrant::start(&target, ttl.as_secs());
    let id = registrant.id.clone();
    let seen = next(&mut echo, Duration::from_secs(5)).await;
    assert!(
        matches!(seen, Change::Insert(ref n) if n.id == id),
        "{seen:?}"
    );

    registrant.child.kill().expect("SIGKILL the registrant");
    let killed = Instant::now();
    registrant.child.wait().expect("reap it");
    let limit = ttl + Duration::from_secs(2);
    assert_eq!(next(&mut echo, limit).await, Change::Remove(id));
    let gone = killed.elapsed();
    assert!(gone <= limit, "gone after {gone:?}");
    eprintln!("killed registrant gone from discovery after {gone:?} (TTL {ttl:?})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b51_register_example_deregisters_on_sigint() {
    let etcd = start_etcd();
    let target = format!("etcd://{}/services/echo", etcd.address());
    let mut echo = Drivers::new().resolve(&target).await.unwrap();
    // A long TTL: the node must go because it deregistered, not by expiry.
    let registrant = Registrant::start(&target, 60);
    let id = registrant.id.clone();
    assert!(matches!(
        next(&mut echo, Duration::from_secs(5)).await,
        Change::Insert(_)
    ));
    registrant.signal(Signal::SIGINT);
    assert_eq!(
        next(&mut echo, Duration::from_secs(5)).await,
        Change::Remove(id.clone())
    );
    let (status, rest) = registrant.finish();
    assert!(status.success(), "{status}");
    assert_eq!(rest.trim(), format!("deregistered {id}"));
}

#[test]
fn register_example_runs_on_mem_without_etcd() {
    let registrant = Registrant::start("mem:///services/echo", 3);
    let id = registrant.id.clone();
    registrant.signal(Signal::SIGTERM);
    let (status, rest) = registrant.finish();
    assert!(status.success(), "{status}");
    assert_eq!(rest.trim(), format!("deregistered {id}"));
}
