//! `MemoryCache`: shared sharded storage behind cheap handles, its synchronous API, and
//! the `Cache` impl on top of it.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_core::{
    Cache, Capabilities, Error, ErrorKind, MissSettled, ReadCounters, Result, Ttl, async_trait, format_integer,
    parse_integer,
};
use hashbrown::DefaultHashBuilder;
use parking_lot::RwLock;

use crate::builder::{Listener, Weigher};
use crate::clock::Clock;
use crate::shard::{NewEntry, Removed, ShardState};
use crate::slab::Key;

use crate::{CacheStats, EvictionPolicy, MemoryCacheBuilder};

const BACKEND: &str = "memory";

/// Keys are hashed in chunks of this many bytes, so `prefix + key` hashes the same as
/// the stored key without building it (see [`Storage::hash`]).
const HASH_CHUNK: usize = 64;

/// A shard on its own cache lines, so locking one does not slow its neighbours.
#[repr(align(128))]
struct Shard(RwLock<ShardState>);

/// The storage every handle made by [`MemoryCache::with_prefix`] and `clone` shares.
struct Storage {
    shards: Box<[Shard]>,
    shard_mask: usize,
    hasher: DefaultHashBuilder,
    clock: Clock,
    time_to_live: Option<Duration>,
    policy: EvictionPolicy,
    max_capacity: u64,
    weigher: Option<Weigher>,
    listener: Option<Listener>,
    reads: ReadCounters,
}

/// A concurrent, bounded, in-process cache with per-entry lifetimes.
///
/// Cloning is cheap and gives another handle to the same storage;
/// [`with_prefix`](Self::with_prefix) gives a handle to the same storage under another
/// namespace. Implements the async [`Cache`] contract; in-process callers that do not
/// want a future per call use the same operations synchronously through
/// [`sync()`](Self::sync).
///
/// # How it works
///
/// The storage is split into shards by key hash, each behind its own read-write lock.
/// A hit takes the shared lock and, for S3-FIFO, LFU, FIFO and Random, touches only an
/// atomic counter, so reads of one shard run in parallel and allocate nothing; LRU
/// reorders a list on every hit and so takes the exclusive lock. Writes take the shard's
/// exclusive lock, remove expired entries first, and evict by the
/// [`EvictionPolicy`] until the new entry fits.
///
/// The capacity is divided evenly between the shards, so no more than `max_capacity`
/// entries (or weight) are ever held, and one entry may weigh at most
/// [`max_entry_weight`](Self::max_entry_weight).
///
/// ```
/// use std::sync::Arc;
/// use cache_core::{Cache, CacheExt, Ttl};
/// use cache_memory::MemoryCache;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cache_core::Result<()> {
/// let cache = MemoryCache::new(10_000)?;
/// let shared: Arc<dyn Cache> = Arc::new(cache.clone());
/// shared.set_as("config", &vec!["a", "b"], Ttl::Never).await?;
/// // A clone is another handle to the same storage.
/// assert_eq!(cache.get_as::<Vec<String>>("config").await?, Some(vec!["a".into(), "b".into()]));
/// assert_eq!(cache.len(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryCache {
    storage: Arc<Storage>,
    prefix: Arc<str>,
}

impl fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCache")
            .field("prefix", &self.prefix)
            .field("max_capacity", &self.storage.max_capacity)
            .field("time_to_live", &self.storage.time_to_live)
            .field("policy", &self.storage.policy)
            .field("shards", &self.storage.shards.len())
            .field("weigher", &self.storage.weigher.is_some())
            .field("listener", &self.storage.listener.is_some())
            .finish()
    }
}

/// How many shards a store of `max_capacity` gets: enough that cores rarely meet on one
/// lock, few enough that each shard's policy sees a meaningful slice of the keys.
fn shard_count(max_capacity: u64, weighted: bool) -> usize {
    let cores = std::thread::available_parallelism().map_or(4, std::num::NonZero::get);
    let most = (cores * 16).next_power_of_two().min(1024);
    // Weighted entries can be large; fewer, bigger shards keep the largest entry that
    // fits (`max_entry_weight`) a useful size.
    let (most, least_per_shard) = if weighted { ((most / 4).max(1), 1 << 16) } else { (most, 512) };
    let mut shards = most;
    while shards > 1 && max_capacity / (shards as u64) < least_per_shard {
        shards /= 2;
    }
    shards
}

