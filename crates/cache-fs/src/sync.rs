//! The synchronous view of an [`FsCache`](crate::FsCache).

use bytes::Bytes;
use cache_core::{Capabilities, Result, Ttl};

use crate::FsCache;
use crate::store::{Store, expiry_ms};

/// The synchronous API of an [`FsCache`](crate::FsCache), from
/// [`FsCache::sync`](crate::FsCache::sync): the [`Cache`](cache_core::Cache) operations run
/// on the calling thread, with the same rules, files, locks and errors as the async ones.
///
/// Each call blocks for its file system calls (a few microseconds when the file is in the
/// page cache, a disk access when it is not); call it from async code only where blocking
/// the thread for that long is acceptable.
#[derive(Debug, Clone, Copy)]
pub struct SyncFsCache<'a> {
    store: &'a Store,
    prefix: &'a str,
}

impl<'a> SyncFsCache<'a> {
    pub(crate) fn new(store: &'a Store, prefix: &'a str) -> SyncFsCache<'a> {
        SyncFsCache { store, prefix }
    }

    fn expiry(&self, ttl: Ttl) -> u64 {
        expiry_ms(ttl.lifetime(self.store.settings().default_ttl))
    }

    /// The value under `key`, or `None` if it is missing, expired or damaged.
    pub fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.store.get(self.prefix, key).map_err(|error| error.into_keyed("get", key))
    }

    /// Stores `value` under `key`, replacing any existing entry and its lifetime.
    ///
    /// # Errors
    /// As [`Cache::set`](cache_core::Cache::set); a value that cannot fit `max_bytes` is
    /// [`ErrorKind::ValueTooLarge`](cache_core::ErrorKind::ValueTooLarge) and the old value stays.
    pub fn set(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<()> {
        self.store.set(self.prefix, key, value, self.expiry(ttl)).map_err(|error| error.into_keyed("set", key))
    }

    /// Stores `value` only if `key` has no live entry; returns whether it did.
    pub fn add(&self, key: &str, value: &[u8], ttl: Ttl) -> Result<bool> {
        self.store.add(self.prefix, key, value, self.expiry(ttl)).map_err(|error| error.into_keyed("add", key))
    }

    /// Removes `key`; returns whether a live entry was removed.
    pub fn delete(&self, key: &str) -> Result<bool> {
        self.store.delete(self.prefix, key).map_err(|error| error.into_keyed("delete", key))
    }

    /// Whether `key` has a live entry.
    pub fn has(&self, key: &str) -> Result<bool> {
        self.store.has(self.prefix, key).map_err(|error| error.into_keyed("has", key))
    }

    /// Atomically adds `delta` to the integer under `key` and returns the new value.
    pub fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        self.store.incr(self.prefix, key, delta).map_err(|error| error.into_keyed("incr", key))
    }

    /// Removes every entry whose full key starts with this handle's prefix (without a
    /// prefix: every entry).
    pub fn clear(&self) -> Result<()> {
        self.store.clear(self.prefix).map_err(|error| error.into_core("clear"))
    }

    /// What the store can do; the same as [`Cache::capabilities`](cache_core::Cache::capabilities).
    pub fn capabilities(&self) -> Capabilities {
        FsCache::capabilities_of(self.store)
    }
}
