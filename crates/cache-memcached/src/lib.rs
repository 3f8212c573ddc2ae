//! `MemcachedCache`: a [`Cache`] on one memcached server or a ring of them.
//!
//! - Any UTF-8 key of any length: keys memcached cannot take are sent as a digest, and two
//!   different keys never share an entry.
//! - `add` is memcached's `add`; `incr` is atomic, creates a missing counter race-free and
//!   never returns a wrong number (memcached wraps at 2^64 and clamps at 0; this does not).
//! - `clear` removes this prefix's entries only, without `flush_all`: every prefix has a
//!   generation number on each server, folded into its keys, and `clear` moves it on.
//! - Keys spread over many servers by rendezvous hashing; `get_many`, `set_many` and
//!   `delete_many` send one pipelined batch per server, all servers at once.
//! - A server that is down fails its own keys with
//!   [`Unavailable`](cache_core::ErrorKind::Unavailable) within the timeouts; the others keep
//!   working, and it is used again as soon as it answers.
//!
//! ```no_run
//! // Needs a memcached on 127.0.0.1:11211.
//! use std::time::Duration;
//! use cache_core::{Cache, Ttl};
//! use cache_memcached::MemcachedCache;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cache_core::Result<()> {
//! let cache = MemcachedCache::builder()
//!     .server("127.0.0.1:11211")
//!     .prefix("app:")
//!     .default_ttl(Duration::from_secs(3600))
//!     .build()
//!     .await?;
//! cache.set("user:7", "Ada".into(), Ttl::secs(60)).await?;
//! assert_eq!(cache.get("user:7").await?.as_deref(), Some(&b"Ada"[..]));
//! assert_eq!(cache.incr("visits", 1).await?, 1);
//!
//! // Another namespace on the same servers and pools.
//! let sessions = cache.with_prefix("sessions:");
//! sessions.clear().await?; // app: keys stay
//! # Ok(())
//! # }
//! ```
//!
//! Or from a URL: `MemcachedCacheBuilder::from_url("memcache://h1:11211,h2:11211?prefix=app:")`,
//! or [`MemcachedCacheBuilder::from_env`] with `CACHE_MEMCACHED_URL`.
//!
//! # Keys on the server
//!
//! A cache with prefix `P` keeps key `K` on the server chosen by hashing `P K`, under the
//! wire key `P K # G`, where `G` is the prefix's generation on that server (decimal), stored
//! under `P # g`. So with `memcached` at hand:
//!
//! ```text
//! get app:#g                    ->  1764573010123456789
//! get app:user:7#1764573010123456789  ->  Ada
//! ```
//!
//! When `P K # G` would be longer than 250 bytes or `P K` holds a space or control
//! character, the wire key is `hex(SHA-256(G as 8 little-endian bytes ‖ P ‖ K)) # d`
//! instead (and a prefix that cannot be sent keeps its generation under
//! `hex(SHA-256(P)) # gd`). The text after the last `#` tells the forms apart, so no key
//! can reach a generation or another key's entry. Values are stored as given with client
//! flags 0; integers as decimal ASCII, so another client's `incr` works on them.
//!
//! The server for a key is the one with the highest `fmix64(fnv1a(P K) ^ fmix64(fnv1a(address)))`
//! (64-bit FNV-1a, MurmurHash3's finalizer), `address` as given to the builder.
//!
//! # Prefixes and `clear`
//!
//! [`clear`](Cache::clear) increments the prefix's generation on every server: the old
//! entries can no longer be reached and memcached evicts them as memory is needed. It never
//! sends `flush_all`; [`MemcachedCache::flush_all`] does, by name, and removes every
//! program's keys. A cache without a prefix is the prefix `""` and clears only the keys
//! written without a prefix.
//!
//! Because every prefix has its own generations, this store does not follow the literal
//! prefix rule of the contract: a handle with prefix `"app:"` and one without a prefix
//! reading `"app:x"` see two different entries, and a `clear` reaches only entries written
//! through its own prefix. Keep prefixes apart, as the contract advises.
//!
//! Generations cost one read per prefix and server now and then: a handle trusts the
//! generation it knows for [`generation_refresh`](MemcachedCacheBuilder::generation_refresh)
//! (1 s by default) before reading it again, one extra round trip folded into the same
//! blocking call. Handles of one built cache ([`with_prefix`](MemcachedCache::with_prefix),
//! clones) share what they know and see their clears at once; another process sees a clear
//! within that time, and until then may still read and write the old generation. A
//! generation lost to eviction or a server restart is recreated from the clock, larger than
//! every one before, so it never revives cleared entries (but hides the entries written
//! before it was lost, as a clear would).
//!
//! # Costs
//!
//! Every call is one task on tokio's blocking pool (no async worker thread ever waits on a
//! socket; called outside a tokio runtime, the call does its work on the calling thread),
//! holding one pooled connection per server it talks to:
//!
//! | call | round trips |
//! |---|---|
//! | `get`, `has`, `set`, `add`, `delete` | 1 |
//! | `get_many`, `set_many`, `delete_many` | 1 per server involved (and per 100 keys), servers in parallel |
//! | `incr` | 2 (a read, then memcached's `incr`, an `add` for a missing key, or a compare-and-swap); more when a compare-and-swap loses a race |
//! | `clear` | 1 per server, in parallel |
//!
//! plus, once per `generation_refresh` per prefix and server, the generation read.
//!
//! # Counters
//!
//! `incr` reads the value first, because memcached's `incr` accepts text the contract
//! calls no integer (`" 7"`, `"+7"`, `"007"`, digits then spaces) and cannot hold a
//! negative number. For a decimal `i64` that is not negative and a delta that is not
//! negative it then sends memcached's `incr`, which is atomic however many writers race and
//! interleaves with other clients' `incr`. If another writer pushed the value out of `i64`
//! between the read and the `incr`, the step is taken back by compare-and-swap and the call
//! fails with `IntegerOverflow` (or `NotAnInteger`): no wrong number is returned, though a
//! reader may see the out-of-range value for that moment. A negative value or delta is done
//! by compare-and-swap (`gets`, then `cas` of the new decimal text, keeping the entry's flags
//! and remaining lifetime), retried until it wins or the call's deadline passes (then
//! `Timeout`): correct, but it serializes writers to one counter.
//!
//! One window remains: if another writer replaces a counter with text memcached counts as a
//! number but the contract does not (such as `" 7"`) between the read and the `incr`,
//! memcached's reading wins and the text is incremented.
//!
//! # Lifetimes and limits
//!
//! Lifetimes are whole seconds, rounded up, plus one: memcached's clock ticks once a second
//! at a phase the client cannot see, so `n` seconds lives between `n - 1` and `n`. An
//! entry therefore lives at least what was asked and at most two seconds longer
//! ([`Capabilities::ttl_resolution`] is 2 s). Over 30 days is sent as a Unix time (the
//! protocol's rule, from this machine's clock); past 2038, where memcached's 32-bit clock
//! ends, it means never expires.
//!
//! Values up to the item size less 512 bytes are accepted (1 MiB − 512 by default, see
//! [`MemcachedCacheBuilder::item_size`]); a larger one is
//! [`ValueTooLarge`](cache_core::ErrorKind::ValueTooLarge) before anything is sent, and the
//! old value stays (memcached itself would delete it).
//!
//! # Timeouts and failures
//!
//! Waiting for a pooled connection and dialing are each bounded by
//! [`connect_timeout`](MemcachedCacheBuilder::connect_timeout) (1 s), every round trip by
//! [`timeout`](MemcachedCacheBuilder::timeout) (1 s); so a call returns within twice the
//! connect timeout plus one timeout per round trip, whatever the server does. A refused or
//! reset connection is [`Unavailable`](cache_core::ErrorKind::Unavailable), a server too slow
//! is [`Timeout`](cache_core::ErrorKind::Timeout); both are temporary. A connection that
//! failed in the middle of an exchange is closed, never reused, so a late answer is never
//! read as the next call's. A write that timed out after it was sent may have been applied.
//!
//! The client is `memcache::exp::MetaClient`, the meta-protocol client of the `memcache`
//! crate, one per server; its classic client has no connect timeout and returns a
//! connection that failed mid-exchange to its pool.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod builder;
mod error;
mod keys;
mod ring;
mod store;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use cache_core::{Cache, Capabilities, Result, Ttl};

