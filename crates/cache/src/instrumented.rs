//! Counters, latency histograms and (feature `tracing`) spans around any [`Cache`].

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cache_core::{
    Bytes, Cache, CacheStats, Capabilities, ErrorKind, MissSettled, ReadCounters, Result, Ttl, async_trait,
};

/// Every operation a [`Cache`] has, for per-operation counts and latencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// [`Cache::get`]
    Get,
    /// [`Cache::set`]
    Set,
    /// [`Cache::add`]
    Add,
    /// [`Cache::delete`]
    Delete,
    /// [`Cache::has`]
    Has,
    /// [`Cache::incr`]
    Incr,
    /// [`Cache::get_many`]
    GetMany,
    /// [`Cache::set_many`]
    SetMany,
    /// [`Cache::delete_many`]
    DeleteMany,
    /// [`Cache::clear`]
    Clear,
}

impl Operation {
    /// Every operation, in the order of [`StatsSnapshot::operations`].
    pub const ALL: [Operation; 10] = [
        Operation::Get,
        Operation::Set,
        Operation::Add,
        Operation::Delete,
        Operation::Has,
        Operation::Incr,
        Operation::GetMany,
        Operation::SetMany,
        Operation::DeleteMany,
        Operation::Clear,
    ];

    /// The method's name, such as `"get_many"`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Set => "set",
            Operation::Add => "add",
            Operation::Delete => "delete",
            Operation::Has => "has",
            Operation::Incr => "incr",
            Operation::GetMany => "get_many",
            Operation::SetMany => "set_many",
            Operation::DeleteMany => "delete_many",
            Operation::Clear => "clear",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The error kinds counted one by one; any kind added to `ErrorKind` later is counted
/// under [`StatsSnapshot::errors_other`].
const KINDS: [ErrorKind; 10] = [
    ErrorKind::Unavailable,
    ErrorKind::Timeout,
    ErrorKind::ValueTooLarge,
    ErrorKind::NotAnInteger,
    ErrorKind::IntegerOverflow,
    ErrorKind::InvalidConfig,
    ErrorKind::Serialization,
    ErrorKind::Unsupported,
    ErrorKind::LoaderFailed,
    ErrorKind::Unexpected,
];

/// Counter stripes: each thread adds to its own, so threads on different cores never
/// fight over one cache line; a snapshot sums them.
const STRIPES: usize = 16;

/// One thread's share of the counters, alone on its cache lines.
#[repr(align(128))]
#[derive(Default)]
struct Stripe {
    calls: [AtomicU64; Operation::ALL.len()],
    sets: AtomicU64,
    deletes: AtomicU64,
}

thread_local! {
    /// This thread's stripe, handed out round-robin on first use.
    static STRIPE: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES
    };
    /// Counts calls on this thread, to time one in `sample_every`.
    static TICK: Cell<u32> = const { Cell::new(0) };
}

/// Latencies as a log-linear histogram of nanoseconds: 8 buckets per power of two, so a
/// reported percentile is within 12.5% of the true one. Lock-free: recording is one
/// relaxed atomic add.
struct Histogram {
    buckets: Box<[AtomicU64]>,
}

const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

