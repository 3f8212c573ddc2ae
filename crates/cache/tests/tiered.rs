//! `Tiered` through the whole cache-core conformance suite: memory before memory, memory
//! before files and memory before Redis (opened from its URL, on the xtask's server); then
//! what the suite cannot see (fills, the cap, far as the truth).

use std::time::Duration;

use cache::fs::FsCache;
use cache::memory::MemoryCache;
use cache::{Bytes, Cache, ErrorKind, Tiered, Ttl};
use cache_core::testkit::Harness;

fn memory() -> MemoryCache {
    MemoryCache::builder().max_capacity(100_000).build().expect("building a MemoryCache")
}

mod memory_before_memory {
    use super::*;

    /// One near and one far store per test; each prefix is a handle on both.
    struct MemoryMemory {
        near: MemoryCache,
        far: MemoryCache,
    }

    impl Harness for MemoryMemory {
        type Cache = Tiered<MemoryCache, MemoryCache>;

        async fn isolated() -> Self {
            MemoryMemory { near: memory(), far: memory() }
        }

        async fn open(&self, prefix: &str) -> Self::Cache {
            Tiered::new(self.near.with_prefix(prefix), self.far.with_prefix(prefix))
        }
    }

    cache_core::conformance_tests!(MemoryMemory);
}

mod memory_before_files {
    use super::*;

    struct MemoryFiles {
        near: MemoryCache,
        dir: tempfile::TempDir,
    }

    impl Harness for MemoryFiles {
        type Cache = Tiered<MemoryCache, FsCache>;

        async fn isolated() -> Self {
            MemoryFiles { near: memory(), dir: tempfile::tempdir().expect("creating a temp directory") }
        }

        async fn open(&self, prefix: &str) -> Self::Cache {
            let far = FsCache::builder(self.dir.path()).prefix(prefix).build().await.expect("building an FsCache");
            Tiered::new(self.near.with_prefix(prefix), far)
        }
    }

    cache_core::conformance_tests!(MemoryFiles);
}

mod memory_before_redis {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use cache::OpenOptions;

    use super::*;

    /// The databases the xtask gives its Redis (`--databases 1024`), minus database 0.
    const DATABASES: u32 = 1023;

    /// A Redis database of its own per harness (emptied first, so the unprefixed variant
    /// may `FLUSHDB` it) and one near store; each prefix is a handle on both.
    struct MemoryRedis {
        near: MemoryCache,
        url: String,
    }

    impl Harness for MemoryRedis {
        type Cache = Tiered<MemoryCache, Arc<dyn Cache>>;

        async fn isolated() -> Self {
            static NEXT_DB: AtomicU32 = AtomicU32::new(0);
            let server = std::env::var("CACHE_TEST_REDIS_URL").expect(
                "CACHE_TEST_REDIS_URL is not set: run `cargo xtask test`, or `eval \"$(cargo xtask servers up redis)\"`",
            );
            let db = NEXT_DB.fetch_add(1, Ordering::Relaxed) % DATABASES + 1;
            let harness = MemoryRedis { near: memory(), url: format!("{server}/{db}?clear_flushes_db=true") };
            harness.open("").await.clear().await.expect("emptying the harness's database");
            harness
        }

        async fn open(&self, prefix: &str) -> Self::Cache {
            // The prefix through `OpenOptions`: the suite's prefixes need no URL encoding then.
            let far = cache::open_with(&self.url, OpenOptions::new().prefix(prefix))
                .await
                .unwrap_or_else(|error| panic!("opening {}: {error}", self.url));
            Tiered::new(self.near.with_prefix(prefix), far)
        }
    }

