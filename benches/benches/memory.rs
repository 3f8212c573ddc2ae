//! `MemoryCache` throughput beside moka and quick_cache, in the same run:
//!
//! - `memory/get_hit` and `memory/set`: one thread, 10 000 resident keys;
//! - `memory/zipf`: Zipf(1.0) keys over a 1M keyspace, a cache holding 10% of it,
//!   90% read-through requests (a get, and an insert on a miss) and 10% sets, on 1 and
//!   2 threads: `MemoryCache` direct, through `Arc<dyn Cache>`, moka and quick_cache,
//!   and `MemoryCache` once more with quick_cache's shard count.
//!
//! On equal terms: every contender stores the same key layout (inline up to 22 bytes,
//! [`InlineKey`] for the peers, as `MemoryCache` keeps its own) and reads by `&str`
//! bytes without building a key, every value is the same 32-byte `Bytes`, and each
//! contender serves a read-through request with its own fastest way to do one. Our
//! default shard count (16 per core) differs from quick_cache's (4 per core), which
//! helps us when threads contend: the `shards as quick_cache` row takes that away.
//! - `memory/wrappers`: the cost of the umbrella's wrappers on the same store, all
//!   through `Arc<dyn Cache>`: bare, `Instrumented` (one call in 8 timed, and every call
//!   timed), and `Tiered` (memory before memory), on `get_hit` and the 1-thread Zipf mix.
//!
//! `cargo bench -p benches --bench memory`

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use benches::memory::{Contender, Direct, Dyn, InlineKey, Moka, QuickCache, keys, memory, ready, value, zipf_trace};
use bytes::Bytes;
use cache_core::{Cache, Ttl};
use cache_memory::EvictionPolicy;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const KEYSPACE: usize = 1_000_000;
const CAPACITY: u64 = 100_000;
/// Keys held by the one-thread `get_hit`, `set` and wrapper rows.
const RESIDENT: usize = 10_000;
/// Requests per thread trace; a power of two so positions wrap with a mask.
const TRACE_LEN: usize = 1 << 20;

fn contenders(capacity: u64) -> Vec<Box<dyn Contender>> {
    let direct = memory(capacity, EvictionPolicy::default());
    let shared: Arc<dyn Cache> = Arc::new(memory(capacity, EvictionPolicy::default()));
    vec![
        Box::new(Direct(direct)),
        Box::new(Dyn(shared)),
        Box::new(Moka(moka::sync::Cache::<InlineKey, Bytes>::new(capacity))),
        Box::new(QuickCache::new(capacity)),
    ]
}

/// The Zipf rows' contenders: [`contenders`], and `MemoryCache` split into as many shards
/// as quick_cache splits itself into on this machine (read from quick_cache itself).
fn zipf_contenders(capacity: u64) -> Vec<Box<dyn Contender>> {
    let mut all = contenders(capacity);
    let shards = QuickCache::new(capacity).0.num_shards();
    let cache = cache_memory::MemoryCache::builder()
        .max_capacity(capacity)
        .shards(shards)
        .build()
        .expect("a positive capacity always builds");
    assert_eq!(cache.shard_count(), shards, "MemoryCache took quick_cache's shard count");
    all.insert(1, Box::new(Renamed(format!("memory S3Fifo, {shards} shards as quick_cache"), Direct(cache))));
    all
}

/// A contender under another name.
struct Renamed<C>(String, C);

impl<C: Contender> Contender for Renamed<C> {
    fn name(&self) -> String {
        self.0.clone()
    }
    fn get(&self, key: &str) -> bool {
        self.1.get(key)
    }
    fn insert(&self, key: &str, value: Bytes) {
        self.1.insert(key, value);
    }
    fn request(&self, key: &str) -> bool {
        self.1.request(key)
    }
}

fn single_thread(c: &mut Criterion) {
    let keys = keys(RESIDENT);
    let mut group = c.benchmark_group("memory/get_hit");
    group.throughput(Throughput::Elements(1));
    for contender in contenders(CAPACITY) {
        bench_get_hit(&mut group, &*contender, &keys);
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

/// One `get_hit` row: `contender` holding the [`RESIDENT`] keys, read in turn.
fn bench_get_hit(group: &mut BenchmarkGroup<'_, WallTime>, contender: &dyn Contender, keys: &[String]) {
    debug_assert_eq!(keys.len(), RESIDENT);
    for key in keys {
        contender.insert(key, value());
    }
    let mut next = 0;
    group.bench_function(contender.name(), |b| {
        b.iter(|| {
            // A constant modulus, as before: a division by a runtime length would cost
            // more than the hit being measured.
            next = (next + 1) % RESIDENT;
            black_box(contender.get(black_box(&keys[next])))
        })
    });
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
    } else {
        cache.request(key);
    }
}

/// `iters` requests per thread on `threads` threads, each thread walking its own trace
/// from its cursor; the slowest thread's time, which is the wall time of all the work.
fn run_zipf(contender: &dyn Contender, traces: &[Vec<&str>], cursors: &[AtomicUsize], iters: u64) -> Duration {
    run_zipf_timed(contender, traces, cursors, iters).0
}

/// The CPU time the calling thread has used so far.
fn thread_cpu_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(u64::try_from(now.tv_sec).unwrap_or(0), u32::try_from(now.tv_nsec).unwrap_or(0))
}

