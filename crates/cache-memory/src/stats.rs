//! Hit and miss counters cheap enough to leave on: each thread counts on its own cache
//! line, so two cores reading the same hot key do not also fight over a counter.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// What a [`MemoryCache`](crate::MemoryCache) has done since it was built, summed over
/// every handle to its storage. Counted per shard and per thread without locks, so a
/// snapshot taken while others write is close but not exact.
///
/// ```
/// use cache_core::Ttl;
/// use cache_memory::MemoryCache;
///
/// # fn main() -> cache_core::Result<()> {
/// let cache = MemoryCache::new(100)?;
/// cache.sync().set("k", "v".into(), Ttl::Never)?;
/// cache.sync().get("k");
/// cache.sync().get("missing");
/// let stats = cache.stats();
/// assert_eq!((stats.hits, stats.misses, stats.inserts), (1, 1, 1));
/// assert_eq!(stats.hit_ratio(), 0.5);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads (`get`, `has`, `get_many`) that found a live entry.
    pub hits: u64,
    /// Reads that found nothing or an expired entry.
    pub misses: u64,
    /// Values written: `set`, a winning `add`, `incr`.
    pub inserts: u64,
    /// Entries removed to make room.
    pub evictions: u64,
    /// Entries removed because their lifetime ended.
    pub expirations: u64,
}

impl CacheStats {
    /// `hits / (hits + misses)`, or 0 before any read.
    pub fn hit_ratio(&self) -> f64 {
        let reads = self.hits + self.misses;
        if reads == 0 { 0.0 } else { self.hits as f64 / reads as f64 }
    }
}

#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe {
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Hit and miss counts striped by thread.
#[derive(Debug)]
pub(crate) struct ReadCounters {
    stripes: Box<[Stripe]>,
}

const STRIPES: usize = 32;

impl ReadCounters {
    pub(crate) fn new() -> ReadCounters {
        ReadCounters { stripes: (0..STRIPES).map(|_| Stripe::default()).collect() }
    }

    #[inline]
    fn stripe(&self) -> &Stripe {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
        }
        let index = INDEX.with(|index| {
            if index.get() == usize::MAX {
                index.set(NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES);
            }
            index.get()
        });
        &self.stripes[index % self.stripes.len()]
    }

    #[inline]
    pub(crate) fn hit(&self) {
        self.stripe().hits.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn miss(&self) {
        self.stripe().misses.fetch_add(1, Ordering::Relaxed);
    }

    /// `(hits, misses)` summed over the stripes.
    pub(crate) fn sum(&self) -> (u64, u64) {
        self.stripes.iter().fold((0, 0), |(hits, misses), stripe| {
            (hits + stripe.hits.load(Ordering::Relaxed), misses + stripe.misses.load(Ordering::Relaxed))
        })
    }
}