/// The shard count a caller asked for ([`MemoryCacheBuilder::shards`]): a power of two
/// (the shard is picked with a mask), at most 1024, and no more shards than capacity units.
fn chosen_shard_count(asked: usize, max_capacity: u64) -> usize {
    let mut shards = asked.clamp(1, 1024).next_power_of_two();
    while shards > 1 && max_capacity < shards as u64 {
        shards /= 2;
    }
    shards
}

impl MemoryCache {
    /// A cache of at most `max_capacity` entries with the default policy and no default
    /// lifetime; shorthand for `MemoryCache::builder().max_capacity(max_capacity).build()`.
    ///
    /// ```
    /// use cache_memory::MemoryCache;
    ///
    /// let cache = MemoryCache::new(10_000)?;
    /// cache.sync().set("k", "v".into(), cache_core::Ttl::Never)?;
    /// assert_eq!(cache.sync().get("k").as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), cache_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`] when `max_capacity` is 0.
    pub fn new(max_capacity: u64) -> Result<MemoryCache> {
        MemoryCache::builder().max_capacity(max_capacity).build()
    }

    /// A builder; see [`MemoryCacheBuilder`].
    pub fn builder() -> MemoryCacheBuilder {
        MemoryCacheBuilder::new()
    }

    pub(crate) fn from_builder(builder: MemoryCacheBuilder) -> MemoryCache {
        let count = match builder.shards {
            Some(asked) => chosen_shard_count(asked, builder.max_capacity),
            None => shard_count(builder.max_capacity, builder.weigher.is_some()),
        };
        let hasher = DefaultHashBuilder::default();
        let shards = (0..count)
            .map(|index| {
                let base = builder.max_capacity / count as u64;
                let extra = u64::from((index as u64) < builder.max_capacity % count as u64);
                let seed = hasher.hash_one(index);
                Shard(RwLock::new(ShardState::new(builder.policy, base + extra, seed)))
            })
            .collect();
        let storage = Storage {
            shards,
            shard_mask: count - 1,
            hasher,
            clock: Clock::new(),
            time_to_live: builder.time_to_live,
            policy: builder.policy,
            max_capacity: builder.max_capacity,
            weigher: builder.weigher,
            listener: builder.listener,
            reads: ReadCounters::new(),
        };
        MemoryCache { storage: Arc::new(storage), prefix: builder.prefix.into() }
    }

