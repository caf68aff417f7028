//! Encode and decode of one small message through each codec.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use walle_codec::{Codec, JsonCodec, MsgPackCodec, ProstCodec, RawCodec};

#[derive(Clone, PartialEq, prost::Message)]
struct Chat {
    #[prost(uint64, tag = "1")]
    room: u64,
    #[prost(string, tag = "2")]
    text: String,
    #[prost(bytes = "bytes", tag = "3")]
    blob: Bytes,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Move {
    player: u32,
    name: String,
    path: Vec<(i16, i16)>,
}

fn bench_codec<M, C: Codec<M>>(c: &mut Criterion, name: &str, codec: C, msg: M) {
    let mut buf = Vec::with_capacity(1024);
    c.bench_function(&format!("{name}/encode"), |b| {
        b.iter(|| {
            buf.clear();
            codec.encode(black_box(&msg), &mut buf).expect("encode");
        })
    });
    buf.clear();
    codec.encode(&msg, &mut buf).expect("encode");
    let frame = Bytes::from(buf);
    c.bench_function(&format!("{name}/decode"), |b| {
        b.iter(|| black_box(codec.decode(black_box(frame.clone())).expect("decode")))
    });
}

fn codecs(c: &mut Criterion) {
    let chat = Chat {
        room: 42,
        text: "hello, room".into(),
        blob: Bytes::from(vec![7u8; 64]),
    };
    let mv = Move {
        player: 7,
        name: "knight".into(),
        path: vec![(1, 2), (3, 4), (5, 6)],
    };
    bench_codec(c, "prost", ProstCodec, chat);
    bench_codec(c, "json", JsonCodec, mv.clone());
    bench_codec(c, "msgpack", MsgPackCodec, mv);
    bench_codec(c, "raw", RawCodec, Bytes::from(vec![7u8; 64]));
}

criterion_group!(benches, codecs);
criterion_main!(benches);
