//! What the memcached tests share: server addresses from the xtask and a conformance
//! harness over one server or the ring.

#![allow(dead_code, unreachable_pub)]

use std::marker::PhantomData;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use cache_core::Cache;
use cache_core::testkit::Harness;
use cache_memcached::MemcachedCache;
use tokio::sync::OwnedMutexGuard;

/// The single server's variable.
pub const SINGLE: &str = "CACHE_TEST_MEMCACHED_ADDR";
/// The three-node ring's variable (comma-separated).
pub const RING: &str = "CACHE_TEST_MEMCACHED_RING_ADDRS";

/// The addresses in `var`; a missing variable fails the test, never skips it.
pub fn addresses(var: &str) -> Vec<String> {
    let value = std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run `cargo xtask test`, or `eval \"$(cargo xtask servers up memcached memcached-ring)\"` first")
    });
    value.split(',').map(str::to_owned).collect()
}

/// A cache on the servers in `var`.
pub async fn cache_on(var: &str) -> MemcachedCache {
    let addresses = addresses(var);
    MemcachedCache::builder()
        .servers(addresses.iter().map(String::as_str))
        .build()
        .await
        .unwrap_or_else(|error| panic!("building a MemcachedCache on {addresses:?}: {error}"))
}

/// Which servers a harness uses.
pub trait Servers: Send + Sync + 'static {
    const VAR: &'static str;
}

pub struct One;
pub struct Three;

impl Servers for One {
    const VAR: &'static str = SINGLE;
}

impl Servers for Three {
    const VAR: &'static str = RING;
}

/// Every test of a run shares the servers. Prefixed tests each get a fresh random prefix,
/// but the unprefixed variant of every behaviour uses the one namespace `""` (and `clear`s
/// it): run concurrently, they would see each other's keys. So a harness that opens `""`
/// holds this lock until it is dropped, and clears `""` first. The prefixed tests still
/// run in parallel.
static UNPREFIXED: LazyLock<Arc<tokio::sync::Mutex<()>>> = LazyLock::new(Arc::default);

pub struct MemcachedHarness<S> {
    store: MemcachedCache,
    unprefixed: Mutex<Option<OwnedMutexGuard<()>>>,
    servers: PhantomData<S>,
}

impl<S: Servers> Harness for MemcachedHarness<S> {
    type Cache = MemcachedCache;

    async fn isolated() -> Self {
        MemcachedHarness { store: cache_on(S::VAR).await, unprefixed: Mutex::new(None), servers: PhantomData }
    }

    async fn open(&self, prefix: &str) -> MemcachedCache {
        let cache = self.store.with_prefix(prefix);
        let held = self.unprefixed.lock().unwrap_or_else(PoisonError::into_inner).is_some();
        if prefix.is_empty() && !held {
            let guard = Arc::clone(&UNPREFIXED).lock_owned().await;
            cache.clear().await.expect("clearing the unprefixed namespace before the test");
            *self.unprefixed.lock().unwrap_or_else(PoisonError::into_inner) = Some(guard);
        }
        cache
    }
}
