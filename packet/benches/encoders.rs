//! The packet encoders: LZ4 compress and decompress, XChaCha20-Poly1305
//! seal and open, alone and in a whole protocol beside a plain one, at
//! game-sized bodies.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use walle_packet::{
    AeadEncoder, AeadKey, Head, Lz4Encoder, Lz4Options, PacketEncoder, Protocol, Route, WalleFormat,
};

/// A body as a game sends: repeated field names, varying numbers.
fn state(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 64);
    let mut i = 0u32;
    while out.len() < size {
        out.extend_from_slice(
            format!(
                "{{\"id\":{i},\"x\":{},\"y\":{},\"hp\":100}}",
                i * 7 % 1000,
                i * 13 % 1000
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.truncate(size);
    out
}

fn lz4(c: &mut Criterion) {
    let lz4 = Lz4Encoder::new(Lz4Options::default());
    let mut group = c.benchmark_group("lz4");
    for size in [1024usize, 16 * 1024] {
        let body = state(size);
        group.throughput(Throughput::Bytes(size as u64));
        let mut out = Vec::with_capacity(size + 64);
        group.bench_function(BenchmarkId::new("compress", size), |b| {
            b.iter(|| {
                out.clear();
                lz4.encode(black_box(&body), &mut out).expect("compresses");
            })
        });
        out.clear();
        lz4.encode(&body, &mut out).expect("compresses");
        let wire = Bytes::from(out.clone());
        group.bench_function(BenchmarkId::new("decompress", size), |b| {
            b.iter(|| black_box(lz4.decode(black_box(wire.clone())).expect("decompresses")))
        });
    }
    group.finish();
}

fn aead(c: &mut Criterion) {
    let key = AeadKey::random();
    let sender = AeadEncoder::new(key.clone());
    let receiver = AeadEncoder::new(key);
    let mut group = c.benchmark_group("aead");
    for size in [64usize, 1024, 16 * 1024] {
        let body = state(size);
        group.throughput(Throughput::Bytes(size as u64));
        let mut out = Vec::with_capacity(size + 64);
        group.bench_function(BenchmarkId::new("seal", size), |b| {
            b.iter(|| {
                out.clear();
                sender.encode(black_box(&body), &mut out).expect("seals");
            })
        });
        // Each packet opens once (a second time is a replay): sealed
        // outside the timing, in order.
        group.bench_function(BenchmarkId::new("open", size), |b| {
            b.iter_batched(
                || {
                    let mut wire = Vec::with_capacity(size + 64);
                    sender.encode(&body, &mut wire).expect("seals");
                    Bytes::from(wire)
                },
                |wire| black_box(receiver.decode(wire).expect("opens")),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// A whole walle request encoded through a plain protocol and through one
/// that compresses and seals, same run: the encoders' cost per packet.
fn pipeline(c: &mut Criterion) {
    let key = AeadKey::random();
    let plain = Protocol::new(WalleFormat::new());
    let sealed = Protocol::new(WalleFormat::new())
        .with_encoder(Lz4Encoder::new(Lz4Options::default()))
        .with_encoder(AeadEncoder::new(key));
    let head = Head::request(Route::Uri("game.Room/Move"), 7);
    let mut group = c.benchmark_group("pipeline");
    for size in [64usize, 1024] {
        let payload = state(size);
        group.throughput(Throughput::Bytes(size as u64));
        for (name, protocol) in [("plain", &plain), ("lz4+aead", &sealed)] {
            let mut out = Vec::with_capacity(size + 128);
            group.bench_function(BenchmarkId::new(name, size), |b| {
                b.iter(|| {
                    out.clear();
                    protocol
                        .encode(black_box(&head), black_box(&payload), &mut out)
                        .expect("encodes");
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, lz4, aead, pipeline);
criterion_main!(benches);
