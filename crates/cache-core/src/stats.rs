//! The counters a store keeps about itself, the same for every store that keeps them, and
//! the striped read counters in-process stores count them with.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// What a store has done since it was built, from [`Cache::stats`](crate::Cache::stats):
/// the same counters for every store that keeps them (the in-process stores do; a
/// network store, whose server is shared with other clients, reports `None` and can be
/// wrapped in the umbrella crate's `Instrumented` for client-side counts).
///
/// A get-or-compute request counts once: a hit when the value was stored, a miss when
/// this caller ran the loader, and **coalesced** when another caller's concurrent load
/// answered it (single flight). So 60 concurrent requests for one missing key that run the
/// loader once count 1 miss and 59 coalesced (or hits, for late arrivals), not 60 misses.
///
/// Counters are read one by one while other threads count, so a snapshot taken under load
/// is close, not exact.
///
/// ```
/// # #![allow(dead_code)]
/// use cache_core::{Cache, CacheStats};
///
/// fn report(cache: &dyn Cache) {
///     if let Some(stats) = cache.stats() {
///         println!("{} hits, {} misses, {:.0}% served", stats.hits, stats.misses, stats.hit_ratio() * 100.0);
///     }
/// }
///
/// let mut stats = CacheStats::default();
/// (stats.hits, stats.coalesced, stats.misses) = (2, 1, 1);
/// assert_eq!(stats.hit_ratio(), 0.75);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads (`get`, `has`, each key of `get_many`, get-or-compute) that found a live entry.
    pub hits: u64,
    /// Reads that found nothing or an expired entry, less those that get-or-compute
    /// settled otherwise (see [`coalesced`](Self::coalesced)).
    pub misses: u64,
    /// Get-or-compute requests that missed and were then answered by another caller's
    /// load of the same key, without running their own loader.
    pub coalesced: u64,
    /// Values written: `set`, each entry of `set_many`, a winning `add`, `incr`.
    pub inserts: u64,
    /// Entries removed to make room.
    pub evictions: u64,
    /// Entries removed because their lifetime ended.
    pub expirations: u64,
}

impl CacheStats {
    /// Reads answered without running a loader, over all reads:
    /// `(hits + coalesced) / (hits + coalesced + misses)`, or 0 before any read.
    pub fn hit_ratio(&self) -> f64 {
        let served = self.hits + self.coalesced;
        let reads = served + self.misses;
        if reads == 0 { 0.0 } else { served as f64 / reads as f64 }
    }
}

/// How get-or-compute settled a miss that a store's `get` had just reported and counted,
/// passed to [`Cache::settle_miss`](crate::Cache::settle_miss) so the request is counted
/// once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MissSettled {
    /// Another caller's concurrent load answered the request: count it as coalesced
    /// instead of as a miss.
    Coalesced,
    /// The same request read the key again (the single-flight leader checks once more
    /// before loading) and that read was counted: forget this miss.
    Reread,
}

/// One thread's share of the counts, alone on its cache lines so two cores reading do
/// not fight over one.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe {
    hits: AtomicU64,
    misses: AtomicU64,
    coalesced: AtomicU64,
    reread: AtomicU64,
}

/// Hit, miss and coalesced counts striped by thread: counting costs one uncontended
/// relaxed add. For stores and wrappers that implement [`Cache::stats`](crate::Cache::stats).
///
/// ```
/// use cache_core::{MissSettled, ReadCounters};
///
/// let reads = ReadCounters::new();
/// reads.hit();
/// reads.miss();
/// reads.miss();
/// reads.settle(MissSettled::Coalesced);
/// assert_eq!(reads.sum(), (1, 1, 1)); // hits, misses, coalesced
/// ```
#[derive(Debug)]
pub struct ReadCounters {
    stripes: Box<[Stripe]>,
}

/// Enough stripes that threads of a typical runtime rarely share one; a power of two.
const STRIPES: usize = 32;
const _: () = assert!(STRIPES.is_power_of_two());

impl Default for ReadCounters {
    fn default() -> Self {
        ReadCounters::new()
    }
}

impl ReadCounters {
    /// Counters at zero.
    pub fn new() -> ReadCounters {
        ReadCounters { stripes: (0..STRIPES).map(|_| Stripe::default()).collect() }
    }

    #[inline]
    fn stripe(&self) -> &Stripe {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            // Handed out round-robin on a thread's first count.
            static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
        }
        let index = INDEX.with(|index| {
            if index.get() == usize::MAX {
                index.set(NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES);
            }
            index.get()
        });
        // A mask of the constant, not `% self.stripes.len()`: that is a division on every
        // read, as the length is only known at run time.
        &self.stripes[index & (STRIPES - 1)]
    }

    /// Counts a read that found a live entry.
    #[inline]
    pub fn hit(&self) {
        self.stripe().hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a read that found nothing.
    #[inline]
    pub fn miss(&self) {
        self.stripe().misses.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a read as a hit or a miss.
    #[inline]
    pub fn record(&self, found: bool) {
        if found { self.hit() } else { self.miss() }
    }

    /// Counts the reads of a batch (`get_many`) at once.
    pub fn record_many(&self, hits: u64, misses: u64) {
        let stripe = self.stripe();
        stripe.hits.fetch_add(hits, Ordering::Relaxed);
        stripe.misses.fetch_add(misses, Ordering::Relaxed);
    }

    /// Takes back one counted miss, as `settled` says (see [`MissSettled`]).
    pub fn settle(&self, settled: MissSettled) {
        let stripe = self.stripe();
        match settled {
            MissSettled::Coalesced => &stripe.coalesced,
            MissSettled::Reread => &stripe.reread,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// The reads as [`CacheStats`] (`hits`, `misses`, `coalesced`), the other counters at
    /// zero for the store to fill in.
    pub fn stats(&self) -> CacheStats {
        let mut stats = CacheStats::default();
        (stats.hits, stats.misses, stats.coalesced) = self.sum();
        stats
    }

    /// `(hits, misses, coalesced)` summed over the stripes; misses exclude the ones
    /// settled since (a miss and its settling may be counted on different threads, so
    /// they are netted here, not per stripe).
    pub fn sum(&self) -> (u64, u64, u64) {
        let total = |field: fn(&Stripe) -> &AtomicU64| -> u64 {
            self.stripes.iter().map(|stripe| field(stripe).load(Ordering::Relaxed)).sum()
        };
        let coalesced = total(|stripe| &stripe.coalesced);
        let misses = total(|stripe| &stripe.misses).saturating_sub(coalesced + total(|stripe| &stripe.reread));
        (total(|stripe| &stripe.hits), misses, coalesced)
    }
}