pub use crate::builder::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_GENERATION_REFRESH, DEFAULT_ITEM_SIZE, DEFAULT_POOL_SIZE, DEFAULT_TIMEOUT,
    ENV_URL, MemcachedCacheBuilder,
};
use crate::error::Failure;
use crate::store::{GenerationSlot, Shared, check_len};

/// A [`Cache`] on one or many memcached servers; see the [crate docs](crate).
///
/// Cheap to clone: clones and [`with_prefix`](Self::with_prefix) handles share the
/// connection pools.
#[derive(Clone)]
pub struct MemcachedCache {
    shared: Arc<Shared>,
    prefix: Arc<str>,
    slots: Arc<[GenerationSlot]>,
}

impl fmt::Debug for MemcachedCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let servers: Vec<&str> = self.shared.nodes.iter().map(|node| node.address.as_str()).collect();
        f.debug_struct("MemcachedCache").field("servers", &servers).field("prefix", &&*self.prefix).finish()
    }
}

/// Where a key lives: its server and its wire key (see "Keys on the server").
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Location {
    /// The server's address, as given to the builder.
    pub server: String,
    /// The key memcached stores the entry under.
    pub key: String,
}

/// Starts `work` on tokio's blocking pool now and returns a future of its outcome, so
/// several servers' batches run side by side. Outside a tokio runtime there is no pool, and
/// the work runs on the calling thread.
fn start<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> impl Future<Output = Result<T, Failure>> {
    let started = match tokio::runtime::Handle::try_current() {
        Ok(runtime) => Err(runtime.spawn_blocking(work)),
        Err(_) => Ok(work()),
    };
    async move {
        match started {
            Ok(done) => done,
            Err(task) => task.await.map_err(Failure::Task).and_then(|outcome| outcome),
        }
    }
}