impl Histogram {
    fn new() -> Self {
        Histogram { buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }

    fn bucket(nanos: u64) -> usize {
        if nanos < SUB {
            return nanos as usize;
        }
        let exponent = 63 - nanos.leading_zeros();
        let sub = (nanos >> (exponent - SUB_BITS)) & (SUB - 1);
        ((exponent - SUB_BITS + 1) as usize) * SUB as usize + sub as usize
    }

    /// The smallest value of bucket `index`, and the width of the bucket.
    fn bounds(index: usize) -> (u64, u64) {
        if index < SUB as usize {
            return (index as u64, 1);
        }
        let exponent = (index / SUB as usize) as u32 + SUB_BITS - 1;
        let sub = (index % SUB as usize) as u64;
        let width = 1u64 << (exponent - SUB_BITS);
        ((1u64 << exponent) + sub * width, width)
    }

    fn record(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[Self::bucket(nanos)].fetch_add(1, Ordering::Relaxed);
    }

    fn summary(&self) -> Latency {
        let counts: Vec<u64> = self.buckets.iter().map(|bucket| bucket.load(Ordering::Relaxed)).collect();
        let samples: u64 = counts.iter().sum();
        let quantile = |q: f64| -> Duration {
            if samples == 0 {
                return Duration::ZERO;
            }
            // The rank of the q-quantile, 1-based, then the bucket holding it, reported at
            // the bucket's middle.
            let rank = ((q * samples as f64).ceil() as u64).clamp(1, samples);
            let mut seen = 0;
            for (index, &count) in counts.iter().enumerate() {
                seen += count;
                if seen >= rank {
                    let (low, width) = Self::bounds(index);
                    return Duration::from_nanos(low.saturating_add(width / 2));
                }
            }
            Duration::MAX
        };
        let max = counts.iter().rposition(|&count| count > 0).map_or(Duration::ZERO, |index| {
            let (low, width) = Self::bounds(index);
            Duration::from_nanos(low.saturating_add(width - 1))
        });
        Latency { samples, p50: quantile(0.50), p99: quantile(0.99), max }
    }
}

/// The live counters of an [`Instrumented`] cache, shared by its clones; take a
/// [`snapshot`](Stats::snapshot) to read them.
pub struct Stats {
    stripes: Box<[Stripe]>,
    reads: ReadCounters,
    errors: [AtomicU64; KINDS.len() + 1],
    latency: [Histogram; Operation::ALL.len()],
    sample_every: u32,
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The counters a reader scans for; the per-operation table is in `snapshot()`.
        let now = self.snapshot();
        f.debug_struct("Stats")
            .field("hits", &now.hits)
            .field("misses", &now.misses)
            .field("coalesced", &now.coalesced)
            .field("sets", &now.sets)
            .field("deletes", &now.deletes)
            .field("errors", &now.errors)
            .finish_non_exhaustive()
    }
}

impl Stats {
    fn new(sample_every: u32) -> Self {
        Stats {
            stripes: (0..STRIPES).map(|_| Stripe::default()).collect(),
            reads: ReadCounters::new(),
            errors: Default::default(),
            latency: std::array::from_fn(|_| Histogram::new()),
            sample_every,
        }
    }

    fn stripe(&self) -> &Stripe {
        &self.stripes[STRIPE.with(|stripe| *stripe)]
    }

    /// The counters now. Counters are read one by one while other threads may add to
    /// them, so a snapshot taken under load is a consistent view of each counter, not of
    /// all of them at one instant.
    pub fn snapshot(&self) -> StatsSnapshot {
        let sum = |field: fn(&Stripe) -> &AtomicU64| -> u64 {
            self.stripes.iter().map(|stripe| field(stripe).load(Ordering::Relaxed)).sum()
        };
        let operations = Operation::ALL
            .iter()
            .map(|&operation| OperationStats {
                operation,
                calls: self.stripes.iter().map(|stripe| stripe.calls[operation.index()].load(Ordering::Relaxed)).sum(),
                latency: self.latency[operation.index()].summary(),
            })
            .collect();
        let (hits, misses, coalesced) = self.reads.sum();
        StatsSnapshot {
            hits,
            misses,
            coalesced,
            sets: sum(|stripe| &stripe.sets),
            deletes: sum(|stripe| &stripe.deletes),
            errors: KINDS
                .iter()
                .zip(&self.errors)
                .map(|(&kind, count)| (kind, count.load(Ordering::Relaxed)))
                .filter(|&(_, count)| count > 0)
                .collect(),
            errors_other: self.errors[KINDS.len()].load(Ordering::Relaxed),
            operations,
        }
    }

    fn count_error(&self, kind: ErrorKind) {
        let index = KINDS.iter().position(|&known| known == kind).unwrap_or(KINDS.len());
        self.errors[index].fetch_add(1, Ordering::Relaxed);
    }
}

/// What an [`Instrumented`] cache counted, from [`Stats::snapshot`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Keys found by `get` and `get_many` (each key of a `get_many` counts).
    pub hits: u64,
    /// Keys not found by `get` and `get_many`, less the get-or-compute requests
    /// counted under [`coalesced`](Self::coalesced) (as in [`CacheStats`](cache_core::CacheStats)).
    pub misses: u64,
    /// Get-or-compute requests that missed and were answered by another caller's
    /// concurrent load of the same key.
    pub coalesced: u64,
    /// Entries written: each `set`, each entry of a `set_many`, each `add` that wrote.
    pub sets: u64,
    /// Entries removed: each `delete` that removed one, and what `delete_many` removed.
    pub deletes: u64,
    /// Failed calls by error kind, kinds that never happened left out.
    pub errors: Vec<(ErrorKind, u64)>,
    /// Failed calls of a kind newer than this wrapper.
    pub errors_other: u64,
    /// Calls and latency per operation, in the order of [`Operation::ALL`].
    pub operations: Vec<OperationStats>,
}

