//! Workloads for the `cache-memory` benches: deterministic Zipf traces (with and
//! without sequential scans), Bélády's optimal hit count as a ceiling, the contenders
//! behind one small trait, and a way to drive futures that are ready at once.

use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use cache_core::{Cache, Ttl};
use cache_memory::{EvictionPolicy, MemoryCache};

/// SplitMix64: a fixed seed gives the same trace on every machine and run.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform integer in `0..bound` (`bound > 0`).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

/// Zipf-distributed ranks in `0..n` with exponent `s`, sampled by inverting the CDF.
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// The distribution over `n` ranks with exponent `s` (rank 0 is the most popular).
    pub fn new(n: usize, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for rank in 1..=n {
            total += 1.0 / (rank as f64).powf(s);
            cdf.push(total);
        }
        for value in &mut cdf {
            *value /= total;
        }
        Zipf { cdf }
    }

    /// One rank.
    pub fn sample(&self, rng: &mut SplitMix64) -> u32 {
        let u = rng.next_f64();
        let rank = self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1);
        rank as u32
    }
}

/// The keys of a keyspace of `n`, so no contender pays for formatting while measured.
pub fn keys(n: usize) -> Vec<String> {
    (0..n).map(|id| format!("key:{id}")).collect()
}

/// `len` requests drawn from Zipf(`s`) over `n` keys. Ranks are scattered over key ids,
/// so popularity has nothing to do with key order (which the scans walk).
pub fn zipf_trace(n: usize, s: f64, len: usize, seed: u64) -> Vec<u32> {
    let zipf = Zipf::new(n, s);
    let mut rng = SplitMix64::new(seed);
    let scatter = permutation(n, seed ^ 0x5ca7);
    (0..len).map(|_| scatter[zipf.sample(&mut rng) as usize]).collect()
}

/// Zipf(`s`) requests interrupted every `period` requests by a sequential scan of
/// `scan_len` consecutive key ids from a random start: the pattern (a batch job, a
/// backup, a crawler) that flushes an LRU cache.
pub fn scan_trace(n: usize, s: f64, len: usize, period: usize, scan_len: usize, seed: u64) -> Vec<u32> {
    let body = zipf_trace(n, s, len, seed);
    let mut rng = SplitMix64::new(seed ^ 0x5ca9);
    let mut trace = Vec::with_capacity(len + len / period * scan_len);
    for (index, &id) in body.iter().enumerate() {
        if index > 0 && index % period == 0 {
            let start = rng.below(n as u64) as usize;
            trace.extend((0..scan_len).map(|offset| ((start + offset) % n) as u32));
        }
        trace.push(id);
    }
    trace
}

fn permutation(n: usize, seed: u64) -> Vec<u32> {
    let mut ids: Vec<u32> = (0..n as u32).collect();
    let mut rng = SplitMix64::new(seed);
    for index in (1..n).rev() {
        let other = rng.below(index as u64 + 1) as usize;
        ids.swap(index, other);
    }
    ids
}

/// How many requests of `trace` Bélády's optimal policy serves from a cache of
/// `capacity` entries: on a miss, evict the entry needed furthest in the future, or
/// do not admit the new one if it is needed later than all of them.
pub fn belady_hits(trace: &[u32], capacity: usize) -> u64 {
    const NEVER: usize = usize::MAX;
    let keyspace = trace.iter().copied().max().map_or(0, |max| max as usize + 1);
    let mut next_use = vec![NEVER; trace.len()];
    let mut seen = vec![NEVER; keyspace];
    for (index, &key) in trace.iter().enumerate().rev() {
        next_use[index] = seen[key as usize];
        seen[key as usize] = index;
    }
    // `cached[key]` is the key's next use while it is cached; the heap holds
    // (next use, key) with stale items skipped when they surface.
    let mut cached = vec![None::<usize>; keyspace];
    let mut heap: BinaryHeap<(usize, u32)> = BinaryHeap::new();
    let (mut hits, mut len) = (0, 0);
    for (index, &key) in trace.iter().enumerate() {
        let next = next_use[index];
        if cached[key as usize].is_some() {
            hits += 1;
            cached[key as usize] = Some(next);
            heap.push((next, key));
            continue;
        }
        if next == NEVER {
            continue;
        }
        if len == capacity {
            // The furthest valid item; stale ones (re-used or evicted keys) are dropped.
            let furthest = loop {
                match heap.peek() {
                    Some(&(when, victim)) if cached[victim as usize] == Some(when) => break Some((when, victim)),
                    Some(_) => {
                        heap.pop();
                    }
                    None => break None,
                }
            };
            match furthest {
                Some((when, victim)) if when > next => {
                    heap.pop();
                    cached[victim as usize] = None;
                    len -= 1;
                }
                _ => continue,
            }
        }
        cached[key as usize] = Some(next);
        heap.push((next, key));
        len += 1;
    }
    hits
}

