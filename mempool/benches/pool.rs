//! Pool alloc+free against the system allocator (a `Vec<u8>` of the same
//! capacity, malloc + free) and against mimalloc (its allocation and free
//! called directly, as a `#[global_allocator]` would be), same sizes, same
//! run.
//!
//! Criterion measures each allocator in turn; on a shared machine the
//! allocators' figures then come from different moments. After criterion,
//! the bench runs interleaved rounds (each round times every allocator
//! once, in a rotating order) and prints the median per-round ratio of the
//! pool against each baseline with its min-max range. `--test` runs one
//! short round.
#![allow(unsafe_code)] // mimalloc's GlobalAlloc, called by hand
#![allow(clippy::print_stdout)] // a bench report

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BufMut;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use walle_mempool::{HeapPool, Pool, SizedPool};

/// One alloc+free of `size` bytes from the system allocator.
#[inline(always)]
fn system(size: usize) {
    let mut buf: Vec<u8> = Vec::with_capacity(black_box(size));
    buf.put_u8(1);
    black_box(&mut buf);
}

/// One alloc+free of `size` bytes from mimalloc.
#[inline(always)]
fn mimalloc(size: usize) {
    let mi = mimalloc::MiMalloc;
    let layout = Layout::from_size_align(black_box(size), 1).expect("a layout");
    // SAFETY: a non-zero size; the block is written inside its bounds and
    // freed with the layout it was allocated with.
    unsafe {
        let ptr = mi.alloc(layout);
        assert!(!ptr.is_null());
        ptr.write(1);
        black_box(ptr);
        mi.dealloc(ptr, layout);
    }
}

/// One alloc+free of `size` bytes from `pool`.
#[inline(always)]
fn pooled(pool: &impl Pool, size: usize) {
    let mut buf = pool.alloc(black_box(size));
    buf.as_mut_vec().put_u8(1);
    black_box(&mut buf);
}

fn alloc_free(c: &mut Criterion) {
    let mut group = c.benchmark_group("alloc_free");
    group.throughput(Throughput::Elements(1));
    let pool = SizedPool::new();
    let heap = HeapPool::new();
    for size in [64usize, 1024, 16 * 1024] {
        group.bench_with_input(BenchmarkId::new("system", size), &size, |b, &size| {
            b.iter(|| system(size))
        });
        group.bench_with_input(BenchmarkId::new("mimalloc", size), &size, |b, &size| {
            b.iter(|| mimalloc(size))
        });
        group.bench_with_input(BenchmarkId::new("sized_pool", size), &size, |b, &size| {
            b.iter(|| pooled(&pool, size))
        });
        group.bench_with_input(BenchmarkId::new("heap_pool", size), &size, |b, &size| {
            b.iter(|| pooled(&heap, size))
        });
    }
    group.finish();
}

/// Nanoseconds per alloc+free of `op` over `iters` calls. Not inlined, so
/// that each allocator's loop is compiled on its own, as criterion's are,
/// rather than sharing registers with the rest of `interleaved`.
#[inline(never)]
fn time_per_op(iters: u64, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        op();
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Interleaved rounds: every round times each allocator for about
/// `window`, starting from a different one each round, so that a slow
/// moment of the machine falls on all of them alike.
fn interleaved(rounds: usize, window: Duration) {
    let pool = SizedPool::new();
    println!("\nalloc+free, {rounds} interleaved rounds of {window:?} per allocator");
    println!(
        "{:>7} {:>10} {:>10} {:>10}  {:>22} {:>22}",
        "size",
        "system",
        "mimalloc",
        "sized_pool",
        "system/pool (min-max)",
        "mimalloc/pool (min-max)"
    );
    for size in [64usize, 1024, 16 * 1024] {
        // Calls per window, from a short calibration on the pool.
        let probe = time_per_op(100_000, || pooled(&pool, size)).max(0.1);
        let iters = ((window.as_nanos() as f64 / probe) as u64).max(1000);
        let mut times: [Vec<f64>; 3] = Default::default();
        for round in 0..rounds {
            for k in 0..3 {
                let which = (round + k) % 3;
                let ns = match which {
                    0 => time_per_op(iters, || system(size)),
                    1 => time_per_op(iters, || mimalloc(size)),
                    _ => time_per_op(iters, || pooled(&pool, size)),
                };
                times[which].push(ns);
            }
        }
        let ratios = |base: usize| -> Vec<f64> {
            (0..rounds).map(|r| times[base][r] / times[2][r]).collect()
        };
        let range = |v: Vec<f64>| {
            let (lo, hi) = v
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
            format!("{:.2}x ({lo:.2}-{hi:.2})", median(v))
        };
        println!(
            "{size:>7} {:>8.2}ns {:>8.2}ns {:>8.2}ns  {:>22} {:>22}",
            median(times[0].clone()),
            median(times[1].clone()),
            median(times[2].clone()),
            range(ratios(0)),
            range(ratios(1)),
        );
    }
}

criterion_group!(benches, alloc_free);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    if !flag("--list") {
        benches();
        if flag("--test") {
            interleaved(1, Duration::from_millis(5));
        } else {
            interleaved(15, Duration::from_millis(100));
        }
    }
    Criterion::default().configure_from_args().final_summary();
}
