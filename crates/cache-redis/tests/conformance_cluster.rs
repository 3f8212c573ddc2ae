//! The cache-core conformance suite on `RedisCache` on the xtask's 3-primary Redis Cluster.
//!
//! A cluster has only database 0, so harnesses cannot each own a database. Prefixed
//! caches use random prefixes and never meet; a harness that opens a cache *without* a
//! prefix (whose keys would collide with another such test's, and whose `clear` is a
//! `FLUSHDB` on every primary) must own the whole cluster. One process-wide async
//! `RwLock` says who may run: opening a prefixed cache takes it shared, opening `""`
//! takes it exclusive and empties the cluster (leftovers of earlier unprefixed tests, such
//! as an `add`'s key, would change the answers). A harness holds its guard until it is
//! dropped. One that opened prefixed caches first gives its shared guard back before
//! asking for the exclusive one, so it never waits on itself; what it wrote before that
//! may be flushed (by itself or another exclusive test in the gap), which is why the
//! suite's behaviours that mix handles check prefixed writes before opening `""`.

mod support;

use std::sync::{Arc, LazyLock, Mutex};

use cache_core::Cache;
use cache_core::testkit::Harness;
use cache_redis::RedisCache;
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

static WHOLE_CLUSTER: LazyLock<Arc<RwLock<()>>> = LazyLock::new(|| Arc::new(RwLock::new(())));

enum Guard {
    Nothing,
    Shared(#[allow(dead_code)] OwnedRwLockReadGuard<()>),
    Exclusive(#[allow(dead_code)] OwnedRwLockWriteGuard<()>),
}

struct ClusterHarness {
    nodes: Vec<String>,
    guard: Mutex<Guard>,
}

impl ClusterHarness {
    async fn build(&self, prefix: &str) -> RedisCache {
        RedisCache::builder()
            .cluster_nodes(self.nodes.clone())
            .prefix(prefix)
            .clear_flushes_db(true)
            .build()
            .await
            .unwrap_or_else(|error| panic!("connecting to the cluster {:?}: {error}", self.nodes))
    }

    fn take_guard(&self) -> Guard {
        std::mem::replace(&mut *self.guard.lock().unwrap_or_else(std::sync::PoisonError::into_inner), Guard::Nothing)
    }

    fn put_guard(&self, guard: Guard) {
        *self.guard.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = guard;
    }
}

impl Harness for ClusterHarness {
    type Cache = RedisCache;

    async fn isolated() -> Self {
        ClusterHarness { nodes: support::cluster_nodes(), guard: Mutex::new(Guard::Nothing) }
    }

    async fn open(&self, prefix: &str) -> RedisCache {
        let held = self.take_guard();
        let guard = match (held, prefix.is_empty()) {
            (Guard::Exclusive(guard), _) => Guard::Exclusive(guard),
            (Guard::Shared(guard), false) => Guard::Shared(guard),
            (Guard::Nothing, false) => Guard::Shared(Arc::clone(&WHOLE_CLUSTER).read_owned().await),
            (held, true) => {
                drop(held);
                let guard = Arc::clone(&WHOLE_CLUSTER).write_owned().await;
                self.build("").await.clear().await.expect("emptying the cluster");
                Guard::Exclusive(guard)
            }
        };
        self.put_guard(guard);
        self.build(prefix).await
    }
}

cache_core::conformance_tests!(ClusterHarness, #[ignore = "needs redis-cluster: cargo xtask test"]);
