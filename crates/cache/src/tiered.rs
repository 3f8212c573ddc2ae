//! Two stores as one: a fast near store (memory) in front of a far one (Redis, files).

use std::time::Duration;

use cache_core::{Bytes, Cache, CacheStats, Capabilities, Error, ErrorKind, MissSettled, Result, Ttl, async_trait};

/// How long a near copy lives at most unless [`Tiered::near_ttl_cap`] says otherwise.
pub const DEFAULT_NEAR_TTL_CAP: Duration = Duration::from_secs(30);

/// A near store (usually in memory) in front of a far one (Redis, files, ...), as one
/// [`Cache`].
///
/// - **Reads** try near, then far; a far hit is copied into near for the near TTL cap
///   (the contract gives no way to ask a store how long an entry has left, so the cap
///   is the bound; see below). `get_many` asks far once for all near misses.
/// - **Writes and deletes** (`set`, `set_many`, `delete`, `delete_many`) go to far, then
///   near. The near copy lives as long as asked, but never longer than the cap:
///   `Ttl::After(d)` becomes `min(d, cap)`, `Ttl::Never` and `Ttl::Default` become the
///   cap (set the cap no longer than the far store's default lifetime if you use
///   `Ttl::Default`). If far fails, near is not touched; if near fails after far
///   succeeded, the near copy is dropped and the call succeeds.
/// - **`incr` and `add`** go to far, which alone makes them atomic, and drop the near
///   copy, so the next read fetches the far result.
/// - **`clear`** clears far, then near; with either unable to clear, it is
///   [`ErrorKind::Unsupported`] and removes nothing.
///
/// # What another process sees
///
/// Far is the truth. A second process (or a second `Tiered` with its own near store)
/// sees every write as soon as far has it, but its own near copies are not told: after
/// another process changes or deletes a key, a near copy read before the change can be
/// served for at most the near TTL cap. Choose the cap as the staleness you accept. Within
/// one near store (every handle sharing it) reads are never stale.
///
/// # Capabilities
///
/// Far's, except: `clear` only if both can; `ttl_resolution` the coarser of the two;
/// `literal_prefix` only if both have it. Values larger than the near store accepts
/// are still stored in far and simply not copied near.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(async {
/// use std::time::Duration;
/// use cache::{Cache, Tiered, Ttl, memory::MemoryCache};
///
/// let near = MemoryCache::builder().max_capacity(1_000).build()?;
/// let far = MemoryCache::builder().max_capacity(100_000).build()?; // Redis, files, ...
/// let cache = Tiered::new(near, far).near_ttl_cap(Duration::from_secs(5));
/// cache.set("user:7", "Ada".into(), Ttl::secs(60)).await?;
/// assert_eq!(cache.get("user:7").await?.as_deref(), Some(&b"Ada"[..]));
/// assert_eq!(cache.incr("visits", 1).await?, 1);
/// # Ok::<(), cache::Error>(())
/// # }).expect("example");
/// ```
#[derive(Debug, Clone)]
pub struct Tiered<N, F> {
    near: N,
    far: F,
    near_ttl_cap: Duration,
}

impl<N: Cache, F: Cache> Tiered<N, F> {
    /// `near` in front of `far`, near copies living at most [`DEFAULT_NEAR_TTL_CAP`].
    pub fn new(near: N, far: F) -> Self {
        Tiered { near, far, near_ttl_cap: DEFAULT_NEAR_TTL_CAP }
    }

    /// The longest a near copy lives, and so the longest another process's change can go
    /// unseen here. A zero cap is taken as one millisecond (a near copy then hardly
    /// helps, but nothing breaks).
    #[must_use]
    pub fn near_ttl_cap(mut self, cap: Duration) -> Self {
        self.near_ttl_cap = cap.max(Duration::from_millis(1));
        self
    }

    /// The near store.
    pub fn near(&self) -> &N {
        &self.near
    }

    /// The far store.
    pub fn far(&self) -> &F {
        &self.far
    }

    /// The lifetime of a near copy of an entry written with `ttl`.
    fn near_ttl(&self, ttl: Ttl) -> Ttl {
        match ttl {
            Ttl::After(lifetime) => Ttl::After(lifetime.min(self.near_ttl_cap)),
            Ttl::Never | Ttl::Default => Ttl::After(self.near_ttl_cap),
        }
    }

    /// Copies `value` near after a far hit. A failure only costs the next read a trip to
    /// far, so it is not the reader's error.
    async fn fill(&self, key: &str, value: &Bytes) {
        let _ = self.near.set(key, value.clone(), Ttl::After(self.near_ttl_cap)).await;
    }