impl MemcachedCache {
    /// Settings for a new cache: at least one [`server`](MemcachedCacheBuilder::server).
    pub fn builder() -> MemcachedCacheBuilder {
        MemcachedCacheBuilder::new()
    }

    fn on(shared: Arc<Shared>, prefix: &str) -> MemcachedCache {
        let slots = shared.slots(prefix);
        MemcachedCache { shared, prefix: prefix.into(), slots }
    }

    /// A handle on the same servers and pools whose keys live under `prefix` (`""` = none).
    pub fn with_prefix(&self, prefix: &str) -> MemcachedCache {
        MemcachedCache::on(Arc::clone(&self.shared), prefix)
    }

    /// This handle's prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Where `key` lives now: its server and wire key, for reading it with another client.
    ///
    /// # Errors
    /// As [`get`](Cache::get): the generation may have to be read.
    pub async fn locate(&self, key: &str) -> Result<Location> {
        let owned = key.to_owned();
        self.run("locate", Some(key), move |shared, slots, prefix| {
            let (server, wire) = shared.locate(slots, prefix, &owned)?;
            let address = shared.nodes.get(server).map(|node| node.address.clone()).unwrap_or_default();
            Ok(Location { server: address, key: wire })
        })
        .await
    }

    /// Sends memcached's `flush_all` to every server: removes **everything** they hold,
    /// every prefix and every other program's keys. [`clear`](Cache::clear) is what removes
    /// only this cache's entries.
    ///
    /// # Errors
    /// The first server that could not be flushed; the others are flushed anyway.
    pub async fn flush_all(&self) -> Result<()> {
        let mut tasks = Vec::new();
        for server in 0..self.shared.nodes.len() {
            let shared = Arc::clone(&self.shared);
            tasks.push(start(move || shared.flush_server(server)));
        }
        let mut first = Ok(());
        for task in tasks {
            let outcome = task.await;
            if first.is_ok() {
                first = outcome;
            }
        }
        self.shared.forget_generations();
        first.map_err(|failure| failure.into_core("flush_all", None))
    }

    /// Runs one keyed operation on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        key: Option<&str>,
        work: impl FnOnce(&Shared, &[GenerationSlot], &str) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T> {
        let (shared, slots, prefix) = (Arc::clone(&self.shared), Arc::clone(&self.slots), Arc::clone(&self.prefix));
        start(move || work(&shared, &slots, &prefix)).await.map_err(|failure| failure.into_core(operation, key))
    }

    fn lifetime(&self, ttl: Ttl) -> Option<Duration> {
        ttl.lifetime(self.shared.settings.default_ttl)
    }

    /// Keys grouped by server: `(server, [(position in keys, key)])`.
    fn group<'k>(&self, keys: impl IntoIterator<Item = &'k str>) -> Vec<(usize, Vec<(usize, String)>)> {
        let mut groups: Vec<Vec<(usize, String)>> = vec![Vec::new(); self.shared.nodes.len()];
        for (position, key) in keys.into_iter().enumerate() {
            let server = self.shared.ring.server_for(&self.prefix, key);
            if let Some(group) = groups.get_mut(server) {
                group.push((position, key.to_owned()));
            }
        }
        groups.into_iter().enumerate().filter(|(_, group)| !group.is_empty()).collect()
    }
}

