//! Encode and decode of each packet format at 64 B and 1 KiB payloads.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use walle_packet::{DueFormat, Head, ProtoFormat, Protocol, Route, WalleFormat};

fn formats(c: &mut Criterion) {
    let cases: [(&str, Protocol, Route<'static>); 4] = [
        (
            "walle",
            Protocol::new(WalleFormat::new()),
            Route::Uri("game.Room/Join"),
        ),
        (
            "walle-id",
            Protocol::new(WalleFormat::with_ids()),
            Route::Id(1),
        ),
        (
            "walle-proto",
            Protocol::new(ProtoFormat::new()),
            Route::Uri("game.Room/Join"),
        ),
        ("due", Protocol::new(DueFormat::new()), Route::Id(1)),
    ];
    for size in [64usize, 1024] {
        let payload = vec![0xa5u8; size];
        let mut group = c.benchmark_group(format!("packet/{size}B"));
        group.throughput(Throughput::Bytes(size as u64));
        for (name, protocol, route) in &cases {
            let head = Head::request(*route, 77);
            let mut out = Vec::with_capacity(size + 64);
            group.bench_function(BenchmarkId::new("encode", name), |b| {
                b.iter(|| {
                    out.clear();
                    protocol
                        .encode(black_box(&head), black_box(&payload), &mut out)
                        .expect("encode");
                })
            });
            out.clear();
            protocol.encode(&head, &payload, &mut out).expect("encode");
            let width = protocol.framing().width();
            let body = Bytes::from(out[width..].to_vec());
            group.bench_function(BenchmarkId::new("decode", name), |b| {
                b.iter(|| black_box(protocol.decode(black_box(body.clone())).expect("decode")))
            });
            let wire = out.clone();
            let mut decoder = protocol.decoder();
            group.bench_function(BenchmarkId::new("frame+decode", name), |b| {
                b.iter(|| {
                    let mut stream = BytesMut::from(&wire[..]);
                    let body = decoder.decode(&mut stream).expect("frame").expect("whole");
                    black_box(protocol.decode(body).expect("decode"))
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, formats);
criterion_main!(benches);
