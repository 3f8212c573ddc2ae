//! One async cache API, and the freedom to keep the bytes where you like.
//!
//! This crate re-exports the contract from `cache-core` ([`Cache`], [`CacheExt`],
//! [`Ttl`], [`Error`]) and every store behind a cargo feature named like the store.
//! Code written against `Arc<dyn Cache>` runs unchanged on any of them.
//!
//! ```
//! # #[cfg(feature = "memory")]
//! # tokio::runtime::Runtime::new().expect("runtime").block_on(async {
//! use std::sync::Arc;
//! use cache::{Cache, CacheExt, Ttl, memory::MemoryCache};
//!
//! let cache: Arc<dyn Cache> = Arc::new(MemoryCache::builder().max_capacity(10_000).build()?);
//! cache.set_as("user:7:name", "Ada", Ttl::secs(60)).await?;
//! assert_eq!(cache.get_as::<String>("user:7:name").await?.as_deref(), Some("Ada"));
//! assert_eq!(cache.incr("visits", 1).await?, 1);
//! # Ok::<(), cache::Error>(())
//! # }).expect("example");
//! ```
//!
//! # A store from a URL
//!
//! [`open`] builds any store from a URL, so configuration, not code, picks it;
//! [`from_env`] reads the URL from `CACHE_URL`. `prefix` and `ttl` work on every scheme:
//!
//! | URL | store | its own query keys |
//! |---|---|---|
//! | `memory://` | `memory::MemoryCache`, fresh and private | `max_capacity`, `policy=s3fifo\|lru\|lfu\|fifo\|random` |
//! | `file:///abs/path` | `fs::FsCache` in that directory | `max_entries`, `max_bytes`, `durability=none\|sync_data\|sync_all`, `create=true` |
//! | `redis://[user:pass@]host:port/db` | `redis::RedisCache` on one node | `connect_timeout=2s`, `timeout=1s`, `clear_flushes_db=true` |
//! | `rediss://...` | `redis::RedisCache` over TLS (rustls) | as `redis://`, plus `tls_ca_file` |
//! | `redis+unix:///path/redis.sock` | `redis::RedisCache` over a Unix socket | `db`, and as `redis://` |
//! | `redis+cluster://[user:pass@]h1:p1,h2:p2` | `redis::RedisCache` on a Redis Cluster | as `redis://` |
//! | `memcache://h1:p1,h2:p2` | `memcached::MemcachedCache` on one server or a ring | `connect_timeout`, `timeout`, `pool_size`, `item_size`, `generation_refresh` |
//! | `dynamodb://[KEY_ID:SECRET@]TABLE` | `dynamo::DynamoCache` on that table | `region`, `endpoint`, `create_table=true`, `namespace`, `consistent_reads`, `connect_timeout`, `attempt_timeout`, `timeout`, `max_attempts`, `batch_deadline`, `max_value_len`, `key_attribute`, `value_attribute`, `expiry_attribute` |
//! | `mongodb://[user:pass@]h1:p1[,h2:p2]/db`, `mongodb+srv://...` | `mongo::MongoCache` in `db` (default `cache`) | `collection`, `connect_timeout`, `server_selection_timeout`, `timeout`, `max_pool_size`; passed to the driver: `authSource`, `authMechanism`, `replicaSet`, `tls`, `tlsCAFile`, `tlsCertificateKeyFile`, `directConnection`, `readPreference`, `appName` |
//!
//! Durations are humane (`500ms`, `2s`, `1m`); a password in the URL never appears in an
//! error or in `Debug` output. A scheme whose feature is off is an error naming the feature.
//! `docs/backends.md` has every store's options and capabilities.
//!
//! # Composition
//!
//! - [`Tiered`]: a near store (memory) in front of a far one (Redis, files), as one cache.
//! - [`Instrumented`]: hits, misses, sets, deletes, errors by kind and latency (p50/p99)
//!   per operation around any store; `tracing` spans with the `tracing` feature.
//! - [`CacheExt::get_or_refresh_with`]: refresh-ahead with stale-while-revalidate and
//!   XFetch ([`Refresh`]).
//! - [`memoize`]: `#[cache::memoize(store = .., ttl = "60s")]` on an async function, and
//!   [`Memoized`] for closures.
//!
//! # Feature flags
//!
//! | feature | store | default |
//! |---|---|---|
//! | `memory` | `memory::MemoryCache`: in process, sharded, bounded, per-entry TTL, eviction policies | yes |
//! | `fs` | `fs::FsCache`: a directory of atomic, checksummed files shared by many processes; streaming values | no |
//! | `redis` | `redis::RedisCache`: Redis single node or Cluster, one multiplexed connection, one round trip per bulk call | no |
//! | `memcached` | `memcached::MemcachedCache`: one memcached server or a ring, any key, a `clear` that stays in its prefix | no |
//! | `dynamo` | `dynamo::DynamoCache`: one DynamoDB table, native TTL, conditional `add`, atomic counters (needs rustc 1.88) | no |
//! | `mongo` | `mongo::MongoCache`: one MongoDB collection, a TTL index, atomic `add` and `$inc` counters | no |
//! | `registry` | `registry::Registry`: versioned cached files with status and typed, searchable attributes, in SQLite (not a `Cache`) | no |
//! | `tracing` | a `tracing` span around every operation of [`Instrumented`] | no |
//! | `cli` | the `cachectl` binary: store commands, `bench`, `registry`; turns on every store and `registry`, and only it pulls in the binary's dependencies (clap, indicatif, plotters, ...) | no |
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod instrumented;
pub mod memo;
mod open;
mod schemes;
mod tiered;

