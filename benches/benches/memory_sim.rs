//! The `cache-memory` simulator: hit ratios and memory per entry, beside moka,
//! quick_cache and (for hit ratios) Bélády's optimal policy, in one deterministic run.
//!
//! - Hit ratio: Zipf 0.8, 1.0 and 1.2 traces, and Zipf 1.0 with a sequential scan of
//!   50 000 keys every 200 000 requests, over a 1M keyspace, replayed as read-through
//!   requests against caches holding 0.1%, 1% and 10% of the keys.
//! - Memory: heap bytes per entry after inserting 1M entries (an 11-byte key and a
//!   32-byte value each, counted in), measured with a counting allocator.
//!
//! `cargo bench -p benches --bench memory_sim` (set `MEMORY_SIM_REQUESTS` to change
//! the trace length from 2 000 000, and `MEMORY_SIM_ONLY=S3Fifo,quick_cache` to run only
//! the hit-ratio columns whose names contain one of those words, while trying a policy).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use benches::memory::{
    Contender, Moka, QuickCache, all_contenders, belady_hits, keys, memory, scan_trace, value, zipf_trace,
};
use cache_memory::EvictionPolicy;

/// Counts live heap bytes so the memory table can read them.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees are ours; the counter is a side effect that allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as is; `ptr` came from `alloc` with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as is; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const KEYSPACE: usize = 1_000_000;
const SEED: u64 = 20_231_123;

fn hit_ratios(requests: usize) {
    let keys = keys(KEYSPACE);
    let traces = [
        ("Zipf 0.8", zipf_trace(KEYSPACE, 0.8, requests, SEED)),
        ("Zipf 1.0", zipf_trace(KEYSPACE, 1.0, requests, SEED)),
        ("Zipf 1.2", zipf_trace(KEYSPACE, 1.2, requests, SEED)),
        ("Zipf 1.0 + scans", scan_trace(KEYSPACE, 1.0, requests, 200_000, 50_000, SEED)),
    ];
    let only: Option<Vec<String>> =
        std::env::var("MEMORY_SIM_ONLY").ok().map(|only| only.split(',').map(str::to_owned).collect());
    let chosen = |name: &str| only.as_ref().is_none_or(|only| only.iter().any(|word| name.contains(word.as_str())));
    let contenders = |capacity| all_contenders(capacity).into_iter().filter(|contender| chosen(&contender.name()));
    let names: Vec<String> = contenders(1).map(|contender| contender.name()).collect();
    println!("\n## Hit ratio (%), {requests} requests over {KEYSPACE} keys\n");
    println!("| trace | cache size | {} | Bélády (optimal) |", names.join(" | "));
    println!("|---|---|{}---|", "---|".repeat(names.len()));
    for (name, trace) in &traces {
        for (label, capacity) in [("0.1%", KEYSPACE / 1000), ("1%", KEYSPACE / 100), ("10%", KEYSPACE / 10)] {
            let mut cells = Vec::new();
            for contender in contenders(capacity as u64) {
                let started = Instant::now();
                let hits = trace.iter().filter(|&&id| contender.request(&keys[id as usize])).count();
                let ratio = 100.0 * hits as f64 / trace.len() as f64;
                eprintln!("{name} {label} {}: {ratio:.2}% in {:?}", contender.name(), started.elapsed());
                cells.push(format!("{ratio:.2}"));
            }
            let optimal = 100.0 * belady_hits(trace, capacity) as f64 / trace.len() as f64;
            println!("| {name} | {label} ({capacity}) | {} | {optimal:.2} |", cells.join(" | "));
        }
    }
}

fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Heap bytes per entry of `contender` after inserting `entries` keys; `len` reports
/// how many it holds at the end.
fn bytes_per_entry(contender: &dyn Contender, keys: &[String], len: impl Fn() -> usize) -> (f64, usize) {
    let before = live_bytes();
    for key in keys {
        contender.insert(key, value());
    }
    let held = len();
    ((live_bytes() - before) as f64 / held.max(1) as f64, held)
}

fn memory_table() {
    const ENTRIES: usize = 1_000_000;
    let keys = keys(ENTRIES);
    let payload = keys.iter().map(String::len).sum::<usize>() as f64 / ENTRIES as f64 + value().len() as f64;
    println!("\n## Memory at {ENTRIES} entries (heap bytes per entry, key and value included)\n");
    println!("Each entry's own key and value take {payload:.1} bytes of that.\n");
    println!("| cache | entries held | bytes per entry | overhead per entry |");
    println!("|---|---|---|---|");
    {
        let cache = memory(ENTRIES as u64, EvictionPolicy::default());
        let contender = benches::memory::Direct(cache.clone());
        let (bytes, held) = bytes_per_entry(&contender, &keys, || cache.len());
        println!("| {} | {held} | {bytes:.1} | {:.1} |", contender.name(), bytes - payload);
    }
    {
        let contender = Moka(moka::sync::Cache::new(ENTRIES as u64));
        let (bytes, held) = bytes_per_entry(&contender, &keys, || {
            contender.0.run_pending_tasks();
            contender.0.entry_count() as usize
        });
        println!("| moka | {held} | {bytes:.1} | {:.1} |", bytes - payload);
    }
    {
        let contender = QuickCache::new(ENTRIES as u64);
        let (bytes, held) = bytes_per_entry(&contender, &keys, || contender.0.len());
        println!("| quick_cache | {held} | {bytes:.1} | {:.1} |", bytes - payload);
    }
}

fn main() {
    let requests = std::env::var("MEMORY_SIM_REQUESTS").ok().and_then(|n| n.parse().ok()).unwrap_or(2_000_000);
    if std::env::var_os("MEMORY_SIM_ONLY").is_none() {
        memory_table();
    }
    hit_ratios(requests);
}
