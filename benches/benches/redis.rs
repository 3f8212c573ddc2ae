//! `RedisCache` beside the raw `redis` client on the same kind of connection (one
//! multiplexed `ConnectionManager`), against the same server, in the same run:
//!
//! - `redis_cache`: `RedisCache` called directly;
//! - `dyn_cache`: the same cache behind `Arc<dyn Cache>`;
//! - `raw`: `redis::aio::ConnectionManager` with hand-written commands (`GET`, `SET`,
//!   `MGET`): the floor, everything the network costs and nothing we add.
//!
//! Groups (1 KiB values, 1 000 keys preloaded):
//! - `redis/get_1KiB`, `redis/set_1KiB`: one call at a time;
//! - `redis/get_many_100`: one `get_many` of 100 keys, beside 100 sequential `get`s
//!   (`sequential_get_x100`), the cost `get_many` saves;
//! - `redis/concurrent_get_64_tasks`: 64 tasks on one cache (or one connection) at once,
//!   16 gets each; the multiplexed connection pipelines what they send together.
//!
//! The server is the xtask's: `eval "$(cargo xtask servers up redis)"`, then
//! `cargo bench -p benches --bench redis`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_core::{Cache, Ttl};
use cache_redis::RedisCache;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use redis::aio::ConnectionManager;
use tokio::runtime::Runtime;

const KEYS: usize = 1000;
const VALUE_LEN: usize = 1024;
const TASKS: usize = 64;
const PER_TASK: usize = 16;

fn url() -> String {
    std::env::var("CACHE_TEST_REDIS_URL")
        .expect("CACHE_TEST_REDIS_URL is not set: eval \"$(cargo xtask servers up redis)\" first")
}

/// Two workers, like the machine: the connection's driver task and the callers share them.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

fn key(index: usize) -> String {
    format!("bench:{index}")
}

struct Contenders {
    cache: RedisCache,
    dynamic: Arc<dyn Cache>,
    raw: ConnectionManager,
}

/// The three contenders on one server; the cache's prefix is empty so that every
/// contender reads and writes the very same keys.
async fn contenders() -> Contenders {
    let url = url();
    let cache = RedisCache::builder().url(url.clone()).build().await.expect("connecting RedisCache");
    let dynamic: Arc<dyn Cache> = Arc::new(RedisCache::builder().url(url.clone()).build().await.expect("connecting"));
    let client = redis::Client::open(url).expect("the URL parses");
    let raw = ConnectionManager::new(client).await.expect("connecting the raw client");
    let value = Bytes::from(vec![0x5a; VALUE_LEN]);
    let names: Vec<String> = (0..KEYS).map(key).collect();
    let entries: Vec<(&str, Bytes)> = names.iter().map(|name| (name.as_str(), value.clone())).collect();
    cache.set_many(&entries, Ttl::Never).await.expect("preloading");
    Contenders { cache, dynamic, raw }
}

async fn raw_get(raw: &ConnectionManager, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET").arg(key).query_async(&mut raw.clone()).await.expect("raw GET")
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let Contenders { cache, dynamic, raw } = rt.block_on(contenders());
    let value = Bytes::from(vec![0xa5; VALUE_LEN]);
    let names: Vec<String> = (0..KEYS).map(key).collect();
    let hundred: Vec<&str> = names[..100].iter().map(String::as_str).collect();

    let mut group = c.benchmark_group("redis/get_1KiB");
    group.throughput(Throughput::Elements(1));
    let mut next = 0;
    let mut pick = move || {
        next = (next + 1) % KEYS;
        key(next)
    };
    group.bench_function("redis_cache", |b| {
        b.to_async(&rt).iter(|| {
            let name = pick();
            let cache = &cache;
            async move { black_box(cache.get(&name).await.expect("get")) }
        });
    });
    group.bench_function("dyn_cache", |b| {
        b.to_async(&rt).iter(|| {
            let name = pick();
            let cache = &dynamic;
            async move { black_box(cache.get(&name).await.expect("get")) }
        });
    });
    group.bench_function("raw", |b| {
        b.to_async(&rt).iter(|| {
            let name = pick();
            let raw = &raw;
            async move { black_box(raw_get(raw, &name).await) }
        });
    });
    group.finish();

    let mut group = c.benchmark_group("redis/set_1KiB");
    group.throughput(Throughput::Elements(1));
    group.bench_function("redis_cache", |b| {
        b.to_async(&rt).iter(|| {
            let (name, value, cache) = (pick(), value.clone(), &cache);
            async move { cache.set(&name, value, Ttl::Never).await.expect("set") }
        });
    });
    group.bench_function("dyn_cache", |b| {
        b.to_async(&rt).iter(|| {
            let (name, value, cache) = (pick(), value.clone(), &dynamic);
            async move { cache.set(&name, value, Ttl::Never).await.expect("set") }
        });
    });
    group.bench_function("raw", |b| {
        b.to_async(&rt).iter(|| {
            let (name, value, raw) = (pick(), value.clone(), &raw);
            async move {
                let () = redis::cmd("SET")
                    .arg(&name)
                    .arg(value.as_ref())
                    .query_async(&mut raw.clone())
                    .await
                    .expect("raw SET");
            }
        });
    });
    group.finish();

    let mut group = c.benchmark_group("redis/get_many_100");
    group.throughput(Throughput::Elements(100));
    group.bench_function("redis_cache", |b| {
        b.to_async(&rt).iter(|| async { black_box(cache.get_many(&hundred).await.expect("get_many")) });
    });
    group.bench_function("dyn_cache", |b| {
        b.to_async(&rt).iter(|| async { black_box(dynamic.get_many(&hundred).await.expect("get_many")) });
    });
    group.bench_function("raw", |b| {
        b.to_async(&rt).iter(|| async {
            let values: Vec<Option<Vec<u8>>> =
                redis::cmd("MGET").arg(&hundred).query_async(&mut raw.clone()).await.expect("raw MGET");
            black_box(values)
        });
    });
    group.bench_function("sequential_get_x100", |b| {
        b.to_async(&rt).iter(|| async {
            for name in &hundred {
                black_box(cache.get(name).await.expect("get"));
            }
        });
    });
    group.finish();

    let mut group = c.benchmark_group("redis/concurrent_get_64_tasks");
    group.throughput(Throughput::Elements((TASKS * PER_TASK) as u64));
    group.sample_size(30);
    group.bench_function("redis_cache", |b| {
        b.to_async(&rt).iter_custom(|iterations| {
            let cache = cache.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let started = Instant::now();
                    let mut tasks = tokio::task::JoinSet::new();
                    for task in 0..TASKS {
                        let cache = cache.clone();
                        tasks.spawn(async move {
                            for step in 0..PER_TASK {
                                black_box(cache.get(&key((task * PER_TASK + step) % KEYS)).await.expect("get"));
                            }
                        });
                    }
                    tasks.join_all().await;
                    total += started.elapsed();
                }
                total
            }
        });
    });
    group.bench_function("raw", |b| {
        b.to_async(&rt).iter_custom(|iterations| {
            let raw = raw.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let started = Instant::now();
                    let mut tasks = tokio::task::JoinSet::new();
                    for task in 0..TASKS {
                        let raw = raw.clone();
                        tasks.spawn(async move {
                            for step in 0..PER_TASK {
                                black_box(raw_get(&raw, &key((task * PER_TASK + step) % KEYS)).await);
                            }
                        });
                    }
                    tasks.join_all().await;
                    total += started.elapsed();
                }
                total
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
