//! One request -> response round trip through two `Process`es wired back
//! to back in memory (Inline dispatch, raw codec), per packet format.

use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context as Task, Poll, Waker};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use walle_codec::RawCodec;
use walle_packet::{DueFormat, ProtoFormat, Protocol, Route, WalleFormat};
use walle_process::mem::{MemPipe, MemTransport};
use walle_process::{Context, Process, Router};

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

criterion_group!(benches, roundtrip);
criterion_main!(benches);