pub use crate::instrumented::{
    DEFAULT_SAMPLE_EVERY, Instrumented, Latency, Operation, OperationStats, Stats, StatsSnapshot,
};
pub use crate::memo::Memoized;
pub use crate::open::{CACHE_URL, COMMON_KEYS, OpenFuture, OpenOptions, StoreUrl, from_env, open, open_with};
pub use crate::tiered::{DEFAULT_NEAR_TTL_CAP, Tiered};

/// Memoizes an async function in any [`Cache`]: a call with arguments seen before (within
/// `ttl`) returns the stored result instead of running the function.
///
/// ```
/// use std::sync::{Arc, LazyLock};
/// use cache::{Cache, memory::MemoryCache};
///
/// static STORE: LazyLock<Arc<dyn Cache>> =
///     LazyLock::new(|| Arc::new(MemoryCache::builder().build().expect("a memory store")));
///
/// #[cache::memoize(store = STORE, ttl = "60s", version = 2)]
/// async fn price(item: String, quantity: u32) -> Result<u64, std::io::Error> {
///     Ok(u64::from(quantity) * 250) // an expensive lookup
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(async {
/// assert_eq!(price("tea".into(), 4).await?, 1000);
/// assert_eq!(price("tea".into(), 4).await?, 1000); // from the cache
/// # Ok::<(), std::io::Error>(())
/// # }).expect("example");
/// ```
///
/// - `store = <expr>` (required): an expression that dereferences to a [`Cache`],
///   evaluated on each call: a `static` `LazyLock<Arc<dyn Cache>>`, a function returning
///   `Arc<dyn Cache>`, ...
/// - `ttl = "60s"`: a humane duration, checked at compile time; without it the store's
///   default lifetime.
/// - `version = 1`: part of the key; bump it when the function's results change meaning.
/// - `cache_errors = false`: with `true`, `Err` results are stored too (`E` must be serde).
///
/// The key is `memo:<module path>::<name>:v<version>:<arguments as JSON>`, so every
/// argument must be `Serialize` and the result `Serialize + DeserializeOwned`. Concurrent
/// calls with equal arguments run the function once (single flight); errors are returned
/// to the caller that ran the function, not cached; a failing store never fails the call
/// (the function then runs uncached). See [`memo`] for the details and [`Memoized`] for
/// closures. Methods taking `self` and arguments that are patterns are compile errors.
#[doc(inline)]
pub use cache_macros::memoize;

#[doc(inline)]
pub use cache_core::{
    BoxError, Bytes, Cache, CacheExt, CacheStats, Capabilities, Codec, Error, ErrorKind, Json, MissSettled, Postcard,
    Refresh, Result, Ttl, Typed, async_trait,
};

/// The README's example, compiled and run as a doc test so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExample;

#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
#[doc(inline)]
pub use cache_memory as memory;

#[cfg(feature = "fs")]
#[cfg_attr(docsrs, doc(cfg(feature = "fs")))]
#[doc(inline)]
pub use cache_fs as fs;

#[cfg(feature = "registry")]
#[cfg_attr(docsrs, doc(cfg(feature = "registry")))]
#[doc(inline)]
pub use cache_registry as registry;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[doc(inline)]
pub use cache_redis as redis;

#[cfg(feature = "memcached")]
#[cfg_attr(docsrs, doc(cfg(feature = "memcached")))]
#[doc(inline)]
pub use cache_memcached as memcached;

#[cfg(feature = "dynamo")]
#[cfg_attr(docsrs, doc(cfg(feature = "dynamo")))]
#[doc(inline)]
pub use cache_dynamo as dynamo;

#[cfg(feature = "mongo")]
#[cfg_attr(docsrs, doc(cfg(feature = "mongo")))]
#[doc(inline)]
pub use cache_mongo as mongo;