impl StatsSnapshot {
    /// Reads answered without running a loader over all reads:
    /// `(hits + coalesced) / (hits + coalesced + misses)`; 0 before any read.
    pub fn hit_ratio(&self) -> f64 {
        let served = self.hits + self.coalesced;
        let reads = served + self.misses;
        if reads == 0 { 0.0 } else { served as f64 / reads as f64 }
    }

    /// How many calls failed with `kind`.
    pub fn errors_of(&self, kind: ErrorKind) -> u64 {
        self.errors.iter().find(|(counted, _)| *counted == kind).map_or(0, |&(_, count)| count)
    }

    /// The calls and latency of `operation`.
    pub fn operation(&self, operation: Operation) -> &OperationStats {
        // `operations` is built from `Operation::ALL`, one entry per operation, in order.
        &self.operations[operation.index()]
    }
}

/// One operation's calls and latency.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct OperationStats {
    /// Which operation.
    pub operation: Operation,
    /// Every call, failed ones included.
    pub calls: u64,
    /// The latency of the timed calls.
    pub latency: Latency,
}

/// A latency distribution, within 12.5% (the histogram's bucket width).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Latency {
    /// How many calls were timed (one in [`Instrumented::sample_every`]).
    pub samples: u64,
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The slowest timed call.
    pub max: Duration,
}

/// Any [`Cache`] with counters, latency histograms and, with the `tracing` feature,
/// a span per operation.
///
/// Counts hits and misses (of `get` and `get_many`), entries set and deleted, failed
/// calls by [`ErrorKind`], and every call per [`Operation`]; times one call in
/// [`sample_every`](Self::sample_every) (default 8) per thread into a lock-free histogram
/// with p50 and p99. Counters are striped per thread, so threads do not contend.
/// Everything else is forwarded unchanged, `single_flight_scope` included, so an
/// instrumented handle joins the same `get_or_insert_with` loads as the bare store.
///
/// With the `tracing` feature each operation runs in a `debug` span named `cache` with
/// the operation's name; the key is recorded only after [`log_keys`](Self::log_keys),
/// values never, and a failure is logged at `debug` with its kind.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(async {
/// use std::sync::Arc;
/// use cache::{Cache, Instrumented, Operation, Ttl, memory::MemoryCache};
///
/// let cache = Instrumented::new(MemoryCache::builder().build()?);
/// let stats = cache.stats();
/// let cache: Arc<dyn Cache> = Arc::new(cache);
/// cache.set("a", "1".into(), Ttl::Never).await?;
/// cache.get("a").await?;
/// cache.get("b").await?;
/// let now = stats.snapshot();
/// assert_eq!((now.hits, now.misses, now.sets), (1, 1, 1));
/// assert_eq!(now.operation(Operation::Get).calls, 2);
/// # Ok::<(), cache::Error>(())
/// # }).expect("example");
/// ```
#[derive(Debug, Clone)]
pub struct Instrumented<C> {
    inner: C,
    stats: Arc<Stats>,
    log_keys: bool,
}

/// One timed call in this many, per thread, unless configured otherwise.
pub const DEFAULT_SAMPLE_EVERY: u32 = 8;

impl<C: Cache> Instrumented<C> {
    /// Wraps `inner`, with fresh counters.
    pub fn new(inner: C) -> Self {
        Instrumented { inner, stats: Arc::new(Stats::new(DEFAULT_SAMPLE_EVERY)), log_keys: false }
    }

    /// Times one call in `every` on each thread (1 = every call). Reading the clock
    /// costs about as much as a memory-store hit, so timing every call would double the
    /// cost of the fastest stores; a sample of one in eight still gives steady
    /// percentiles. Resets the counters.
    #[must_use]
    pub fn sample_every(mut self, every: u32) -> Self {
        self.stats = Arc::new(Stats::new(every.max(1)));
        self
    }

    /// Records each operation's key in its tracing span (feature `tracing`). Off by
    /// default: keys can be personal data. Values are never recorded.
    #[must_use]
    pub fn log_keys(mut self, log_keys: bool) -> Self {
        self.log_keys = log_keys;
        self
    }