/// Polls a future that completes without waiting (every `MemoryCache` future does)
/// to its output, without a runtime: measures the `Cache` call, not an executor.
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::yield_now();
    }
}

/// The value every contender stores: 32 bytes in an allocation of their own, as a
/// caller's values would be.
pub fn value() -> Bytes {
    Bytes::copy_from_slice(&[7u8; 32])
}

/// A cache under test, as the benches and the simulator drive it.
pub trait Contender: Send + Sync {
    /// The column name in result tables.
    fn name(&self) -> String;
    /// Whether `key` is cached (a read that counts as a use).
    fn get(&self, key: &str) -> bool;
    /// Stores `key`.
    fn insert(&self, key: &str, value: Bytes);

    /// The read-through request the workloads make: a read, and on a miss an insert.
    /// Returns whether it hit.
    fn request(&self, key: &str) -> bool {
        let hit = self.get(key);
        if !hit {
            self.insert(key, value());
        }
        hit
    }
}

/// `MemoryCache` through its synchronous API.
#[derive(Debug)]
pub struct Direct(pub MemoryCache);

impl Contender for Direct {
    fn name(&self) -> String {
        format!("memory {:?}", self.0.eviction_policy())
    }
    fn get(&self, key: &str) -> bool {
        self.0.sync().get(key).is_some()
    }
    fn insert(&self, key: &str, value: Bytes) {
        // A set only fails for an entry heavier than a shard, which one unit never is.
        let _ = self.0.sync().set(key, value, Ttl::Never);
    }
}

/// Any store through `Arc<dyn Cache>`, one boxed future per call.
#[derive(Debug)]
pub struct Dyn(pub Arc<dyn Cache>);

impl Contender for Dyn {
    fn name(&self) -> String {
        "memory via Arc<dyn Cache>".to_owned()
    }
    fn get(&self, key: &str) -> bool {
        matches!(ready(self.0.get(key)), Ok(Some(_)))
    }
    fn insert(&self, key: &str, value: Bytes) {
        let _ = ready(self.0.set(key, value, Ttl::Never));
    }
}

/// The key type every peer stores, so no contender pays for a key representation the
/// others are spared: `MemoryCache` keeps keys of up to 22 bytes inside the entry, so the
/// peers get the same layout (inline up to 22 bytes, on the heap beyond) instead of a
/// `String` allocated on every insert. Lookups borrow it as `[u8]`, so a read builds no
/// key at all, as a read of `MemoryCache` does not.
#[derive(Debug, Clone)]
pub enum InlineKey {
    /// A key of up to [`InlineKey::INLINE`] bytes.
    Inline {
        /// How many of `bytes` are the key.
        len: u8,
        /// The key, zero-padded.
        bytes: [u8; InlineKey::INLINE],
    },
    /// A longer key.
    Heap(Box<[u8]>),
}

impl InlineKey {
    /// The longest key kept inline, as in `MemoryCache`.
    pub const INLINE: usize = 22;

    /// `key`, inline when it fits.
    #[inline]
    pub fn new(key: &str) -> InlineKey {
        let source = key.as_bytes();
        if source.len() <= Self::INLINE {
            let mut bytes = [0; Self::INLINE];
            bytes[..source.len()].copy_from_slice(source);
            InlineKey::Inline { len: source.len() as u8, bytes }
        } else {
            InlineKey::Heap(source.into())
        }
    }

