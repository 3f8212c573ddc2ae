//! Configuring a [`MemoryCache`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_core::{Error, ErrorKind};

use crate::{EvictionPolicy, MemoryCache, RemovalCause};

/// How much an entry counts against `max_capacity`, given its stored key (prefix
/// included) and value.
pub(crate) type Weigher = Arc<dyn Fn(&str, &Bytes) -> u32 + Send + Sync>;
/// Told about every entry that leaves because the cache was full or it expired.
pub(crate) type Listener = Arc<dyn Fn(&str, Bytes, RemovalCause) + Send + Sync>;

/// The capacity a builder starts with: bounded, because an in-process cache without a
/// bound is a memory leak waiting for a large keyspace.
///
/// ```
/// let cache = cache_memory::MemoryCache::builder().build()?;
/// assert_eq!(cache.max_capacity(), cache_memory::DEFAULT_MAX_CAPACITY);
/// # Ok::<(), cache_core::Error>(())
/// ```
pub const DEFAULT_MAX_CAPACITY: u64 = 10_000;

/// Settings for a [`MemoryCache`]; from [`MemoryCache::builder`].
///
/// ```
/// use std::time::Duration;
/// use cache_memory::{EvictionPolicy, MemoryCache};
///
/// # fn main() -> Result<(), cache_core::Error> {
/// let cache = MemoryCache::builder()
///     .max_capacity(64 * 1024 * 1024)
///     .weigher(|key, value| u32::try_from(key.len() + value.len()).unwrap_or(u32::MAX))
///     .time_to_live(Duration::from_secs(300))
///     .eviction_policy(EvictionPolicy::S3Fifo)
///     .prefix("sessions:")
///     .build()?;
/// assert!(cache.is_empty());
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until `build()`"]
#[derive(Clone)]
pub struct MemoryCacheBuilder {
    pub(crate) max_capacity: u64,
    pub(crate) time_to_live: Option<Duration>,
    pub(crate) policy: EvictionPolicy,
    pub(crate) prefix: String,
    pub(crate) weigher: Option<Weigher>,
    pub(crate) listener: Option<Listener>,
    pub(crate) shards: Option<usize>,
}

impl Default for MemoryCacheBuilder {
    fn default() -> Self {
        MemoryCacheBuilder {
            max_capacity: DEFAULT_MAX_CAPACITY,
            time_to_live: None,
            policy: EvictionPolicy::default(),
            prefix: String::new(),
            weigher: None,
            listener: None,
            shards: None,
        }
    }
}

impl fmt::Debug for MemoryCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCacheBuilder")
            .field("max_capacity", &self.max_capacity)
            .field("time_to_live", &self.time_to_live)
            .field("policy", &self.policy)
            .field("prefix", &self.prefix)
            .field("weigher", &self.weigher.is_some())
            .field("listener", &self.listener.is_some())
            .field("shards", &self.shards)
            .finish()
    }
}

impl MemoryCacheBuilder {
    /// A builder with the defaults: [`DEFAULT_MAX_CAPACITY`] entries, no default
    /// lifetime, [`EvictionPolicy::default()`], no prefix.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most the cache holds: a number of entries, or with a [`weigher`](Self::weigher)
    /// the most their weights may add up to. Must be at least 1.
    pub fn max_capacity(mut self, max_capacity: u64) -> Self {
        self.max_capacity = max_capacity;
        self
    }

    /// The lifetime of entries written with [`Ttl::Default`](cache_core::Ttl::Default);
    /// without it they never expire. Must not be zero.
    pub fn time_to_live(mut self, time_to_live: Duration) -> Self {
        self.time_to_live = Some(time_to_live);
        self
    }

    /// Which entry leaves when the cache is full.
    pub fn eviction_policy(mut self, policy: EvictionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Puts every key of the built handle under `prefix` (a namespace); see
    /// [`MemoryCache::with_prefix`].
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Bounds the cache by weight instead of entry count: `max_capacity` becomes the most
    /// the weights may add up to, for example bytes with
    /// `|key, value| (key.len() + value.len()) as u32`.
    ///
    /// The weigher sees the stored key (prefix included). A weight of 0 counts as 1, so
    /// the number of entries stays bounded too. It runs while an `incr` holds a shard
    /// lock, so it must be quick and must not use the cache.
    pub fn weigher(mut self, weigher: impl Fn(&str, &Bytes) -> u32 + Send + Sync + 'static) -> Self {
        self.weigher = Some(Arc::new(weigher));
        self
    }

    /// Calls `listener` with the stored key, the value and the cause whenever an entry
    /// leaves because the cache was full or because it expired (not on `delete`, `clear`
    /// or overwrite, which the caller asked for).
    ///
    /// It runs on the thread whose write caused the removal, after the shard lock is
    /// released, so it may use the cache; it should be quick, since that write waits for it.
    pub fn eviction_listener(mut self, listener: impl Fn(&str, Bytes, RemovalCause) + Send + Sync + 'static) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// How many shards (each with its own lock and policy) the storage is split into,
    /// instead of the default of 16 per core. Rounded up to a power of two, at most 1024,
    /// and halved while a shard would hold less than one entry's worth of capacity.
    ///
    /// Fewer shards let each shard's policy see more of the keys and make
    /// [`max_entry_weight`](MemoryCache::max_entry_weight) larger; more shards let more
    /// cores write at once. Mostly useful to compare with another cache on equal terms.
    ///
    /// ```
    /// let cache = cache_memory::MemoryCache::builder().max_capacity(100_000).shards(6).build()?;
    /// assert_eq!(cache.shard_count(), 8);
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Builds the cache.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`] when `max_capacity` is 0 or `time_to_live` is zero.
    pub fn build(self) -> Result<MemoryCache, Error> {
        if self.max_capacity == 0 {
            return Err(invalid("max_capacity must be at least 1"));
        }
        if self.time_to_live == Some(Duration::ZERO) {
            return Err(invalid("time_to_live must not be zero; leave it unset for entries that never expire"));
        }
        Ok(MemoryCache::from_builder(self))
    }
}

fn invalid(why: &'static str) -> Error {
    Error::new(ErrorKind::InvalidConfig, "memory", "build").with_context(why)
}
