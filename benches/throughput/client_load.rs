//! The framework's own client as a load client: one `Client` per
//! connection, `depth` tasks calling `echo` on each, on a one-worker tokio
//! runtime that the clients also run on when `caller_runtime` says (as the
//! `loadgen` example does); otherwise their io runs on the backend's own. Against the same server
//! kind as the raw load client, its throughput is the figure a user's own
//! code gets.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use walle::net::{Backend, Client, ClientOptions};
use walle::prelude::*;

pub(crate) struct ClientLoad {
    runtime: tokio::runtime::Runtime,
    clients: Vec<Client<RawCodec>>,
    depth: usize,
    payload: Bytes,
}

impl ClientLoad {
    pub(crate) fn connect(
        addr: std::net::SocketAddr,
        backend: Backend,
        caller_runtime: bool,
        conns: usize,
        depth: usize,
        size: usize,
    ) -> ClientLoad {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let clients = runtime.block_on(async {
            let mut clients = Vec::new();
            for _ in 0..conns {
                let client = Client::builder(addr, Router::new(RawCodec))
                    .backend(backend.clone())
                    .options(ClientOptions::default().caller_runtime(caller_runtime))
                    .connect()
                    .await
                    .expect("a client");
                clients.push(client);
            }
            clients
        });
        ClientLoad {
            runtime,
            clients,
            depth,
            payload: Bytes::from(vec![0x5a; size]),
        }
    }

    /// `depth` tasks per client, each calling until `more` says stop;
    /// returns the calls answered.
    fn drive(&self, more: impl Fn() -> bool + Send + Sync + 'static) -> u64 {
        let more = Arc::new(more);
        let tasks: Vec<_> = self
            .clients
            .iter()
            .flat_map(|client| (0..self.depth).map(move |_| client.clone()))
            .map(|client| {
                let (payload, more) = (self.payload.clone(), more.clone());
                self.runtime.spawn(async move {
                    let mut answered = 0u64;
                    while more() {
                        let answer: Bytes = client.call("echo", &payload).await.expect("echo");
                        assert_eq!(answer.len(), payload.len());
                        answered += 1;
                    }
                    answered
                })
            })
            .collect();
        tasks
            .into_iter()
            .map(|task| self.runtime.block_on(task).expect("a load task"))
            .sum()
    }

    /// Runs for `window`; returns the answers that arrived in it. A timer
    /// ends the window, as the raw load client reads the clock once per
    /// turn of its loop, not once per call.
    pub(crate) fn run_for(&mut self, window: Duration) -> u64 {
        let open = Arc::new(AtomicBool::new(true));
        let timer = open.clone();
        self.runtime.spawn(async move {
            tokio::time::sleep(window).await;
            timer.store(false, Ordering::Relaxed);
        });
        self.drive(move || open.load(Ordering::Relaxed))
    }

    /// Runs until `n` answers have arrived; returns the time taken.
    pub(crate) fn run(&mut self, n: u64) -> Duration {
        let started = Instant::now();
        let sent = Arc::new(AtomicU64::new(0));
        self.drive(move || sent.fetch_add(1, Ordering::Relaxed) < n);
        started.elapsed()
    }
}