    /// After far took a write: a near copy must not outlive a failed near write.
    async fn settle_near(&self, written: Result<()>, keys: &[&str]) -> Result<()> {
        if written.is_err() {
            // Best effort: should near be unreachable as well, its copies still expire
            // within the cap.
            let _ = self.near.delete_many(keys).await;
        }
        Ok(())
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<N: Cache, F: Cache> Cache for Tiered<N, F> {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        if let Some(value) = self.near.get(key).await? {
            return Ok(Some(value));
        }
        let found = self.far.get(key).await?;
        if let Some(value) = &found {
            self.fill(key, value).await;
        }
        Ok(found)
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()> {
        self.far.set(key, value.clone(), ttl).await?;
        let written = self.near.set(key, value, self.near_ttl(ttl)).await;
        self.settle_near(written, &[key]).await
    }

    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
        let added = self.far.add(key, value, ttl).await?;
        // Far decided; whatever near held for this key is not to be trusted now.
        self.near.delete(key).await?;
        Ok(added)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let removed = self.far.delete(key).await?;
        self.near.delete(key).await?;
        Ok(removed)
    }

    async fn has(&self, key: &str) -> Result<bool> {
        Ok(self.near.has(key).await? || self.far.has(key).await?)
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        let value = self.far.incr(key, delta).await?;
        self.near.delete(key).await?;
        Ok(value)
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let mut values = self.near.get_many(keys).await?;
        let missing: Vec<usize> = (0..keys.len()).filter(|&index| values[index].is_none()).collect();
        if missing.is_empty() {
            return Ok(values);
        }
        let missing_keys: Vec<&str> = missing.iter().map(|&index| keys[index]).collect();
        let found = self.far.get_many(&missing_keys).await?;
        if found.len() != missing_keys.len() {
            return Err(Error::new(ErrorKind::Unexpected, "tiered", "get_many").with_context(format!(
                "the far store answered {} of {} keys",
                found.len(),
                missing_keys.len()
            )));
        }
        let mut fills: Vec<(&str, Bytes)> = Vec::new();
        for (&index, value) in missing.iter().zip(found) {
            if let Some(value) = &value {
                // A key asked twice is filled once.
                if !fills.iter().any(|(key, _)| *key == keys[index]) {
                    fills.push((keys[index], value.clone()));
                }
            }
            values[index] = value;
        }
        if !fills.is_empty() {
            // As in `get`: a failed fill is not the reader's error.
            let _ = self.near.set_many(&fills, Ttl::After(self.near_ttl_cap)).await;
        }
        Ok(values)
    }

    async fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
        self.far.set_many(entries, ttl).await?;
        let written = self.near.set_many(entries, self.near_ttl(ttl)).await;
        let keys: Vec<&str> = entries.iter().map(|(key, _)| *key).collect();
        self.settle_near(written, &keys).await
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        let removed = self.far.delete_many(keys).await?;
        self.near.delete_many(keys).await?;
        Ok(removed)
    }

    async fn clear(&self) -> Result<()> {
        if !self.capabilities().clear {
            return Err(Error::unsupported("tiered", "clear", "the near or the far store cannot clear"));
        }
        self.far.clear().await?;
        self.near.clear().await
    }

    fn capabilities(&self) -> Capabilities {
        let (near, far) = (self.near.capabilities(), self.far.capabilities());
        let mut capabilities = far;
        capabilities.clear = near.clear && far.clear;
        capabilities.ttl_resolution = near.ttl_resolution.max(far.ttl_resolution);
        capabilities.literal_prefix = near.literal_prefix && far.literal_prefix;
        capabilities
    }

    /// Far's: far holds the truth and decides what a load writes, so every `Tiered`
    /// over one far store (whatever its near store) joins the same loads.
    fn single_flight_scope(&self) -> (usize, &str) {
        self.far.single_flight_scope()
    }

    /// `None`: each tier counts its own reads (a far store is often shared with other
    /// processes, whose reads no sum here could tell apart); ask
    /// [`near`](Tiered::near) and [`far`](Tiered::far).
    fn stats(&self) -> Option<CacheStats> {
        None
    }

    /// Both tiers: a miss of `get` was a miss of each tier it asked.
    fn settle_miss(&self, settled: MissSettled) {
        self.near.settle_miss(settled);
        self.far.settle_miss(settled);
    }
}