/// [`run_zipf`], also returning the largest CPU time a thread spent on its requests.
fn run_zipf_timed(
    contender: &dyn Contender,
    traces: &[Vec<&str>],
    cursors: &[AtomicUsize],
    iters: u64,
) -> (Duration, Duration) {
    let threads = cursors.len();
    let barrier = Barrier::new(threads);
    let stored = value();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|thread| {
                let (trace, barrier, cursor, stored) = (&traces[thread], &barrier, &cursors[thread], &stored);
                scope.spawn(move || {
                    let mut position = cursor.load(Ordering::Relaxed);
                    barrier.wait();
                    let (started, cpu_started) = (Instant::now(), thread_cpu_time());
                    for _ in 0..iters {
                        let at = position & (TRACE_LEN - 1);
                        serve(contender, trace[at], is_set(at), stored);
                        position += 1;
                    }
                    let elapsed = (started.elapsed(), thread_cpu_time().saturating_sub(cpu_started));
                    cursor.store(position, Ordering::Relaxed);
                    elapsed
                })
            })
            .collect();
        workers
            .into_iter()
            .filter_map(|worker| worker.join().ok())
            .fold((Duration::ZERO, Duration::ZERO), |(wall, cpu), (thread_wall, thread_cpu)| {
                (wall.max(thread_wall), cpu.max(thread_cpu))
            })
    })
}

/// Warms `contender` to its steady state, full of the hot keys, as measured.
fn warm(contender: &dyn Contender, traces: &[Vec<&str>]) {
    let stored = value();
    for trace in traces {
        for (position, key) in trace.iter().enumerate() {
            serve(contender, key, is_set(position), &stored);
        }
    }
}

fn zipf(c: &mut Criterion) {
    let keys = keys(KEYSPACE);
    let traces: Vec<Vec<&str>> = (0..2).map(|thread| thread_trace(&keys, 0xc0ffee + thread)).collect();
    paired_zipf(&traces);
    let mut group = c.benchmark_group("memory/zipf");
    for contender in zipf_contenders(CAPACITY) {
        warm(&*contender, &traces);
        for threads in [1usize, 2] {
            group.throughput(Throughput::Elements(threads as u64));
            let cursors: Vec<AtomicUsize> = (0..threads).map(|_| AtomicUsize::new(0)).collect();
            group.bench_function(BenchmarkId::new(contender.name(), format!("{threads} threads")), |b| {
                b.iter_custom(|iters| run_zipf(&*contender, &traces, &cursors, iters))
            });
        }
    }
    group.finish();
}

/// MemoryCache's Zipf throughput over quick_cache's as a median of paired ratios: rounds
/// of the same number of requests on each, back to back and alternating which goes
/// first, so a load that comes and goes (other builds on the two cores) hits both sides
/// of a pair alike. Printed before criterion's rows, which run one contender after
/// another and drift with the load.
fn paired_zipf(traces: &[Vec<&str>]) {
    const ROUNDS: usize = 31;
    const REQUESTS: u64 = 200_000;
    let peer = QuickCache::new(CAPACITY);
    let shards = peer.0.num_shards();
    let ours = [
        ("default shards", memory(CAPACITY, EvictionPolicy::default())),
        (
            "quick_cache's shard count",
            cache_memory::MemoryCache::builder()
                .max_capacity(CAPACITY)
                .shards(shards)
                .build()
                .expect("a positive capacity always builds"),
        ),
    ];
    warm(&peer, traces);
    for (label, cache) in ours {
        let direct = Direct(cache);
        warm(&direct, traces);
        for threads in [1usize, 2] {
            let cursors = |_| (0..threads).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>();
            let (ours_at, peer_at) = (cursors(0), cursors(1));
            // Throughput ratios = the peer's time over ours, alternating who goes first;
            // by wall time, and by the busiest thread's CPU time, which leaves out the
            // time a thread waited for a core while other builds ran.
            let (mut wall, mut cpu): (Vec<f64>, Vec<f64>) = (0..ROUNDS)
                .map(|round| {
                    let (mine, theirs) = if round % 2 == 0 {
                        let mine = run_zipf_timed(&direct, traces, &ours_at, REQUESTS);
                        (mine, run_zipf_timed(&peer, traces, &peer_at, REQUESTS))
                    } else {
                        let theirs = run_zipf_timed(&peer, traces, &peer_at, REQUESTS);
                        (run_zipf_timed(&direct, traces, &ours_at, REQUESTS), theirs)
                    };
                    (theirs.0.as_secs_f64() / mine.0.as_secs_f64(), theirs.1.as_secs_f64() / mine.1.as_secs_f64())
                })
                .unzip();
            for (clock, ratios) in [("wall", &mut wall), ("cpu", &mut cpu)] {
                ratios.sort_by(f64::total_cmp);
                println!(
                    "memory/zipf/paired: MemoryCache ({label}, {} shards) / quick_cache ({shards} shards), {threads} threads, {clock} time = {:.3} (median of {ROUNDS} rounds of {REQUESTS} requests per thread; quartiles {:.3}..{:.3})",
                    direct.0.shard_count(),
                    ratios[ROUNDS / 2],
                    ratios[ROUNDS / 4],
                    ratios[3 * ROUNDS / 4]
                );
            }
        }
    }
}