    /// The key's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            InlineKey::Inline { len, bytes } => &bytes[..usize::from(*len)],
            InlineKey::Heap(bytes) => bytes,
        }
    }
}

// Hash, equality and `Borrow<[u8]>` all go through the bytes, as `Borrow` requires.
impl std::hash::Hash for InlineKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq for InlineKey {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for InlineKey {}

impl std::borrow::Borrow<[u8]> for InlineKey {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// `moka::sync::Cache` with its defaults (TinyLFU admission, LRU eviction).
#[derive(Debug)]
pub struct Moka(pub moka::sync::Cache<InlineKey, Bytes>);

impl Contender for Moka {
    fn name(&self) -> String {
        "moka".to_owned()
    }
    fn get(&self, key: &str) -> bool {
        self.0.get(key.as_bytes()).is_some()
    }
    fn insert(&self, key: &str, value: Bytes) {
        self.0.insert(InlineKey::new(key), value);
    }
}

/// `quick_cache::sync::Cache` with its defaults (S3-FIFO-like clock; 4 shards per core).
#[derive(Debug)]
pub struct QuickCache(pub quick_cache::sync::Cache<InlineKey, Bytes>);

impl QuickCache {
    /// A cache of `capacity` entries with quick_cache's defaults.
    pub fn new(capacity: u64) -> QuickCache {
        QuickCache(quick_cache::sync::Cache::new(capacity as usize))
    }
}

impl Contender for QuickCache {
    fn name(&self) -> String {
        "quick_cache".to_owned()
    }
    fn get(&self, key: &str) -> bool {
        self.0.get(key.as_bytes()).is_some()
    }
    fn insert(&self, key: &str, value: Bytes) {
        self.0.insert(InlineKey::new(key), value);
    }
}

/// A `MemoryCache` of `capacity` entries with `policy`.
pub fn memory(capacity: u64, policy: EvictionPolicy) -> MemoryCache {
    MemoryCache::builder()
        .max_capacity(capacity.max(1))
        .eviction_policy(policy)
        .build()
        .expect("a positive capacity always builds")
}

/// Every contender of the hit-ratio table at `capacity` entries: each policy, then
/// moka and quick_cache.
pub fn all_contenders(capacity: u64) -> Vec<Box<dyn Contender>> {
    let mut contenders: Vec<Box<dyn Contender>> = [
        EvictionPolicy::S3Fifo,
        EvictionPolicy::Lru,
        EvictionPolicy::Lfu,
        EvictionPolicy::Fifo,
        EvictionPolicy::Random,
    ]
    .into_iter()
    .map(|policy| Box::new(Direct(memory(capacity, policy))) as Box<dyn Contender>)
    .collect();
    contenders.push(Box::new(Moka(moka::sync::Cache::new(capacity))));
    contenders.push(Box::new(QuickCache::new(capacity)));
    contenders
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_find_inline_and_heap_keys_by_their_bytes() {
        let cache = QuickCache::new(100);
        let long = "k".repeat(InlineKey::INLINE + 1);
        for key in ["", "key:1", long.as_str()] {
            assert!(!cache.get(key));
            cache.insert(key, value());
            assert!(cache.get(key), "{key:?} is found after its insert");
        }
        assert!(matches!(InlineKey::new(&long), InlineKey::Heap(_)));
        assert!(!cache.get("key:2"));
    }

    #[test]
    fn belady_is_exact_on_a_small_trace() {
        // Capacity 2, trace a b c a b: OPT keeps a and b by not admitting c.
        assert_eq!(belady_hits(&[0, 1, 2, 0, 1], 2), 2);
        assert_eq!(belady_hits(&[0, 0, 0], 1), 2);
    }

    #[test]
    fn zipf_favours_low_ranks_and_is_deterministic() {
        let trace = zipf_trace(1_000, 1.0, 10_000, 7);
        assert_eq!(trace, zipf_trace(1_000, 1.0, 10_000, 7));
        let hottest = permutation(1_000, 7 ^ 0x5ca7)[0];
        let share = trace.iter().filter(|&&id| id == hottest).count();
        assert!(share > 10_000 / 20, "rank 0 of Zipf(1) over 1000 keys draws about 13%: {share}");
    }
}
