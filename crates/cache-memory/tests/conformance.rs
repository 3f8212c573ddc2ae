//! The cache-core conformance suite on `MemoryCache`: every behaviour on the concrete
//! type (prefixed and not) and behind `Box<dyn Cache>`.

use cache_core::testkit::Harness;
use cache_memory::MemoryCache;

/// One fresh store per test; `open` gives handles on it under each prefix.
struct MemoryHarness {
    store: MemoryCache,
}

impl Harness for MemoryHarness {
    type Cache = MemoryCache;

    async fn isolated() -> Self {
        let store = MemoryCache::builder().max_capacity(100_000).build().expect("building the store");
        MemoryHarness { store }
    }

    async fn open(&self, prefix: &str) -> MemoryCache {
        self.store.with_prefix(prefix)
    }
}

cache_core::conformance_tests!(MemoryHarness);
