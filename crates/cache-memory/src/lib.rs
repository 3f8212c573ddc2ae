//! `MemoryCache`: a concurrent, bounded, in-process store for the
//! [`cache_core::Cache`] contract.
//!
//! - Sharded by key hash, each shard behind its own read-write lock; a hit takes the
//!   shared lock and allocates nothing (except under [`EvictionPolicy::Lru`], whose
//!   hits reorder a list under the exclusive lock).
//! - Bounded: never more than `max_capacity` entries, or with a
//!   [`weigher`](MemoryCacheBuilder::weigher) never more than that much weight.
//! - Per-entry lifetimes through [`Ttl`](cache_core::Ttl); expired entries are never
//!   returned, and leave before any live entry is evicted.
//! - A choice of [`EvictionPolicy`]: S3-FIFO (the default), LRU, LFU, FIFO, random.
//! - [`CacheStats`] and an optional
//!   [eviction listener](MemoryCacheBuilder::eviction_listener).
//! - Namespaces: [`MemoryCache::with_prefix`] gives a handle on the same storage whose
//!   keys live under a prefix.
//!
//! Through the async [`Cache`](cache_core::Cache) trait it is interchangeable with every
//! other store; in-process callers can skip the futures with
//! [`MemoryCache::sync`].
//!
//! ```
//! use std::time::Duration;
//! use cache_core::{Cache, Ttl};
//! use cache_memory::MemoryCache;
//!
//! # async fn demo() -> Result<(), cache_core::Error> {
//! let cache = MemoryCache::builder()
//!     .max_capacity(10_000)
//!     .time_to_live(Duration::from_secs(60))
//!     .build()?;
//! cache.set("user:1", "Ada".into(), Ttl::Default).await?;
//! assert_eq!(cache.get("user:1").await?.as_deref(), Some(&b"Ada"[..]));
//!
//! // The same storage without futures.
//! assert_eq!(cache.sync().incr("visits", 1)?, 1);
//! # Ok(())
//! # }
//! # fn main() {
//! #     let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
//! #     runtime.block_on(demo()).expect("demo");
//! # }
//! ```
#![doc(test(attr(deny(warnings))))]
#![deny(rustdoc::broken_intra_doc_links)]

mod builder;
mod clock;
mod policy;
mod shard;
mod slab;
mod store;
#[cfg(test)]
mod tests;

pub use crate::builder::{DEFAULT_MAX_CAPACITY, MemoryCacheBuilder};
pub use crate::policy::EvictionPolicy;
pub use crate::store::{MemoryCache, SyncCache};
/// The counters [`MemoryCache::stats`] reports, the same for every store that counts.
pub use cache_core::CacheStats;

/// Why an entry left without being asked to, as told to the
/// [eviction listener](MemoryCacheBuilder::eviction_listener).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use cache_core::Ttl;
/// use cache_memory::{MemoryCache, RemovalCause};
///
/// # fn main() -> cache_core::Result<()> {
/// let evicted = Arc::new(Mutex::new(Vec::new()));
/// let seen = Arc::clone(&evicted);
/// let cache = MemoryCache::builder()
///     .max_capacity(1)
///     .eviction_listener(move |key, _value, cause| seen.lock().unwrap().push((key.to_owned(), cause)))
///     .build()?;
/// cache.sync().set("first", "1".into(), Ttl::Never)?;
/// cache.sync().set("second", "2".into(), Ttl::Never)?;
/// assert_eq!(*evicted.lock().unwrap(), [("first".to_owned(), RemovalCause::Capacity)]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// The cache was full and the policy chose this entry.
    Capacity,
    /// Its lifetime ended.
    Expired,
}
