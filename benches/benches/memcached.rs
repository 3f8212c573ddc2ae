//! `MemcachedCache` beside the raw `memcache` client, in the same run, on the same server,
//! 1 KiB values over 1 000 prefilled keys:
//!
//! - `floor`: `memcache::exp::MetaClient` (the client `MemcachedCache` wraps) called
//!   straight from the bench thread: the bare round trip, nothing added;
//! - `raw_blocking_pool`: the same call as one `spawn_blocking` task, which is what an async
//!   program must do with a blocking client;
//! - `classic`: `memcache::Client`, the crate's classic (binary protocol) client, from the
//!   bench thread: what a user would otherwise pick;
//! - `memcached_cache` / `dyn_cache`: `MemcachedCache` on a tokio runtime, concrete and
//!   through `Arc<dyn Cache>`.
//!
//! Groups `memcached/get_1KiB`, `memcached/set_1KiB`, and `memcached/get_many_100` (one
//! call for 100 keys, beside `sequential_100_gets`: 100 `get` calls one after the other).
//! Then an interleaved run (one call of each contender per round, medians printed as
//! `interleaved ...` lines), whose ratios hold up on a loaded machine where criterion's
//! one-after-the-other groups do not.
//!
//! The server is `CACHE_TEST_MEMCACHED_ADDR` (`eval "$(cargo xtask servers up memcached)"`);
//! without it the bench starts a memcached of its own on a free loopback port.
//!
//! `cargo bench -p benches --bench memcached`

use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cache_core::{Cache, Ttl};
use cache_memcached::MemcachedCache;
use criterion::{Criterion, criterion_group, criterion_main};
use memcache::exp::{Get, MetaClient, Set};
use tokio::runtime::Runtime;

const KEYS: usize = 1000;
const VALUE: usize = 1024;
const MANY: usize = 100;