    cache_core::conformance_tests!(MemoryRedis, #[ignore = "needs redis: cargo xtask test"]);
}

fn text(value: &str) -> Bytes {
    Bytes::copy_from_slice(value.as_bytes())
}

#[tokio::test]
async fn a_far_hit_is_copied_near() {
    let (near, far) = (memory(), memory());
    let tiered = Tiered::new(near.clone(), far.clone());
    far.set("k", text("from far"), Ttl::Never).await.expect("set far");
    assert_eq!(near.get("k").await.expect("near"), None);
    assert_eq!(tiered.get("k").await.expect("get"), Some(text("from far")));
    assert_eq!(near.get("k").await.expect("near"), Some(text("from far")), "a far hit must fill near");

    far.set("a", text("1"), Ttl::Never).await.expect("set far");
    let got = tiered.get_many(&["a", "k", "missing", "a"]).await.expect("get_many");
    assert_eq!(got, vec![Some(text("1")), Some(text("from far")), None, Some(text("1"))]);
    assert_eq!(near.get("a").await.expect("near"), Some(text("1")), "get_many must fill near");
}

#[tokio::test]
async fn near_copies_expire_within_the_cap_and_far_stays_the_truth() {
    let (near, far) = (memory(), memory());
    let tiered = Tiered::new(near.clone(), far.clone()).near_ttl_cap(Duration::from_millis(200));
    tiered.set("k", text("v1"), Ttl::Never).await.expect("set");
    // Another process changes far behind this near store's back.
    far.set("k", text("v2"), Ttl::Never).await.expect("set far");
    assert_eq!(tiered.get("k").await.expect("get"), Some(text("v1")), "the near copy is served within the cap");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(tiered.get("k").await.expect("get"), Some(text("v2")), "after the cap the far value shows");
}

#[tokio::test]
async fn incr_and_add_go_far_and_drop_the_near_copy() {
    let (near, far) = (memory(), memory());
    let tiered = Tiered::new(near.clone(), far.clone());
    tiered.set("n", text("1"), Ttl::Never).await.expect("set");
    assert_eq!(tiered.incr("n", 1).await.expect("incr"), 2);
    assert_eq!(near.get("n").await.expect("near"), None, "incr must drop the near copy");
    assert_eq!(far.get("n").await.expect("far"), Some(text("2")));

    near.set("slot", text("stale"), Ttl::Never).await.expect("a stale near copy");
    assert!(tiered.add("slot", text("fresh"), Ttl::Never).await.expect("add"), "far decides add");
    assert_eq!(near.get("slot").await.expect("near"), None, "add must drop the near copy");
    assert_eq!(tiered.get("slot").await.expect("get"), Some(text("fresh")));
}

#[tokio::test]
async fn a_value_too_large_for_near_lives_far_only() {
    let near = MemoryCache::builder().max_capacity(64).weigher(|_, value| value.len() as u32).build().expect("near");
    let far = memory();
    let tiered = Tiered::new(near.clone(), far.clone());
    tiered.set("big", text("small"), Ttl::Never).await.expect("set small");
    let big = Bytes::from(vec![b'x'; 1024]);
    tiered.set("big", big.clone(), Ttl::Never).await.expect("far takes what near cannot");
    assert_eq!(near.get("big").await.expect("near"), None, "the old near copy must not survive");
    assert_eq!(tiered.get("big").await.expect("get"), Some(big));
}

#[tokio::test]
async fn clear_is_unsupported_when_one_tier_cannot_clear() {
    #[derive(Debug)]
    struct NoClear(MemoryCache);

    #[cache::async_trait]
    impl Cache for NoClear {
        async fn get(&self, key: &str) -> cache::Result<Option<Bytes>> {
            self.0.get(key).await
        }
        async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> cache::Result<()> {
            self.0.set(key, value, ttl).await
        }
        async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> cache::Result<bool> {
            self.0.add(key, value, ttl).await
        }
        async fn delete(&self, key: &str) -> cache::Result<bool> {
            self.0.delete(key).await
        }
        async fn incr(&self, key: &str, delta: i64) -> cache::Result<i64> {
            self.0.incr(key, delta).await
        }
        async fn clear(&self) -> cache::Result<()> {
            Err(cache::Error::unsupported("noclear", "clear", "test store"))
        }
        fn capabilities(&self) -> cache::Capabilities {
            let mut capabilities = self.0.capabilities();
            capabilities.clear = false;
            capabilities
        }
    }

    let near = memory();
    let tiered = Tiered::new(near.clone(), NoClear(memory()));
    tiered.set("k", text("v"), Ttl::Never).await.expect("set");
    let error = tiered.clear().await.expect_err("clear");
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert_eq!(near.get("k").await.expect("near"), Some(text("v")), "an unsupported clear must remove nothing");
}