#[async_trait]
impl Cache for MemcachedCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let owned = key.to_owned();
        self.run("get", Some(key), move |shared, slots, prefix| shared.get(slots, prefix, &owned)).await
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()> {
        check_len(value.len(), self.shared.settings.max_value_len)
            .map_err(|failure| failure.into_core("set", Some(key)))?;
        let exptime = self.shared.exptime(self.lifetime(ttl));
        let owned = key.to_owned();
        self.run("set", Some(key), move |shared, slots, prefix| {
            shared.store(slots, prefix, &owned, &value, exptime, false).map(drop)
        })
        .await
    }

    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
        check_len(value.len(), self.shared.settings.max_value_len)
            .map_err(|failure| failure.into_core("add", Some(key)))?;
        let exptime = self.shared.exptime(self.lifetime(ttl));
        let owned = key.to_owned();
        self.run("add", Some(key), move |shared, slots, prefix| {
            shared.store(slots, prefix, &owned, &value, exptime, true)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let owned = key.to_owned();
        self.run("delete", Some(key), move |shared, slots, prefix| shared.delete(slots, prefix, &owned)).await
    }

    async fn has(&self, key: &str) -> Result<bool> {
        let owned = key.to_owned();
        self.run("has", Some(key), move |shared, slots, prefix| shared.has(slots, prefix, &owned)).await
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        let owned = key.to_owned();
        // A generation read, the value read, the write, and an undo at most.
        let deadline = Instant::now() + self.shared.deadline(4);
        self.run("incr", Some(key), move |shared, slots, prefix| shared.incr(slots, prefix, &owned, delta, deadline))
            .await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let mut values = vec![None; keys.len()];
        let groups = self.group(keys.iter().copied());
        let mut tasks = Vec::with_capacity(groups.len());
        for (server, group) in groups {
            let (shared, slots, prefix) = (Arc::clone(&self.shared), Arc::clone(&self.slots), Arc::clone(&self.prefix));
            // Every server's batch starts before any is awaited: they run side by side.
            tasks.push(start(move || shared.get_group(server, &slots, &prefix, &group)));
        }
        for task in tasks {
            for (position, value) in task.await.map_err(|failure| failure.into_core("get_many", None))? {
                if let Some(slot) = values.get_mut(position) {
                    *slot = value;
                }
            }
        }
        Ok(values)
    }

    async fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
        let limit = self.shared.settings.max_value_len;
        for (key, value) in entries {
            check_len(value.len(), limit).map_err(|failure| failure.into_core("set_many", Some(key)))?;
        }
        let exptime = self.shared.exptime(self.lifetime(ttl));
        let groups = self.group(entries.iter().map(|(key, _)| *key));
        let mut tasks = Vec::with_capacity(groups.len());
        for (server, group) in groups {
            let pairs: Vec<(String, Bytes)> = group
                .into_iter()
                .filter_map(|(position, key)| entries.get(position).map(|(_, value)| (key, value.clone())))
                .collect();
            let (shared, slots, prefix) = (Arc::clone(&self.shared), Arc::clone(&self.slots), Arc::clone(&self.prefix));
            tasks.push(start(move || shared.set_group(server, &slots, &prefix, &pairs, exptime)));
        }
        let mut first = Ok(());
        for task in tasks {
            let outcome = task.await;
            if first.is_ok() {
                first = outcome;
            }
        }
        first.map_err(|failure| failure.into_core("set_many", None))
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        let groups = self.group(keys.iter().copied());
        let mut tasks = Vec::with_capacity(groups.len());
        for (server, group) in groups {
            let keys: Vec<String> = group.into_iter().map(|(_, key)| key).collect();
            let (shared, slots, prefix) = (Arc::clone(&self.shared), Arc::clone(&self.slots), Arc::clone(&self.prefix));
            tasks.push(start(move || shared.delete_group(server, &slots, &prefix, &keys)));
        }
        let mut removed = 0;
        let mut first = Ok(());
        for task in tasks {
            match task.await {
                Ok(count) => removed += count,
                Err(failure) if first.is_ok() => first = Err(failure),
                Err(_) => {}
            }
        }
        first.map(|()| removed).map_err(|failure| failure.into_core("delete_many", None))
    }

    async fn clear(&self) -> Result<()> {
        let mut tasks = Vec::with_capacity(self.shared.nodes.len());
        for server in 0..self.shared.nodes.len() {
            let (shared, slots, prefix) = (Arc::clone(&self.shared), Arc::clone(&self.slots), Arc::clone(&self.prefix));
            tasks.push(start(move || shared.bump_generation(server, &slots, &prefix)));
        }
        let mut first = Ok(());
        for task in tasks {
            let outcome = task.await;
            if first.is_ok() {
                first = outcome;
            }
        }
        // A server that failed keeps its old generation: the caller learns the clear is
        // incomplete and may retry it.
        first.map_err(|failure| failure.into_core("clear", None))
    }

    fn capabilities(&self) -> Capabilities {
        let mut capabilities = Capabilities::default();
        capabilities.max_value_len = Some(self.shared.settings.max_value_len);
        // Whole seconds plus one for memcached's unseen clock phase: see "Lifetimes".
        capabilities.ttl_resolution = Duration::from_secs(2);
        capabilities.shared_between_processes = true;
        // Each prefix has its own generations: see "Prefixes and `clear`".
        capabilities.literal_prefix = false;
        capabilities
    }

    fn single_flight_scope(&self) -> (usize, &str) {
        (Arc::as_ptr(&self.shared).cast::<()>() as usize, &self.prefix)
    }
}