    /// A handle to the same storage whose keys live under `prefix` instead (`""` = no
    /// prefix). The stored key is `prefix + key`; `clear` through a prefixed handle removes
    /// only keys that start with its prefix, and without a prefix everything.
    ///
    /// ```
    /// use cache_core::Ttl;
    /// use cache_memory::MemoryCache;
    ///
    /// # fn main() -> cache_core::Result<()> {
    /// let root = MemoryCache::new(1_000)?;
    /// let users = root.with_prefix("users:");
    /// users.sync().set("7", "Ada".into(), Ttl::Never)?;
    /// assert_eq!(root.sync().get("users:7").as_deref(), Some(&b"Ada"[..]), "the full key is prefix + key");
    /// users.sync().clear();
    /// assert!(root.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_prefix(&self, prefix: impl Into<String>) -> MemoryCache {
        MemoryCache { storage: Arc::clone(&self.storage), prefix: prefix.into().into() }
    }

    /// This handle's prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The synchronous API: the same operations as [`Cache`], without futures.
    ///
    /// A view rather than methods on `MemoryCache` itself, so that with [`Cache`] in scope
    /// `cache.get(key).await` always means the trait method.
    ///
    /// ```
    /// use cache_core::Ttl;
    /// use cache_memory::MemoryCache;
    ///
    /// # fn main() -> Result<(), cache_core::Error> {
    /// let cache = MemoryCache::builder().max_capacity(1_000).build()?;
    /// let direct = cache.sync();
    /// direct.set("answer", "42".into(), Ttl::Never)?;
    /// assert_eq!(direct.incr("answer", 1)?, 43);
    /// assert_eq!(direct.get("answer").as_deref(), Some(&b"43"[..]));
    /// # Ok(())
    /// # }
    /// ```
    pub fn sync(&self) -> SyncCache<'_> {
        SyncCache { cache: self }
    }

    /// How many entries the storage holds, under every prefix, including expired entries
    /// not yet removed. Takes each shard's lock in turn.
    pub fn len(&self) -> usize {
        self.storage.shards.iter().map(|shard| shard.0.read().len()).sum()
    }

    /// Whether the storage holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The summed weight of the stored entries (their count without a weigher).
    pub fn weighted_size(&self) -> u64 {
        self.storage.shards.iter().map(|shard| shard.0.read().weight()).sum()
    }

    /// The configured bound on [`weighted_size`](Self::weighted_size).
    pub fn max_capacity(&self) -> u64 {
        self.storage.max_capacity
    }

    /// The heaviest entry the cache accepts: the capacity of its smallest shard. A heavier
    /// `set` fails with [`ErrorKind::ValueTooLarge`].
    pub fn max_entry_weight(&self) -> u64 {
        self.storage.shards.iter().map(|shard| shard.0.read().capacity()).min().unwrap_or(0)
    }

    /// How many shards the storage is split into (see [`MemoryCacheBuilder::shards`]).
    pub fn shard_count(&self) -> usize {
        self.storage.shards.len()
    }

    /// The eviction policy the storage was built with.
    pub fn eviction_policy(&self) -> EvictionPolicy {
        self.storage.policy
    }

    /// Hits, misses, coalesced get-or-compute requests, inserts, evictions and
    /// expirations so far, over every handle to this storage; the same as
    /// [`Cache::stats`], without the `Option`. Counted per shard and per thread without
    /// locks, so a snapshot taken while others write is close but not exact.
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
    pub fn stats(&self) -> CacheStats {
        let mut stats = self.storage.reads.stats();
        for shard in &*self.storage.shards {
            let counters = shard.0.read().counters;
            stats.inserts += counters.inserts;
            stats.evictions += counters.evictions;
            stats.expirations += counters.expirations;
        }
        stats
    }

    /// Removes every expired entry now, rather than when writes come across them, and
    /// tells the eviction listener.
    pub fn purge_expired(&self) {
        for shard in &*self.storage.shards {
            let mut removed = self.storage.removed();
            shard.0.write().purge_expired(&mut self.storage.clock.now(), &mut removed);
            self.storage.notify(removed);
        }
    }
}

#[cfg(test)]
impl MemoryCache {
    /// Panics unless every shard is internally consistent.
    pub(crate) fn check_invariants(&self) {
        for shard in &*self.storage.shards {
            shard.0.read().check_invariants();
        }
    }
}