/// A store behind `Arc<dyn Cache>` under a name of its own.
struct Named(&'static str, Arc<dyn Cache>);

impl Contender for Named {
    fn name(&self) -> String {
        self.0.to_owned()
    }
    fn get(&self, key: &str) -> bool {
        matches!(ready(self.1.get(key)), Ok(Some(_)))
    }
    fn insert(&self, key: &str, value: Bytes) {
        let _ = ready(self.1.set(key, value, Ttl::Never));
    }
}

fn wrapped(capacity: u64) -> Vec<Named> {
    let store = || memory(capacity, EvictionPolicy::default());
    vec![
        Named("bare", Arc::new(store())),
        Named("instrumented", Arc::new(cache::Instrumented::new(store()))),
        Named("instrumented, every call timed", Arc::new(cache::Instrumented::new(store()).sample_every(1))),
        Named("tiered memory/memory", Arc::new(cache::Tiered::new(store(), store()))),
    ]
}

/// The wrapper's cost as a median of paired ratios: rounds of `gets` hits on the bare store
/// and on each wrapper, back to back, so a load that comes and goes (other builds on the
/// two cores) hits both sides of a pair alike. Printed beside criterion's rows, which run
/// one contender after another and drift with the load.
fn paired_overhead(contenders: &[Named], keys: &[String]) {
    const ROUNDS: usize = 101;
    const GETS: usize = 20_000;
    let time = |contender: &Named| {
        let started = Instant::now();
        for key in keys.iter().cycle().take(GETS) {
            black_box(contender.get(black_box(key)));
        }
        started.elapsed().as_secs_f64()
    };
    let (bare, wrappers) = contenders.split_first().expect("the bare store comes first");
    for wrapper in wrappers {
        let mut ratios: Vec<f64> = (0..ROUNDS)
            .map(|round| {
                // Alternate which side goes first, so neither always gets the warmer cache.
                if round % 2 == 0 {
                    let base = time(bare);
                    time(wrapper) / base
                } else {
                    let wrapped = time(wrapper);
                    wrapped / time(bare)
                }
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "memory/wrappers/paired get_hit: {} / bare = {:.3} (median of {ROUNDS} rounds of {GETS}; quartiles {:.3}..{:.3})",
            wrapper.0,
            ratios[ROUNDS / 2],
            ratios[ROUNDS / 4],
            ratios[3 * ROUNDS / 4]
        );
    }
}

/// The umbrella's wrappers on the memory store, each beside the bare store in one run.
fn wrappers(c: &mut Criterion) {
    let keys = keys(RESIDENT);
    let paired = wrapped(CAPACITY);
    for contender in &paired {
        for key in &keys {
            contender.insert(key, value());
        }
    }
    paired_overhead(&paired, &keys);

    let mut group = c.benchmark_group("memory/wrappers/get_hit");
    group.throughput(Throughput::Elements(1));
    for contender in wrapped(CAPACITY) {
        bench_get_hit(&mut group, &contender, &keys);
    }
    group.finish();

    let all_keys = benches::memory::keys(KEYSPACE);
    // One thread: the wrappers' own cost, not contention, which the 2-thread rows show.
    let trace = thread_trace(&all_keys, 0xc0ffee);
    let stored = value();
    let mut group = c.benchmark_group("memory/wrappers/zipf");
    group.throughput(Throughput::Elements(1));
    for contender in wrapped(CAPACITY) {
        for (position, key) in trace.iter().enumerate() {
            serve(&contender, key, is_set(position), &stored);
        }
        let mut position = 0;
        group.bench_function(contender.name(), |b| {
            b.iter(|| {
                let at = position & (TRACE_LEN - 1);
                serve(&contender, trace[at], is_set(at), &stored);
                position += 1;
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default().sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = single_thread, zipf, wrappers
}
criterion_main!(benches);
