//! The one table of URL schemes [`open`](crate::open) knows, and the openers of the
//! stores in this crate.
//!
//! # Adding a store
//!
//! A store joins with one cargo feature, one re-export and one row here:
//!
//! 1. In `crates/cache/Cargo.toml`: `redis = ["dep:cache-redis"]` under `[features]`, and
//!    `cache-redis = { workspace = true, optional = true }` under `[dependencies]`.
//! 2. In `src/lib.rs`, beside the others:
//!    `#[cfg(feature = "redis")] #[cfg_attr(docsrs, doc(cfg(feature = "redis")))] #[doc(inline)] pub use cache_redis as redis;`
//! 3. Here: an opener, `#[cfg(feature = "redis")] async fn redis(mut url: StoreUrl) -> Result<Arc<dyn Cache>>`,
//!    that reads the row's query keys with [`StoreUrl::take`]/[`StoreUrl::take_parsed`],
//!    calls [`StoreUrl::finish`] (so no listed key goes unused), applies
//!    [`StoreUrl::prefix`] and [`StoreUrl::default_ttl`], and builds the store; then in
//!    the store's row replace `open: None` by `open: opener!("redis", redis)`.
//!
//! Every scheme already has its row, so with its feature off (or before it is wired)
//! `open` answers "the redis:// scheme needs the cargo feature "redis"", never
//! "unknown scheme". `prefix` and `ttl` are parsed for every row; `keys` lists only the
//! scheme's own query keys, and any other key is an error that lists the valid ones.

// Used by the openers of whichever features are on.
#[allow(unused_imports)]
use std::sync::Arc;

use crate::open::{OpenFuture, StoreUrl};
#[allow(unused_imports)]
use crate::{Cache, Result};

/// One URL scheme: its name, the cargo feature that brings its store, its own query
/// keys, and the function from a parsed URL to the store (`None` when the feature is off).
#[derive(Debug)]
pub(crate) struct Scheme {
    pub(crate) name: &'static str,
    pub(crate) feature: &'static str,
    pub(crate) keys: &'static [&'static str],
    pub(crate) open: Option<fn(StoreUrl) -> OpenFuture>,
}

/// `Some(opener)` when `$feature` is on, else `None`; the opener is not even compiled
/// without its feature.
macro_rules! opener {
    ($feature:literal, $function:ident) => {{
        #[cfg(feature = $feature)]
        const OPEN: Option<fn(StoreUrl) -> OpenFuture> = Some(|url| Box::pin($function(url)));
        #[cfg(not(feature = $feature))]
        const OPEN: Option<fn(StoreUrl) -> OpenFuture> = None;
        OPEN
    }};
}

/// Every scheme, in the order error messages list them.
pub(crate) static SCHEMES: &[Scheme] = &[
    Scheme { name: "memory", feature: "memory", keys: &["max_capacity", "policy"], open: opener!("memory", memory) },
    Scheme {
        name: "file",
        feature: "fs",
        keys: &["max_entries", "max_bytes", "durability", "create"],
        open: opener!("fs", file),
    },
    // The network stores are built on their own branches; each is wired as the module
    // docs say. Their keys are those the issue names, to be completed with their builders.
    Scheme { name: "redis", feature: "redis", keys: &[], open: None },
    Scheme { name: "rediss", feature: "redis", keys: &[], open: None },
    Scheme { name: "redis+unix", feature: "redis", keys: &["db"], open: None },
    Scheme { name: "redis+cluster", feature: "redis", keys: &[], open: None },
    Scheme { name: "memcache", feature: "memcached", keys: &[], open: None },
    Scheme { name: "dynamodb", feature: "dynamo", keys: &["region", "endpoint"], open: None },
    Scheme { name: "mongodb", feature: "mongo", keys: &["collection"], open: None },
    Scheme { name: "mongodb+srv", feature: "mongo", keys: &["collection"], open: None },
];