impl Storage {
    /// Hashes `prefix + key` without building it: the bytes go to the hasher in chunks
    /// of [`HASH_CHUNK`], whatever the split, so the stored key hashes the same.
    #[inline(always)]
    fn hash(&self, prefix: &str, key: &str) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        if prefix.is_empty() && key.len() <= HASH_CHUNK {
            // Most keys: one chunk, without the chunking loop.
            hasher.write(key.as_bytes());
        } else if prefix.is_empty() {
            for chunk in key.as_bytes().chunks(HASH_CHUNK) {
                hasher.write(chunk);
            }
        } else {
            let mut buffer = [0u8; HASH_CHUNK];
            let mut filled = 0;
            for part in [prefix, key] {
                let mut bytes = part.as_bytes();
                while !bytes.is_empty() {
                    let take = (HASH_CHUNK - filled).min(bytes.len());
                    buffer[filled..filled + take].copy_from_slice(&bytes[..take]);
                    filled += take;
                    bytes = &bytes[take..];
                    if filled == HASH_CHUNK {
                        hasher.write(&buffer);
                        filled = 0;
                    }
                }
            }
            if filled > 0 {
                hasher.write(&buffer[..filled]);
            }
        }
        hasher.finish()
    }

    #[inline]
    fn shard(&self, hash: u64) -> &RwLock<ShardState> {
        // The table uses the low bits and the top seven; the middle picks the shard.
        &self.shards[(hash >> 32) as usize & self.shard_mask].0
    }

    fn weigh(&self, key: &Key, value: &Bytes) -> u32 {
        self.weigher.as_ref().map_or(1, |weigher| weigher(key.as_str(), value).max(1))
    }

    fn removed(&self) -> Removed {
        Removed { keep: self.listener.is_some(), entries: Vec::new() }
    }

    #[inline]
    fn notify(&self, removed: Removed) {
        // Nothing is collected without a listener: skip the loop and the drop glue.
        if removed.entries.is_empty() {
            return;
        }
        if let Some(listener) = &self.listener {
            for (key, value, cause) in removed.entries {
                listener(key.as_str(), value, cause);
            }
        }
    }

    fn too_heavy(&self, operation: &'static str, key: &str, weight: u32, hash: u64) -> Error {
        let limit = self.shard(hash).read().capacity();
        Error::new(ErrorKind::ValueTooLarge, BACKEND, operation)
            .with_key(key)
            .with_context(format!("the entry weighs {weight}, a shard holds at most {limit}"))
    }
}

/// The synchronous API of a [`MemoryCache`], from [`MemoryCache::sync`]: the [`Cache`]
/// operations without futures, for in-process callers. The `Cache` impl calls these.
///
/// ```
/// use cache_core::Ttl;
/// use cache_memory::MemoryCache;
///
/// # fn main() -> cache_core::Result<()> {
/// let cache = MemoryCache::new(1_000)?;
/// let direct = cache.sync();
/// assert!(direct.add("lock", "owner-1".into(), Ttl::secs(30))?);
/// assert!(!direct.add("lock", "owner-2".into(), Ttl::secs(30))?);
/// assert!(direct.contains("lock"));
/// assert!(direct.delete("lock"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SyncCache<'a> {
    cache: &'a MemoryCache,
}