    /// The counters, shared with this cache and its clones; keep it to read them after
    /// the cache went into an `Arc<dyn Cache>`.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// The wrapped cache.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// Runs one call of `operation`: counts it, times it if its turn, counts its error.
    async fn observe<T>(
        &self,
        operation: Operation,
        #[allow(unused_variables)] key: Option<&str>,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let stats = &*self.stats;
        stats.stripe().calls[operation.index()].fetch_add(1, Ordering::Relaxed);
        let timed = TICK.with(|tick| {
            let next = tick.get().wrapping_add(1);
            tick.set(next);
            next % stats.sample_every == 0
        });
        #[cfg(feature = "tracing")]
        let call = {
            use tracing::Instrument as _;
            let span = tracing::debug_span!("cache", operation = operation.name(), key = tracing::field::Empty);
            if let (true, Some(key)) = (self.log_keys, key) {
                span.record("key", key);
            }
            call.instrument(span)
        };
        let started = timed.then(Instant::now);
        let result = call.await;
        if let Some(started) = started {
            stats.latency[operation.index()].record(started.elapsed());
        }
        if let Err(error) = &result {
            stats.count_error(error.kind());
            #[cfg(feature = "tracing")]
            tracing::debug!(operation = operation.name(), kind = ?error.kind(), "cache operation failed");
        }
        result
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<C: Cache> Cache for Instrumented<C> {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let value = self.observe(Operation::Get, Some(key), self.inner.get(key)).await?;
        self.stats.reads.record(value.is_some());
        Ok(value)
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()> {
        self.observe(Operation::Set, Some(key), self.inner.set(key, value, ttl)).await?;
        self.stats.stripe().sets.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
        let added = self.observe(Operation::Add, Some(key), self.inner.add(key, value, ttl)).await?;
        self.stats.stripe().sets.fetch_add(u64::from(added), Ordering::Relaxed);
        Ok(added)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let removed = self.observe(Operation::Delete, Some(key), self.inner.delete(key)).await?;
        self.stats.stripe().deletes.fetch_add(u64::from(removed), Ordering::Relaxed);
        Ok(removed)
    }

    async fn has(&self, key: &str) -> Result<bool> {
        self.observe(Operation::Has, Some(key), self.inner.has(key)).await
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        self.observe(Operation::Incr, Some(key), self.inner.incr(key, delta)).await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let values = self.observe(Operation::GetMany, None, self.inner.get_many(keys)).await?;
        let hits = values.iter().filter(|value| value.is_some()).count() as u64;
        self.stats.reads.record_many(hits, values.len() as u64 - hits);
        Ok(values)
    }

    async fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
        self.observe(Operation::SetMany, None, self.inner.set_many(entries, ttl)).await?;
        self.stats.stripe().sets.fetch_add(entries.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        let removed = self.observe(Operation::DeleteMany, None, self.inner.delete_many(keys)).await?;
        self.stats.stripe().deletes.fetch_add(removed as u64, Ordering::Relaxed);
        Ok(removed)
    }

    async fn clear(&self) -> Result<()> {
        self.observe(Operation::Clear, None, self.inner.clear()).await
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn single_flight_scope(&self) -> (usize, &str) {
        self.inner.single_flight_scope()
    }

    /// The wrapped store's own counters (this wrapper's are [`Instrumented::stats`]).
    fn stats(&self) -> Option<CacheStats> {
        self.inner.stats()
    }

    fn settle_miss(&self, settled: MissSettled) {
        self.stats.reads.settle(settled);
        self.inner.settle_miss(settled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for nanos in (0..10_000).chain([u64::MAX / 2, u64::MAX - 1, u64::MAX]) {
            let index = Histogram::bucket(nanos);
            assert!(index < BUCKETS, "{nanos} -> {index}");
            assert!(index >= last, "buckets must grow with the value");
            last = index;
            let (low, width) = Histogram::bounds(index);
            assert!(low <= nanos && nanos - low < width, "{nanos} outside bucket {index} ({low}, {width})");
        }
    }

    #[test]
    fn percentiles_fall_within_a_bucket_of_the_truth() {
        let histogram = Histogram::new();
        for micros in 1..=1000u64 {
            histogram.record(Duration::from_micros(micros));
        }
        let summary = histogram.summary();
        assert_eq!(summary.samples, 1000);
        let near = |got: Duration, want: Duration| {
            let (got, want) = (got.as_nanos() as f64, want.as_nanos() as f64);
            (got - want).abs() / want <= 0.125
        };
        assert!(near(summary.p50, Duration::from_micros(500)), "p50 {:?}", summary.p50);
        assert!(near(summary.p99, Duration::from_micros(990)), "p99 {:?}", summary.p99);
        assert!(summary.max >= Duration::from_micros(1000) && near(summary.max, Duration::from_micros(1000)));
    }
}