/// A memcached this bench started, stopped when dropped.
struct OwnServer(Child);

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server's address, and the server itself when the bench had to start one.
fn server() -> (String, Option<OwnServer>) {
    if let Ok(address) = std::env::var("CACHE_TEST_MEMCACHED_ADDR") {
        return (address, None);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    // The flags of the xtask's `memcached` row.
    let child = Command::new("memcached")
        .args(["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0", "-m", "64", "-u", "root"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting memcached: set CACHE_TEST_MEMCACHED_ADDR or install memcached");
    let server = OwnServer(child);
    for _ in 0..500 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (format!("127.0.0.1:{port}"), Some(server));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("memcached did not open port {port}");
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

/// The next key index, round robin.
fn picker() -> impl Fn() -> usize {
    let next = AtomicUsize::new(0);
    move || next.fetch_add(1, Ordering::Relaxed) % KEYS
}

fn bench(c: &mut Criterion) {
    let (address, _own) = server();
    let rt = runtime();
    let value = Bytes::from(vec![0x5a; VALUE]);

    let cache = rt
        .block_on(MemcachedCache::builder().server(&address).prefix("bench:cache:").build())
        .expect("building MemcachedCache");
    let dyn_cache: Arc<dyn Cache> = Arc::new(cache.clone());
    let meta = MetaClient::builder().connect(address.as_str()).expect("MetaClient");
    let classic = memcache::Client::connect(format!("memcache://{address}")).expect("memcache::Client");

    let cache_keys: Vec<String> = (0..KEYS).map(|index| format!("k{index}")).collect();
    let raw_keys: Vec<String> = (0..KEYS).map(|index| format!("bench:raw:k{index}")).collect();
    let entries: Vec<(&str, Bytes)> = cache_keys.iter().map(|key| (key.as_str(), value.clone())).collect();
    rt.block_on(cache.set_many(&entries, Ttl::Never)).expect("prefill");
    for key in &raw_keys {
        meta.run(Set::new(key, &value)).expect("prefill raw");
    }

    let mut group = c.benchmark_group("memcached/get_1KiB");
    let pick = picker();
    group.bench_function("floor", |b| b.iter(|| black_box(meta.run(Get::new(&raw_keys[pick()])).expect("get").value)));
    group.bench_function("raw_blocking_pool", |b| {
        b.to_async(&rt).iter(|| {
            let (meta, key) = (meta.clone(), raw_keys[pick()].clone());
            async move {
                let read = tokio::task::spawn_blocking(move || meta.run(Get::new(&key)).expect("get").value);
                black_box(read.await.expect("task"))
            }
        })
    });
    group.bench_function("classic", |b| b.iter(|| black_box(classic.get::<Vec<u8>>(&raw_keys[pick()]).expect("get"))));
    group.bench_function("memcached_cache", |b| {
        b.to_async(&rt).iter(|| async { black_box(cache.get(&cache_keys[pick()]).await.expect("get")) })
    });
    group.bench_function("dyn_cache", |b| {
        b.to_async(&rt).iter(|| async { black_box(dyn_cache.get(&cache_keys[pick()]).await.expect("get")) })
    });
    group.finish();

    let mut group = c.benchmark_group("memcached/set_1KiB");
    group.bench_function("floor", |b| b.iter(|| meta.run(Set::new(&raw_keys[pick()], &value)).expect("set")));
    group.bench_function("raw_blocking_pool", |b| {
        b.to_async(&rt).iter(|| {
            let (meta, key, value) = (meta.clone(), raw_keys[pick()].clone(), value.clone());
            async move {
                tokio::task::spawn_blocking(move || meta.run(Set::new(&key, &value)).expect("set")).await.expect("task")
            }
        })
    });
    group.bench_function("classic", |b| b.iter(|| classic.set(&raw_keys[pick()], &value[..], 0).expect("set")));
    group.bench_function("memcached_cache", |b| {
        b.to_async(&rt).iter(|| async { cache.set(&cache_keys[pick()], value.clone(), Ttl::Never).await.expect("set") })
    });
    group.bench_function("dyn_cache", |b| {
        b.to_async(&rt)
            .iter(|| async { dyn_cache.set(&cache_keys[pick()], value.clone(), Ttl::Never).await.expect("set") })
    });
    group.finish();

    let mut group = c.benchmark_group("memcached/get_many_100");
    let start = AtomicUsize::new(0);
    // 100 consecutive keys, a different window each time.
    let window = |keys: &[String]| -> Vec<String> {
        let first = start.fetch_add(MANY, Ordering::Relaxed) % (KEYS - MANY);
        keys[first..first + MANY].to_vec()
    };
    group.bench_function("floor", |b| {
        b.iter(|| {
            let keys = window(&raw_keys);
            black_box(meta.run_many(keys.iter().map(Get::new)).expect("run_many"))
        })
    });
    group.bench_function("classic", |b| {
        b.iter(|| {
            let keys = window(&raw_keys);
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            black_box(classic.gets::<Vec<u8>>(&keys).expect("gets"))
        })
    });
    group.bench_function("memcached_cache", |b| {
        b.to_async(&rt).iter(|| {
            let keys = window(&cache_keys);
            let cache = &cache;
            async move {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                black_box(cache.get_many(&keys).await.expect("get_many"))
            }
        })
    });
    group.bench_function("dyn_cache", |b| {
        b.to_async(&rt).iter(|| {
            let keys = window(&cache_keys);
            let dyn_cache = &dyn_cache;
            async move {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                black_box(dyn_cache.get_many(&keys).await.expect("get_many"))
            }
        })
    });
    group.bench_function("sequential_100_gets", |b| {
        b.to_async(&rt).iter(|| {
            let keys = window(&cache_keys);
            let cache = &cache;
            async move {
                for key in &keys {
                    black_box(cache.get(key).await.expect("get"));
                }
            }
        })
    });
    group.finish();

    interleaved(&rt, &meta, &classic, &cache, &dyn_cache, &raw_keys, &cache_keys, &value);
}

/// Criterion runs contenders one after another, and on a shared machine the load moves
/// between them (runs of this bench on a busy VM put the same contender anywhere within 4×).
/// This runs one call of every contender per round, so all see the same load, and prints
/// each one's median over the rounds with the ratios the targets are stated in.
#[allow(clippy::too_many_arguments)]
fn interleaved(
    rt: &Runtime,
    meta: &MetaClient,
    classic: &memcache::Client,
    cache: &MemcachedCache,
    dyn_cache: &Arc<dyn Cache>,
    raw_keys: &[String],
    cache_keys: &[String],
    value: &Bytes,
) {
    fn median(samples: &mut [Duration]) -> Duration {
        samples.sort_unstable();
        samples[samples.len() / 2]
    }
    fn time(samples: &mut Vec<Duration>, call: &dyn Fn()) {
        let started = std::time::Instant::now();
        call();
        samples.push(started.elapsed());
    }
    fn report(group: &str, names: &[&str], samples: &mut [Vec<Duration>]) -> Vec<Duration> {
        let medians: Vec<Duration> = samples.iter_mut().map(|samples| median(samples)).collect();
        let row: Vec<String> =
            names.iter().zip(&medians).map(|(name, median)| format!("{name} {median:.1?}")).collect();
        println!("interleaved {group} (median of {} rounds): {}", samples[0].len(), row.join(", "));
        medians
    }
    const ROUNDS: usize = 3000;
    let names = ["floor", "raw_blocking_pool", "classic", "memcached_cache", "dyn_cache"];
    for operation in ["get_1KiB", "set_1KiB"] {
        let get = operation == "get_1KiB";
        let mut samples = vec![Vec::with_capacity(ROUNDS); names.len()];
        for round in 0..ROUNDS {
            let (raw, key) = (&raw_keys[round % KEYS], &cache_keys[round % KEYS]);
            let floor = || {
                if get {
                    black_box(meta.run(Get::new(raw)).expect("get"));
                } else {
                    meta.run(Set::new(raw, value)).expect("set");
                }
            };
            let raw_blocking_pool = || {
                let (meta, raw, value) = (meta.clone(), raw.clone(), value.clone());
                rt.block_on(rt.spawn_blocking(move || {
                    if get {
                        black_box(meta.run(Get::new(&raw)).expect("get"));
                    } else {
                        meta.run(Set::new(&raw, &value)).expect("set");
                    }
                }))
                .expect("task");
            };
            let classic_call = || {
                if get {
                    black_box(classic.get::<Vec<u8>>(raw).expect("get"));
                } else {
                    classic.set(raw, &value[..], 0).expect("set");
                }
            };
            let concrete = || {
                if get {
                    black_box(rt.block_on(cache.get(key)).expect("get"));
                } else {
                    rt.block_on(cache.set(key, value.clone(), Ttl::Never)).expect("set");
                }
            };
            let behind_dyn = || {
                if get {
                    black_box(rt.block_on(dyn_cache.get(key)).expect("get"));
                } else {
                    rt.block_on(dyn_cache.set(key, value.clone(), Ttl::Never)).expect("set");
                }
            };
            let contenders: [&dyn Fn(); 5] = [&floor, &raw_blocking_pool, &classic_call, &concrete, &behind_dyn];
            // A different one goes first each round: a blocking-pool thread left idle longer
            // (after the slow classic client, say) wakes more slowly, and no contender should
            // always pay that.
            for offset in 0..contenders.len() {
                let index = (round + offset) % contenders.len();
                time(&mut samples[index], contenders[index]);
            }
        }
        let medians = report(operation, &names, &mut samples);
        let ratio = |ours: Duration, theirs: Duration| theirs.as_secs_f64() / ours.as_secs_f64();
        println!(
            "interleaved {operation}: memcached_cache is {:.2}× the floor, {:.2}× raw_blocking_pool, {:.2}× classic; dyn_cache {:.2}× the floor",
            ratio(medians[3], medians[0]),
            ratio(medians[3], medians[1]),
            ratio(medians[3], medians[2]),
            ratio(medians[4], medians[0]),
        );
    }

    const MANY_ROUNDS: usize = 200;
    let names = ["floor", "memcached_cache", "sequential_100_gets"];
    let mut samples = vec![Vec::with_capacity(MANY_ROUNDS); names.len()];
    for round in 0..MANY_ROUNDS {
        let first = (round * MANY) % (KEYS - MANY);
        let raw: Vec<&String> = raw_keys[first..first + MANY].iter().collect();
        let keys: Vec<&str> = cache_keys[first..first + MANY].iter().map(String::as_str).collect();
        let floor = || {
            black_box(meta.run_many(raw.iter().map(Get::new)).expect("run_many"));
        };
        let concrete = || {
            black_box(rt.block_on(cache.get_many(&keys)).expect("get_many"));
        };
        let sequential = || {
            rt.block_on(async {
                for key in &keys {
                    black_box(cache.get(key).await.expect("get"));
                }
            });
        };
        let contenders: [&dyn Fn(); 3] = [&floor, &concrete, &sequential];
        for offset in 0..contenders.len() {
            let index = (round + offset) % contenders.len();
            time(&mut samples[index], contenders[index]);
        }
    }
    let medians = report("get_many_100", &names, &mut samples);
    println!(
        "interleaved get_many_100: memcached_cache is {:.1}× faster than 100 sequential gets, {:.2}× the floor",
        medians[2].as_secs_f64() / medians[1].as_secs_f64(),
        medians[0].as_secs_f64() / medians[1].as_secs_f64(),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