impl SyncCache<'_> {
    /// The value under `key`, or `None` if it is missing or expired.
    #[inline]
    pub fn get(&self, key: &str) -> Option<Bytes> {
        let storage = &*self.cache.storage;
        let hash = storage.hash(&self.cache.prefix, key);
        let value = self.read(hash, key);
        storage.reads.record(value.is_some());
        value
    }

    /// The live value under `key` whose hash is `hash`, recording the use with the
    /// policy; counts nothing.
    #[inline]
    fn read(&self, hash: u64, key: &str) -> Option<Bytes> {
        let storage = &*self.cache.storage;
        let prefix = &*self.cache.prefix;
        let shard = storage.shard(hash);
        let mut now = storage.clock.now();
        if storage.policy.hit_needs_exclusive() {
            let mut state = shard.write();
            state.find_live(hash, prefix, key, &mut now).map(|index| {
                state.touch(index);
                state.entry(index).value.clone()
            })
        } else {
            let state = shard.read();
            state.find_live(hash, prefix, key, &mut now).map(|index| {
                let entry = state.entry(index);
                storage.policy.on_shared_hit(entry);
                entry.value.clone()
            })
        }
    }

    /// The value under `key`; on a miss, `make`'s value, stored for `ttl` and returned.
    /// The key is hashed once for both halves, and `make` runs with no lock held (it may
    /// use the cache). Counts one read, a hit or a miss, like [`get`](Self::get).
    ///
    /// Not single-flight: concurrent misses of one key each call `make`, and the first
    /// to store wins; a later one gets the stored value and its own is dropped. For
    /// loads that must run once, use `CacheExt::get_or_insert_with` from cache-core.
    ///
    /// ```
    /// use cache_core::Ttl;
    /// use cache_memory::MemoryCache;
    ///
    /// # fn main() -> cache_core::Result<()> {
    /// let cache = MemoryCache::new(1_000)?;
    /// let loaded = cache.sync().get_or_insert_with("k", Ttl::Never, || "v".into())?;
    /// assert_eq!(&loaded[..], b"v");
    /// let again = cache.sync().get_or_insert_with("k", Ttl::Never, || unreachable!("cached"))?;
    /// assert_eq!(again, loaded);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::ValueTooLarge`] as for [`set`](Self::set): the value is then not
    /// stored, and not returned either.
    pub fn get_or_insert_with(&self, key: &str, ttl: Ttl, make: impl FnOnce() -> Bytes) -> Result<Bytes> {
        let storage = &*self.cache.storage;
        let prefix = &*self.cache.prefix;
        let hash = storage.hash(prefix, key);
        if let Some(value) = self.read(hash, key) {
            storage.reads.hit();
            return Ok(value);
        }
        storage.reads.miss();
        let value = make();
        let stored_key = Key::new(prefix, key);
        let weight = storage.weigh(&stored_key, &value);
        let deadline = storage.clock.deadline(ttl, storage.time_to_live);
        let mut removed = storage.removed();
        let outcome = {
            let mut state = storage.shard(hash).write();
            let mut now = storage.clock.now();
            match state.prepare_write(hash, prefix, key, &mut now, &mut removed) {
                // Another caller stored it since the read: theirs is the cached value.
                Some(index) => {
                    if storage.policy.hit_needs_exclusive() {
                        state.touch(index);
                    } else {
                        storage.policy.on_shared_hit(state.entry(index));
                    }
                    Ok(state.entry(index).value.clone())
                }
                None => {
                    let new = NewEntry { key: Some(stored_key), hash, value: value.clone(), deadline, weight };
                    if state.insert_at(new, None, &mut removed) { Ok(value) } else { Err(weight) }
                }
            }
        };
        storage.notify(removed);
        outcome.map_err(|weight| storage.too_heavy("get_or_insert_with", key, weight, hash))
    }

    /// Whether `key` has a live entry; counts as a read like [`get`](Self::get).
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Stores `value` under `key` for `ttl`, replacing any entry and its lifetime.
    ///
    /// # Errors
    /// [`ErrorKind::ValueTooLarge`] when the entry weighs more than
    /// [`MemoryCache::max_entry_weight`]; the previous value is then left as it was.
    pub fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()> {
        self.write(key, value, ttl, false, "set").map(drop)
    }

    /// Stores `value` only if `key` has no live entry; returns whether it did. Atomic: of
    /// many concurrent `add`s of one key, exactly one wins.
    ///
    /// # Errors
    /// [`ErrorKind::ValueTooLarge`] as for [`set`](Self::set).
    pub fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
        self.write(key, value, ttl, true, "add")
    }

    fn write(&self, key: &str, value: Bytes, ttl: Ttl, only_if_absent: bool, operation: &'static str) -> Result<bool> {
        let storage = &*self.cache.storage;
        let prefix = &*self.cache.prefix;
        let hash = storage.hash(prefix, key);
        // The weigher sees the stored key; without one, the key is built only if the
        // entry is new (an overwrite keeps the stored one).
        let stored_key = storage.weigher.is_some().then(|| Key::new(prefix, key));
        let weight = stored_key.as_ref().map_or(1, |stored| storage.weigh(stored, &value));
        let deadline = storage.clock.deadline(ttl, storage.time_to_live);
        let mut removed = storage.removed();
        let written = {
            let mut state = storage.shard(hash).write();
            let mut now = storage.clock.now();
            let existing = state.prepare_write(hash, prefix, key, &mut now, &mut removed);
            if only_if_absent && existing.is_some() {
                drop(state);
                storage.notify(removed);
                return Ok(false);
            }
            let stored_key = stored_key.or_else(|| existing.is_none().then(|| Key::new(prefix, key)));
            state.insert_at(NewEntry { key: stored_key, hash, value, deadline, weight }, existing, &mut removed)
        };
        storage.notify(removed);
        if written { Ok(true) } else { Err(storage.too_heavy(operation, key, weight, hash)) }
    }

    /// Removes `key`; returns whether a live entry was removed.
    pub fn delete(&self, key: &str) -> bool {
        let storage = &*self.cache.storage;
        let prefix = &*self.cache.prefix;
        let hash = storage.hash(prefix, key);
        let mut now = storage.clock.now();
        storage.shard(hash).write().remove(hash, prefix, key, &mut now)
    }

    /// Atomically adds `delta` to the integer under `key` and returns the result. A
    /// missing key counts as 0 and is created with [`Ttl::Default`]; an existing entry
    /// keeps its deadline.
    ///
    /// # Errors
    /// [`ErrorKind::NotAnInteger`] when the value is not decimal ASCII of an `i64`,
    /// [`ErrorKind::IntegerOverflow`] when the result does not fit, and
    /// [`ErrorKind::ValueTooLarge`] when a weigher makes the new value too heavy; the
    /// stored value is then unchanged.
    pub fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        let storage = &*self.cache.storage;
        let prefix = &*self.cache.prefix;
        let hash = storage.hash(prefix, key);
        let mut removed = storage.removed();
        let outcome = {
            let mut state = storage.shard(hash).write();
            let mut now = storage.clock.now();
            match state.find_live(hash, prefix, key, &mut now) {
                Some(index) => {
                    let entry = state.entry(index);
                    let current = parse_integer(&entry.value)
                        .ok_or_else(|| Error::new(ErrorKind::NotAnInteger, BACKEND, "incr").with_key(key))?;
                    let next = current.checked_add(delta).ok_or_else(|| {
                        Error::new(ErrorKind::IntegerOverflow, BACKEND, "incr")
                            .with_key(key)
                            .with_context(format!("{current} + {delta} does not fit an i64"))
                    })?;
                    let value = format_integer(next);
                    let weight = storage.weigh(&entry.key, &value);
                    (state.replace_value(index, value, weight, &mut now, &mut removed), next, weight)
                }
                None => {
                    let stored_key = Key::new(prefix, key);
                    let value = format_integer(delta);
                    let weight = storage.weigh(&stored_key, &value);
                    let deadline = storage.clock.deadline(Ttl::Default, storage.time_to_live);
                    let new = NewEntry { key: Some(stored_key), hash, value, deadline, weight };
                    (state.insert(new, &mut now, &mut removed), delta, weight)
                }
            }
        };
        storage.notify(removed);
        match outcome {
            (true, next, _) => Ok(next),
            (false, _, weight) => Err(storage.too_heavy("incr", key, weight, hash)),
        }
    }

    /// Removes every entry under this handle's prefix; without a prefix, every entry.
    pub fn clear(&self) {
        for shard in &*self.cache.storage.shards {
            shard.0.write().clear(&self.cache.prefix);
        }
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.sync().get(key))
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()> {
        self.sync().set(key, value, ttl)
    }

    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
        self.sync().add(key, value, ttl)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        Ok(self.sync().delete(key))
    }

    async fn has(&self, key: &str) -> Result<bool> {
        Ok(self.sync().contains(key))
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        self.sync().incr(key, delta)
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let direct = self.sync();
        Ok(keys.iter().map(|key| direct.get(key)).collect())
    }

    async fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
        let direct = self.sync();
        entries.iter().try_for_each(|(key, value)| direct.set(key, value.clone(), ttl))
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        let direct = self.sync();
        Ok(keys.iter().filter(|key| direct.delete(key)).count())
    }

    async fn clear(&self) -> Result<()> {
        self.sync().clear();
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Every handle on one storage with one prefix joins the same loads.
    fn single_flight_scope(&self) -> (usize, &str) {
        (Arc::as_ptr(&self.storage).cast::<()>() as usize, &self.prefix)
    }

    fn stats(&self) -> Option<CacheStats> {
        Some(MemoryCache::stats(self))
    }

    fn settle_miss(&self, settled: MissSettled) {
        self.storage.reads.settle(settled);
    }
}
