//! The cache-core conformance suite on `RedisCache` on the xtask's single node.
//!
//! Isolation: every harness takes a database of its own (the xtask starts Redis with
//! `--databases 1024`; numbers come from a process-wide counter and start at 1, leaving
//! 0 to other tests) and empties it first. The `unprefixed` variant may then `clear` it
//! with `FLUSHDB` (`clear_flushes_db(true)`) without touching any other test. Caches
//! opened on one harness share its database, so two prefixes are two namespaces of one
//! store. Cargo runs test binaries one after another, so one counter per process is enough.

mod support;

use std::sync::atomic::{AtomicI64, Ordering};

use cache_core::Cache;
use cache_core::testkit::Harness;
use cache_redis::RedisCache;

/// The databases the xtask gives the server, minus database 0.
const DATABASES: i64 = 1024;

struct RedisHarness {
    url: String,
    db: i64,
}

impl RedisHarness {
    async fn build(&self, prefix: &str) -> RedisCache {
        RedisCache::builder()
            .url(self.url.clone())
            .db(self.db)
            .prefix(prefix)
            .clear_flushes_db(true)
            .build()
            .await
            .unwrap_or_else(|error| panic!("connecting to {} db {}: {error}", self.url, self.db))
    }
}

impl Harness for RedisHarness {
    type Cache = RedisCache;

    async fn isolated() -> Self {
        static NEXT_DB: AtomicI64 = AtomicI64::new(0);
        let db = NEXT_DB.fetch_add(1, Ordering::Relaxed) % (DATABASES - 1) + 1;
        let harness = RedisHarness { url: support::redis_url(), db };
        harness.build("").await.clear().await.expect("emptying the harness's database");
        harness
    }

    async fn open(&self, prefix: &str) -> RedisCache {
        self.build(prefix).await
    }
}

cache_core::conformance_tests!(RedisHarness, #[ignore = "needs redis: cargo xtask test"]);
