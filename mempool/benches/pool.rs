//! Pool alloc+free against the system allocator (a `Vec<u8>` of the same
//! capacity, malloc + free) and against mimalloc (its allocation and free
//! called directly, as a `#[global_allocator]` would be), same sizes, same
//! run.
#![allow(unsafe_code)] // mimalloc's GlobalAlloc, called by hand

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;

use bytes::BufMut;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use walle_mempool::{HeapPool, Pool, SizedPool};

fn alloc_free(c: &mut Criterion) {
    let mut group = c.benchmark_group("alloc_free");
    group.throughput(Throughput::Elements(1));
    let pool = SizedPool::new();
    let heap = HeapPool::new();
    for size in [64usize, 1024, 16 * 1024] {
        group.bench_with_input(BenchmarkId::new("system", size), &size, |b, &size| {
            b.iter(|| {
                let mut buf: Vec<u8> = Vec::with_capacity(black_box(size));
                buf.put_u8(1);
                black_box(&mut buf);
            })
        });
        group.bench_with_input(BenchmarkId::new("mimalloc", size), &size, |b, &size| {
            let mi = mimalloc::MiMalloc;
            b.iter(|| {
                let layout = Layout::from_size_align(black_box(size), 1).expect("a layout");
                // SAFETY: a non-zero size; the block is written inside its
                // bounds and freed with the layout it was allocated with.
                unsafe {
                    let ptr = mi.alloc(layout);
                    assert!(!ptr.is_null());
                    ptr.write(1);
                    black_box(ptr);
                    mi.dealloc(ptr, layout);
                }
            })
        });
        group.bench_with_input(BenchmarkId::new("sized_pool", size), &size, |b, &size| {
            b.iter(|| {
                let mut buf = pool.alloc(black_box(size));
                buf.as_mut_vec().put_u8(1);
                black_box(&mut buf);
            })
        });
        group.bench_with_input(BenchmarkId::new("heap_pool", size), &size, |b, &size| {
            b.iter(|| {
                let mut buf = heap.alloc(black_box(size));
                buf.as_mut_vec().put_u8(1);
                black_box(&mut buf);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, alloc_free);
criterion_main!(benches);
