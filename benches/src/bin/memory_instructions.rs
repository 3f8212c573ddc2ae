//! One contender on one single-threaded workload of the `memory` bench, for counting
//! instructions under callgrind: counts repeat exactly from run to run, so they compare
//! code on a machine whose wall-clock figures move with the load. Only the requests
//! inside `measured` are counted when run as
//!
//! ```sh
//! cargo build --profile bench -p benches --bin memory_instructions
//! valgrind --tool=callgrind --toggle-collect='*measured*' --callgrind-out-file=/dev/null \
//!     target/release/memory_instructions CONTENDER WORKLOAD
//! ```
//!
//! and the `Collected` total, divided by the requests this prints, is instructions per
//! request. CONTENDER: `memory`, `memory-8` (any shard count after the dash),
//! `memory-get-or-insert` (read-through as one `get_or_insert_with`, which returns the
//! value, rather than a `get` and a `set`), `dyn`, `quick_cache`, `quick_cache-get-or-insert` (its own
//! `get_or_insert_with`, which returns the value as ours does), `moka`. WORKLOAD: `zipf` (the bench's Zipf 1.0 mix, after one pass
//! to warm the cache), `hit` (gets of 10 000 resident keys), `set`.

use std::hint::black_box;
use std::sync::Arc;

use benches::memory::{Contender, Direct, Dyn, InlineKey, Moka, QuickCache, keys, memory, value, zipf_trace};
use cache_core::Cache;
use cache_memory::{EvictionPolicy, MemoryCache};

const KEYSPACE: usize = 1_000_000;
const CAPACITY: u64 = 100_000;
const REQUESTS: usize = 1 << 20;

/// Whether request number `position` is a plain set, as in the `memory` bench.
fn is_set(position: usize) -> bool {
    ((position as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % 10 == 0
}

fn contender(name: &str) -> Option<Box<dyn Contender>> {
    Some(match name {
        "memory" => Box::new(Direct(memory(CAPACITY, EvictionPolicy::default()))),
        "memory-get-or-insert" => Box::new(GetOrInsert(memory(CAPACITY, EvictionPolicy::default()))),
        "dyn" => Box::new(Dyn(Arc::new(memory(CAPACITY, EvictionPolicy::default())) as Arc<dyn Cache>)),
        "quick_cache" => Box::new(QuickCache::new(CAPACITY)),
        "quick_cache-get-or-insert" => Box::new(QuickCacheGetOrInsert(QuickCache::new(CAPACITY))),
        "moka" => Box::new(Moka(moka::sync::Cache::new(CAPACITY))),
        other => {
            let shards = other.strip_prefix("memory-")?.parse().ok()?;
            Box::new(Direct(MemoryCache::builder().max_capacity(CAPACITY).shards(shards).build().ok()?))
        }
    })
}

/// `MemoryCache` serving a read-through request with `get_or_insert_with`.
struct GetOrInsert(MemoryCache);

impl Contender for GetOrInsert {
    fn name(&self) -> String {
        "memory (get_or_insert_with)".to_owned()
    }
    fn get(&self, key: &str) -> bool {
        self.0.sync().get(key).is_some()
    }
    fn insert(&self, key: &str, value: bytes::Bytes) {
        let _ = self.0.sync().set(key, value, cache_core::Ttl::Never);
    }
    fn request(&self, key: &str) -> bool {
        let mut hit = true;
        let loaded = self.0.sync().get_or_insert_with(key, cache_core::Ttl::Never, || {
            hit = false;
            value()
        });
        black_box(loaded.is_ok()) && hit
    }
}

/// quick_cache serving a read-through request with its own `get_or_insert_with`.
struct QuickCacheGetOrInsert(QuickCache);

impl Contender for QuickCacheGetOrInsert {
    fn name(&self) -> String {
        "quick_cache (get_or_insert_with)".to_owned()
    }
    fn get(&self, key: &str) -> bool {
        self.0.get(key)
    }
    fn insert(&self, key: &str, value: bytes::Bytes) {
        self.0.insert(key, value);
    }
    fn request(&self, key: &str) -> bool {
        let mut hit = true;
        let loaded = self.0.0.get_or_insert_with(&InlineKey::new(key), || {
            hit = false;
            Ok::<_, std::convert::Infallible>(value())
        });
        black_box(loaded.is_ok()) && hit
    }
}

/// The requests callgrind counts; never inlined, so `--toggle-collect` can find it.
#[inline(never)]
fn measured(cache: &dyn Contender, workload: &str, trace: &[&str]) -> usize {
    let stored = value();
    let mut hits = 0;
    match workload {
        "zipf" => {
            for (position, key) in trace.iter().enumerate() {
                if is_set(position) {
                    cache.insert(key, stored.clone());
                } else {
                    hits += usize::from(cache.request(key));
                }
            }
        }
        "hit" => {
            for key in trace {
                hits += usize::from(cache.get(key));
            }
        }
        _ => {
            for key in trace {
                cache.insert(key, stored.clone());
            }
        }
    }
    hits
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(name), Some(workload)) = (args.first(), args.get(1)) else {
        eprintln!("usage: memory_instructions memory|memory-SHARDS|dyn|quick_cache|moka zipf|hit|set");
        std::process::exit(2);
    };
    let Some(cache) = contender(name) else {
        eprintln!("unknown contender {name:?}");
        std::process::exit(2);
    };
    let (keys, trace): (Vec<String>, Vec<u32>) = match workload.as_str() {
        "zipf" => (keys(KEYSPACE), zipf_trace(KEYSPACE, 1.0, REQUESTS, 0xc0ffee)),
        "hit" | "set" => (keys(10_000), (0..REQUESTS as u32).map(|at| at % 10_000).collect()),
        other => {
            eprintln!("unknown workload {other:?}");
            std::process::exit(2);
        }
    };
    let trace: Vec<&str> = trace.iter().map(|&id| keys[id as usize].as_str()).collect();
    // Warm: measured from the steady state, the cache full of the hot keys.
    match workload.as_str() {
        "zipf" => {
            for (position, key) in trace.iter().enumerate() {
                if is_set(position) {
                    cache.insert(key, value());
                } else {
                    cache.request(key);
                }
            }
        }
        _ => {
            for key in &keys {
                cache.insert(key, value());
            }
        }
    }
    let hits = measured(&*cache, workload, &trace);
    println!("{} {workload}: {} requests, {hits} hits", cache.name(), trace.len());
}