/// `memory://?max_capacity=10000&policy=s3fifo|lru|lfu|fifo|random`: a fresh, private
/// `MemoryCache` (two `open` calls are two stores).
#[cfg(feature = "memory")]
async fn memory(mut url: StoreUrl) -> Result<Arc<dyn Cache>> {
    use crate::memory::{EvictionPolicy, MemoryCache};

    if !url.url().username().is_empty() || url.url().password().is_some() {
        return Err(url.invalid("memory:// takes no user name or password"));
    }
    let has_path = !matches!(url.url().path(), "" | "/");
    let has_host = url.url().host_str().is_some_and(|host| !host.is_empty()) || !url.hosts().is_empty();
    if has_host || has_path || url.url().port().is_some() {
        return Err(url.invalid("memory:// takes no host, port or path: write memory:// or memory://?max_capacity=..."));
    }
    let mut builder = MemoryCache::builder().prefix(url.prefix());
    if let Some(capacity) = url.take_parsed::<u64>("max_capacity", "a positive integer")? {
        if capacity == 0 {
            return Err(url.bad_value("max_capacity", "0", "a positive integer"));
        }
        builder = builder.max_capacity(capacity);
    }
    if let Some(policy) = url.take("policy") {
        let policy = match &*policy {
            "s3fifo" => EvictionPolicy::S3Fifo,
            "lru" => EvictionPolicy::Lru,
            "lfu" => EvictionPolicy::Lfu,
            "fifo" => EvictionPolicy::Fifo,
            "random" => EvictionPolicy::Random,
            other => return Err(url.bad_value("policy", other, "one of s3fifo, lru, lfu, fifo, random")),
        };
        builder = builder.eviction_policy(policy);
    }
    if let Some(lifetime) = url.default_ttl() {
        builder = builder.time_to_live(lifetime);
    }
    url.finish()?;
    Ok(Arc::new(builder.build()?))
}

/// `file:///abs/path?max_entries=..&max_bytes=..&durability=none|sync_data|sync_all&create=true`:
/// an `FsCache` in that directory (which must exist unless `create=true`).
#[cfg(feature = "fs")]
async fn file(mut url: StoreUrl) -> Result<Arc<dyn Cache>> {
    use crate::fs::{Durability, FsCache};

    if !url.hosts().is_empty() {
        return Err(url.invalid("file:// URLs take one absolute path, not a host list"));
    }
    if let Some(host) = url.url().host_str().filter(|host| !host.is_empty() && *host != "localhost") {
        return Err(url.invalid(format!(
            "file:// URLs need an absolute path after three slashes, as in file:///var/cache/app; \
             {host:?} was read as a host"
        )));
    }
    let directory = url
        .url()
        .to_file_path()
        .map_err(|()| url.invalid("file:// URLs need an absolute path, as in file:///var/cache/app"))?;
    let mut builder = FsCache::builder(directory).prefix(url.prefix());
    if let Some(max_entries) = url.take_parsed::<u64>("max_entries", "a positive integer")? {
        builder = builder.max_entries(max_entries);
    }
    if let Some(max_bytes) = url.take_parsed::<u64>("max_bytes", "a positive number of bytes")? {
        builder = builder.max_bytes(max_bytes);
    }
    if let Some(durability) = url.take("durability") {
        let durability = match &*durability {
            "none" => Durability::None,
            "sync_data" => Durability::SyncData,
            "sync_all" => Durability::SyncAll,
            other => return Err(url.bad_value("durability", other, "one of none, sync_data, sync_all")),
        };
        builder = builder.durability(durability);
    }
    if let Some(create) = url.take_parsed::<bool>("create", "true or false")? {
        builder = builder.create_directory(create);
    }
    if let Some(lifetime) = url.default_ttl() {
        builder = builder.default_ttl(lifetime);
    }
    url.finish()?;
    Ok(Arc::new(builder.build().await?))
}
