//! `MemoryCache` throughput beside moka and quick_cache, in the same run:
//!
//! - `memory/get_hit` and `memory/set`: one thread, 10 000 resident keys;
//! - `memory/zipf`: Zipf(1.0) keys over a 1M keyspace, a cache holding 10% of it,
//!   90% read-through requests (a get, and an insert on a miss) and 10% sets, on 1 and
//!   2 threads: `MemoryCache` direct, through `Arc<dyn Cache>`, moka and quick_cache.
//!
//! `cargo bench -p benches --bench memory`

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use benches::memory::{Contender, Direct, Dyn, Moka, QuickCache, keys, memory, value, zipf_trace};
use bytes::Bytes;
use cache_core::Cache;
use cache_memory::EvictionPolicy;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const KEYSPACE: usize = 1_000_000;
const CAPACITY: u64 = 100_000;
/// Requests per thread trace; a power of two so positions wrap with a mask.
const TRACE_LEN: usize = 1 << 20;

fn contenders(capacity: u64) -> Vec<Box<dyn Contender>> {
    let direct = memory(capacity, EvictionPolicy::default());
    let shared: Arc<dyn Cache> = Arc::new(memory(capacity, EvictionPolicy::default()));
    vec![
        Box::new(Direct(direct)),
        Box::new(Dyn(shared)),
        Box::new(Moka(moka::sync::Cache::new(capacity))),
        Box::new(QuickCache(quick_cache::sync::Cache::new(capacity as usize))),
    ]
}

fn single_thread(c: &mut Criterion) {
    const RESIDENT: usize = 10_000;
    let keys = keys(RESIDENT);
    let mut group = c.benchmark_group("memory/get_hit");
    group.throughput(Throughput::Elements(1));
    for contender in contenders(CAPACITY) {
        for key in &keys {
            contender.insert(key, value());
        }
        let mut next = 0;
        group.bench_function(contender.name(), |b| {
            b.iter(|| {
                next = (next + 1) % RESIDENT;
                black_box(contender.get(black_box(&keys[next])))
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("memory/set");
    group.throughput(Throughput::Elements(1));
    let stored = value();
    for contender in contenders(CAPACITY) {
        let mut next = 0;
        group.bench_function(contender.name(), |b| {
            b.iter(|| {
                next = (next + 1) % RESIDENT;
                contender.insert(black_box(&keys[next]), stored.clone());
            })
        });
    }
    group.finish();
}

/// One thread's requests: Zipf(1.0) keys, resolved to `&str` up front so the loop
/// reads them in order instead of chasing each `String`.
fn thread_trace(keys: &[String], seed: u64) -> Vec<&str> {
    zipf_trace(KEYSPACE, 1.0, TRACE_LEN, seed).into_iter().map(|id| keys[id as usize].as_str()).collect()
}

/// Whether request number `position` is a plain set: one in ten, spread evenly.
#[inline]
fn is_set(position: usize) -> bool {
    ((position as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % 10 == 0
}

#[inline]
fn serve<C: Contender + ?Sized>(cache: &C, key: &str, set: bool, stored: &Bytes) {
    if set {
        cache.insert(key, stored.clone());
    } else if !cache.get(key) {
        cache.insert(key, value());
    }
}

fn zipf(c: &mut Criterion) {
    let keys = keys(KEYSPACE);
    let traces: Vec<Vec<&str>> = (0..2).map(|thread| thread_trace(&keys, 0xc0ffee + thread)).collect();
    let stored = value();
    let mut group = c.benchmark_group("memory/zipf");
    for contender in contenders(CAPACITY) {
        // Warm: the cache starts measured at its steady state, full of the hot keys.
        for trace in &traces {
            for (position, key) in trace.iter().enumerate() {
                serve(&*contender, key, is_set(position), &stored);
            }
        }
        for threads in [1usize, 2] {
            group.throughput(Throughput::Elements(threads as u64));
            let cursors: Vec<AtomicUsize> = (0..threads).map(|_| AtomicUsize::new(0)).collect();
            group.bench_function(BenchmarkId::new(contender.name(), format!("{threads} threads")), |b| {
                b.iter_custom(|iters| {
                    let barrier = Barrier::new(threads);
                    std::thread::scope(|scope| {
                        let workers: Vec<_> = (0..threads)
                            .map(|thread| {
                                let (contender, trace) = (&*contender, &traces[thread]);
                                let (barrier, cursor, stored) = (&barrier, &cursors[thread], &stored);
                                scope.spawn(move || {
                                    let mut position = cursor.load(Ordering::Relaxed);
                                    barrier.wait();
                                    let started = Instant::now();
                                    for _ in 0..iters {
                                        let at = position & (TRACE_LEN - 1);
                                        serve(contender, trace[at], is_set(at), stored);
                                        position += 1;
                                    }
                                    let elapsed = started.elapsed();
                                    cursor.store(position, Ordering::Relaxed);
                                    elapsed
                                })
                            })
                            .collect();
                        // The slowest thread's time: the wall time of all the work.
                        workers.into_iter().filter_map(|worker| worker.join().ok()).max().unwrap_or_default()
                    })
                })
            });
        }
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default().sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = single_thread, zipf
}
criterion_main!(benches);
