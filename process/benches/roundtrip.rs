//! One request -> response round trip through two `Process`es wired back
//! to back in memory (Inline dispatch, raw codec), per packet format.
//!
//! `json_pools` runs the round trip with the JSON codec, which encodes
//! every payload into a buffer of the process pool, over a transport that
//! encodes every frame into a chunk of a second pool, as net's outbound
//! queue does: two pools used in turn on one thread, per message. Its
//! `one_pool` case shares one pool for both, the baseline.

#[path = "../tests/util/chunk.rs"]
mod chunk;

use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context as Task, Poll, Waker};

use bytes::Bytes;
use chunk::ChunkTransport;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use walle_codec::{JsonCodec, RawCodec};
use walle_mempool::{Pool, SizedPool};
use walle_packet::{DueFormat, ProtoFormat, Protocol, Route, WalleFormat};
use walle_process::mem::{MemPipe, MemTransport};
use walle_process::{Context, Process, Router, Transport};

struct Pair {
    client: Process<RawCodec>,
    server: Process<RawCodec>,
    to_server: Arc<MemTransport>,
    to_client: Arc<MemTransport>,
    up: MemPipe,
    down: MemPipe,
}

fn pair(protocol: Protocol) -> Pair {
    let mut router = Router::new(RawCodec);
    router
        .route("echo", |_: &mut Context, req: Bytes| Ok(req))
        .expect("route");
    router
        .route_id(1, |_: &mut Context, req: Bytes| Ok(req))
        .expect("route");
    let to_server = Arc::new(MemTransport::new(1 << 20));
    let to_client = Arc::new(MemTransport::new(1 << 20));
    let server = Process::builder(protocol.clone(), router)
        .transport(to_client.clone())
        .build()
        .expect("server");
    let client = Process::builder(protocol.clone(), Router::new(RawCodec))
        .transport(to_server.clone())
        .build()
        .expect("client");
    Pair {
        client,
        server,
        up: MemPipe::new(&protocol),
        down: MemPipe::new(&protocol),
        to_server,
        to_client,
    }
}

fn round_trip(p: &mut Pair, route: Route<'_>, payload: &Bytes) -> Bytes {
    let mut call = p.client.call::<Bytes, Bytes>(route, payload);
    p.up.pump(&p.to_server, &p.server).expect("server");
    p.down.pump(&p.to_client, &p.client).expect("client");
    match std::pin::Pin::new(&mut call).poll(&mut Task::from_waker(Waker::noop())) {
        Poll::Ready(Ok(answer)) => answer,
        other => panic!("{other:?}"),
    }
}

use std::future::Future;

fn roundtrip(c: &mut Criterion) {
    let mut group = c.benchmark_group("roundtrip");
    group.throughput(Throughput::Elements(1));
    let formats: [(&str, Protocol, Route<'static>); 4] = [
        (
            "walle",
            Protocol::new(WalleFormat::new()),
            Route::Uri("echo"),
        ),
        (
            "walle-id",
            Protocol::new(WalleFormat::with_ids()),
            Route::Id(1),
        ),
        (
            "walle-proto",
            Protocol::new(ProtoFormat::new()),
            Route::Uri("echo"),
        ),
        ("due", Protocol::new(DueFormat::new()), Route::Id(1)),
    ];
    for size in [64usize, 1024] {
        let payload = Bytes::from(vec![1u8; size]);
        for (name, protocol, route) in &formats {
            let mut p = pair(protocol.clone());
            group.bench_with_input(BenchmarkId::new(*name, size), &size, |b, _| {
                b.iter(|| black_box(round_trip(&mut p, *route, &payload)))
            });
        }
    }
    group.finish();
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Move {
    player: u64,
    x: i32,
    y: i32,
    tick: u32,
}

struct JsonPair {
    client: Process<JsonCodec>,
    server: Process<JsonCodec>,
    to_server: Arc<MemTransport>,
    to_client: Arc<MemTransport>,
    up: MemPipe,
    down: MemPipe,
}

fn json_pair(process_pool: Arc<dyn Pool>, chunk_pool: Arc<dyn Pool>) -> JsonPair {
    let protocol = Protocol::new(WalleFormat::new());
    let mut router = Router::new(JsonCodec);
    router
        .route("move", |_: &mut Context, m: Move| Ok(m))
        .expect("route");
    let to_server = Arc::new(MemTransport::new(1 << 20));
    let to_client = Arc::new(MemTransport::new(1 << 20));
    let chunked = |link: &Arc<MemTransport>| -> Arc<dyn Transport> {
        Arc::new(ChunkTransport {
            link: link.clone(),
            chunks: chunk_pool.clone(),
        })
    };
    let server = Process::builder(protocol.clone(), router)
        .transport(chunked(&to_client))
        .pool(process_pool.clone())
        .build()
        .expect("server");
    let client = Process::builder(protocol.clone(), Router::new(JsonCodec))
        .transport(chunked(&to_server))
        .pool(process_pool)
        .build()
        .expect("client");
    JsonPair {
        client,
        server,
        up: MemPipe::new(&protocol),
        down: MemPipe::new(&protocol),
        to_server,
        to_client,
    }
}

fn json_round_trip(p: &mut JsonPair, msg: &Move) -> Move {
    let mut call = p.client.call::<Move, Move>("move", msg);
    p.up.pump(&p.to_server, &p.server).expect("server");
    p.down.pump(&p.to_client, &p.client).expect("client");
    match std::pin::Pin::new(&mut call).poll(&mut Task::from_waker(Waker::noop())) {
        Poll::Ready(Ok(answer)) => answer,
        other => panic!("{other:?}"),
    }
}

fn json_pools(c: &mut Criterion) {
    let mut group = c.benchmark_group("json_pools");
    group.throughput(Throughput::Elements(1));
    let msg = Move {
        player: 42,
        x: -17,
        y: 1024,
        tick: 7,
    };
    let shared: Arc<dyn Pool> = Arc::new(SizedPool::new());
    let cases = [
        ("one_pool", shared.clone(), shared),
        (
            "two_pools",
            Arc::new(SizedPool::new()) as Arc<dyn Pool>,
            Arc::new(SizedPool::new()) as Arc<dyn Pool>,
        ),
    ];
    for (name, process_pool, chunk_pool) in cases {
        let mut p = json_pair(process_pool, chunk_pool);
        group.bench_function(name, |b| {
            b.iter(|| black_box(json_round_trip(&mut p, &msg)))
        });
    }
    group.finish();
}

criterion_group!(benches, roundtrip, json_pools);
criterion_main!(benches);
