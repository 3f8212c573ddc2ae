//! `RedisCache`: a [`Cache`] on Redis, a single node or a Redis Cluster, as one type.
//!
//! - One multiplexed connection per node, shared by every clone of a cache, that
//!   reconnects by itself after a server restart (the `redis` crate's
//!   `ConnectionManager`; on a cluster, its async cluster client).
//! - Every call is bounded by the operation timeout and answers `Timeout` or
//!   `Unavailable` when the server is slow, down or restarting: never a hang.
//! - `add` is one atomic `SET NX`, `incr` is Redis's own `INCRBY`, bulk calls are one
//!   round trip, and `clear` walks `SCAN`, never `KEYS`.
//!
//! ```no_run
//! use std::time::Duration;
//! use cache_core::{Cache, CacheExt, Ttl};
//! use cache_redis::RedisCache;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cache_core::Result<()> {
//! let cache = RedisCache::builder()
//!     .url("redis://127.0.0.1:6379/0")
//!     .prefix("app:")
//!     .default_ttl(Duration::from_secs(600))
//!     .build()
//!     .await?;
//! cache.set("user:7:name", "Ada".into(), Ttl::secs(60)).await?;
//! assert_eq!(cache.get("user:7:name").await?.as_deref(), Some(&b"Ada"[..]));
//! let visits = cache.incr("visits", 1).await?;
//! cache.set_as("last-visit", &visits, Ttl::Default).await?;
//! // Another namespace on the same connection:
//! let sessions = cache.with_prefix("sessions:");
//! sessions.clear().await?; // removes every key starting with "sessions:", nothing else
//! # Ok(())
//! # }
//! ```
//!
//! The same example runs against a server started by `cargo xtask servers up redis`
//! (this crate's tests do, with `CACHE_TEST_REDIS_URL`).
//!
//! # Connecting
//!
//! [`RedisCache::builder`] takes a URL (`redis://user:password@host:6379/0`,
//! `redis+unix:///run/redis.sock`, `redis+cluster://host1:7000,host2:7001`), a list of
//! cluster nodes, or host, port, database and credentials;
//! [`RedisCacheBuilder::from_env`] reads the URL from `CACHE_REDIS_URL`. `build()`
//! connects, so a wrong address or password is an error there, not on the first call.
//! The password never appears in `Debug`, `Display` or an error.
//!
//! `rediss://host:port/0` connects over TLS (rustls; no OpenSSL is linked), and
//! `rediss+cluster://h1:p1,h2:p2` (or `rediss://` [cluster nodes](RedisCacheBuilder::cluster_nodes))
//! does the same for every node of a cluster. The server's certificate must be issued for
//! the host in the URL by a CA the system trusts or, when one is given to
//! [`tls_ca_file`](RedisCacheBuilder::tls_ca_file) / [`tls_ca_pem`](RedisCacheBuilder::tls_ca_pem),
//! by that CA (then the system's roots are not consulted);
//! an untrusted certificate is an `InvalidConfig` error at `build()` that says what rustls
//! found. There is no switch that turns certificate checks off, and no client certificates
//! (mutual TLS) yet.
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cache_core::Result<()> {
//! let cache = cache_redis::RedisCache::builder()
//!     .url("rediss://cache.internal:6380/0")
//!     .tls_ca_file("/etc/ssl/private-ca.pem")
//!     .build()
//!     .await?;
//! # let _ = cache;
//! # Ok(())
//! # }
//! ```
//!
//! TLS needs a rustls `CryptoProvider`. When the application has installed a process
//! default, it is used; otherwise the first TLS `build()` installs rustls' *ring* provider as
//! the process default (redis-rs takes the default and offers no way to pass one, and
//! without a default rustls panics whenever more than one provider is compiled in).
//!
//! # Keys, prefix and `clear`
//!
//! A key is stored as the prefix's bytes followed by the key's bytes, with nothing
//! escaped: any UTF-8 key works (the empty key, NUL, 10 KiB), and `redis-cli` sees the
//! same key. `clear` on a prefixed cache removes every key that starts with the prefix,
//! whoever wrote it: it walks `SCAN 0 MATCH <prefix, glob characters escaped>* COUNT
//! 1000` and `UNLINK`s each batch, on every primary of a cluster. It never sends `KEYS`
//! (which blocks the server) and never `FLUSHDB`. Keys written while a `clear` runs
//! may survive it (SCAN's guarantee covers keys present for the whole walk).
//!
//! Without a prefix, `clear` would have to empty the database, which other programs may
//! share: it is `Unsupported` (and `capabilities().clear` is false) unless the builder
//! was given [`clear_flushes_db(true)`](RedisCacheBuilder::clear_flushes_db); then it is
//! `FLUSHDB ASYNC` (on every primary of a cluster).
//!
//! # Requests per operation
//!
//! | operation | single node | Redis Cluster |
//! |---|---|---|
//! | `get`, `has`, `delete` | one `GET`, `EXISTS`, `UNLINK` | one, to the key's primary |
//! | `set` | one `SET key value [PX ms]` | one |
//! | `add` | one `SET key value NX [PX ms]`: atomic | one |
//! | `incr` | one `INCRBY`; with a default TTL, one `MULTI`/`SET NX PX`/`INCRBY`/`EXEC` transaction sent as one write | one |
//! | `get_many(n)` | one `MGET` | one `MGET` per hash slot touched, all sent at once |
//! | `set_many(n)` | one `MSET`, or one pipeline of `SET .. PX` | one `MSET` or pipeline per hash slot, all at once |
//! | `delete_many(n)` | one `UNLINK` | one `UNLINK` per hash slot, all at once |
//! | `clear` (prefixed) | one `SCAN` per 1000 keys looked at, one `UNLINK` per batch found | the same on every primary |
//!
//! "All at once": on a cluster the groups are sent concurrently over the connections to
//! their primaries and the answers put back in the caller's order, so a bulk call costs
//! about one round trip of latency. Keys are not hash-tagged: that would put a whole
//! prefix on one node. A bulk call on a cluster is not atomic, and neither is
//! `set_many` on a single node (the contract does not ask it to be).
//!
//! # Lifetimes and values
//!
//! Lifetimes are sent in milliseconds (`PX`), rounded up, at least 1 ms; a lifetime
//! too long for Redis (beyond 2^62 ms) is stored without expiry. `incr` on a missing key
//! creates it with the default TTL; an existing entry keeps its lifetime, as `INCRBY`
//! does. Values up to 512 MiB (Redis's `proto-max-bulk-len` default) are accepted; a
//! larger one is `ValueTooLarge` before anything is sent, and the old value stays.
//!
//! # Timeouts and failures
//!
//! | setting | default | why |
//! |---|---|---|
//! | [`connect_timeout`](RedisCacheBuilder::connect_timeout) | 2 s | outlasts one lost SYN (retransmitted after 1 s) without stalling a request path on a dead host |
//! | [`operation_timeout`](RedisCacheBuilder::operation_timeout) | 1 s | Redis answers in well under a millisecond; a later cache answer is usually worth less than recomputing, and 1 s rides out a fork or a slow command |
//!
//! Each round trip (waiting for a reconnection included) is bounded by the operation
//! timeout with `tokio::time::timeout`, on top of the client's own response timeout. A
//! refused or reset connection is `Unavailable`, no answer in time is `Timeout` (both
//! [`is_temporary`](cache_core::Error::is_temporary)); the next call reconnects, and the
//! same cache object works again once the server is back. A request that timed out may
//! still have been applied by the server. A server error reply is `Unexpected` with the
//! server's message as context; `INCRBY`'s "not an integer" and "would overflow" replies
//! are `NotAnInteger` and `IntegerOverflow`, and the value is unchanged. Every error names
//! the operation and, for single-key calls, the key (truncated).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod builder;
mod conn;
mod error;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cache_core::{Cache, Capabilities, ErrorKind, Result, Ttl};
use redis::{RedisError, RedisResult, Value};
use tokio::task::JoinSet;

use crate::conn::{Conn, by_slot};

pub use crate::builder::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_OPERATION_TIMEOUT, ENV_URL, RedisCacheBuilder};

/// The largest value Redis accepts by default (`proto-max-bulk-len`, 512 MiB).
pub const MAX_VALUE_LEN: usize = 512 << 20;

/// Keys looked at per `SCAN` step of `clear`: large enough that 10 000 keys take ten
/// round trips, small enough that one step never blocks the server noticeably.
const SCAN_COUNT: usize = 1000;

/// Past this many milliseconds Redis refuses the expiry ("invalid expire time"); such a
/// lifetime means "never" in our contract anyway.
const MAX_PX: u128 = 1 << 62;

/// A [`Cache`] on Redis; see the [crate docs](crate).
///
/// Cloning is cheap: clones share the connection and the prefix.
#[derive(Clone)]
pub struct RedisCache {
    shared: Arc<Shared>,
    prefix: Arc<str>,
}

/// What every clone and every [`RedisCache::with_prefix`] view shares.
struct Shared {
    conn: Conn,
    /// Where we are connected, without credentials.
    endpoint: String,
    default_ttl: Option<Duration>,
    operation_timeout: Duration,
    clear_flushes_db: bool,
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("endpoint", &self.shared.endpoint)
            .field("prefix", &self.prefix)
            .field("default_ttl", &self.shared.default_ttl)
            .field("operation_timeout", &self.shared.operation_timeout)
            .field("clear_flushes_db", &self.shared.clear_flushes_db)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// A builder; see [`RedisCacheBuilder`].
    pub fn builder() -> RedisCacheBuilder {
        RedisCacheBuilder::new()
    }

    /// This cache's prefix (`""` = none).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether this cache is on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.shared.conn.is_cluster()
    }

    /// Another namespace on the same connection and settings: keys under `prefix`.
    pub fn with_prefix(&self, prefix: impl Into<String>) -> RedisCache {
        RedisCache { shared: Arc::clone(&self.shared), prefix: Arc::from(prefix.into()) }
    }

    /// The key as stored: the prefix's bytes, then the key's.
    fn full_key(&self, key: &str) -> Vec<u8> {
        let mut full = Vec::with_capacity(self.prefix.len() + key.len());
        full.extend_from_slice(self.prefix.as_bytes());
        full.extend_from_slice(key.as_bytes());
        full
    }

    /// The `PX` argument for `ttl`, or `None` for no expiry.
    fn expiry_ms(&self, ttl: Ttl) -> Option<u64> {
        let lifetime = ttl.lifetime(self.shared.default_ttl)?;
        let mut millis = lifetime.as_millis();
        if lifetime.subsec_nanos() % 1_000_000 != 0 {
            millis += 1; // round up: an entry is never gone before its time
        }
        let millis = millis.max(1);
        if millis > MAX_PX { None } else { u64::try_from(millis).ok() }
    }

    /// One round trip, bounded by the operation timeout, its error mapped.
    async fn call<T>(
        &self,
        operation: &'static str,
        key: Option<&str>,
        request: impl Future<Output = RedisResult<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.shared.operation_timeout, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(error::from_redis(source, operation, key)),
            Err(_) => Err(error::timed_out(operation, key, self.shared.operation_timeout)),
        }
    }

    fn check_len(&self, operation: &'static str, key: &str, value: &Bytes) -> Result<()> {
        if value.len() > MAX_VALUE_LEN {
            return Err(error::too_large(operation, key, value.len(), MAX_VALUE_LEN));
        }
        Ok(())
    }

    /// The positions of `keys` in the groups one request can carry: all of them on a
    /// single node, one group per hash slot on a cluster.
    fn groups(&self, keys: &[Vec<u8>]) -> Vec<Vec<usize>> {
        if self.shared.conn.is_cluster() { by_slot(keys) } else { vec![(0..keys.len()).collect()] }
    }

    /// Runs `request` for every group, concurrently when there are several (cluster), and
    /// returns each group's answer beside its positions. The first error wins and the
    /// other requests are dropped.
    async fn per_group<T, F, Fut>(&self, groups: Vec<Vec<usize>>, request: F) -> RedisResult<Vec<(Vec<usize>, T)>>
    where
        F: Fn(&[usize]) -> Fut,
        Fut: Future<Output = RedisResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        if groups.len() <= 1 {
            let mut answers = Vec::with_capacity(1);
            for group in groups {
                let answer = request(&group).await?;
                answers.push((group, answer));
            }
            return Ok(answers);
        }
        let mut tasks = JoinSet::new();
        for group in groups {
            let pending = request(&group);
            tasks.spawn(async move { pending.await.map(|answer| (group, answer)) });
        }
        let mut answers = Vec::with_capacity(tasks.len());
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(answer) => answers.push(answer?),
                Err(failed) => {
                    return Err(RedisError::from((
                        redis::ErrorKind::Client,
                        "a request task of a bulk call failed",
                        failed.to_string(),
                    )));
                }
            }
        }
        Ok(answers)
    }

    /// `SCAN` every primary for keys matching this prefix and `UNLINK` each batch.
    async fn clear_prefix(&self) -> Result<()> {
        const OP: &str = "clear";
        let conn = &self.shared.conn;
        let pattern = match_pattern(&self.prefix);
        let primaries = self.call(OP, None, conn.primaries()).await?;
        for node in &primaries {
            let mut cursor = 0_u64;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(SCAN_COUNT);
                let (next, keys): (u64, Vec<Vec<u8>>) = self.call(OP, None, conn.query_node(&scan, node)).await?;
                if !keys.is_empty() {
                    self.unlink(OP, keys).await?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(())
    }

    /// `UNLINK`s full keys, grouped by slot on a cluster; returns how many existed.
    async fn unlink(&self, operation: &'static str, keys: Vec<Vec<u8>>) -> Result<usize> {
        let keys = Arc::new(keys);
        let conn = &self.shared.conn;
        let answers = self
            .call(
                operation,
                None,
                self.per_group(self.groups(&keys), |group| {
                    let mut unlink = redis::cmd("UNLINK");
                    for &position in group {
                        unlink.arg(&keys[position]);
                    }
                    let conn = conn.clone();
                    async move { conn.query::<usize>(&unlink).await }
                }),
            )
            .await?;
        Ok(answers.iter().map(|(_, removed)| removed).sum())
    }
}

/// `SCAN MATCH` pattern for every key starting with `prefix`: the glob characters
/// `* ? [ ] \` are escaped, so they match only themselves.
fn match_pattern(prefix: &str) -> Vec<u8> {
    let mut pattern = Vec::with_capacity(prefix.len() + 8);
    for &byte in prefix.as_bytes() {
        if matches!(byte, b'*' | b'?' | b'[' | b']' | b'\\') {
            pattern.push(b'\\');
        }
        pattern.push(byte);
    }
    pattern.push(b'*');
    pattern
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let mut get = redis::cmd("GET");
        get.arg(self.full_key(key));
        let value: Option<Vec<u8>> = self.call("get", Some(key), self.shared.conn.query(&get)).await?;
        Ok(value.map(Bytes::from))
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()> {
        self.check_len("set", key, &value)?;
        let mut set = redis::cmd("SET");
        set.arg(self.full_key(key)).arg(value.as_ref());
        if let Some(millis) = self.expiry_ms(ttl) {
            set.arg("PX").arg(millis);
        }
        self.call("set", Some(key), self.shared.conn.query::<()>(&set)).await
    }

    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
        self.check_len("add", key, &value)?;
        let mut set = redis::cmd("SET");
        set.arg(self.full_key(key)).arg(value.as_ref()).arg("NX");
        if let Some(millis) = self.expiry_ms(ttl) {
            set.arg("PX").arg(millis);
        }
        // `OK` when written, a nil reply when the key already had a live entry.
        let reply: Value = self.call("add", Some(key), self.shared.conn.query(&set)).await?;
        Ok(!matches!(reply, Value::Nil))
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let mut unlink = redis::cmd("UNLINK");
        unlink.arg(self.full_key(key));
        let removed: usize = self.call("delete", Some(key), self.shared.conn.query(&unlink)).await?;
        Ok(removed > 0)
    }

    async fn has(&self, key: &str) -> Result<bool> {
        let mut exists = redis::cmd("EXISTS");
        exists.arg(self.full_key(key));
        let found: usize = self.call("has", Some(key), self.shared.conn.query(&exists)).await?;
        Ok(found > 0)
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        let full = self.full_key(key);
        match self.expiry_ms(Ttl::Default) {
            None => {
                let mut incr = redis::cmd("INCRBY");
                incr.arg(&full).arg(delta);
                self.call("incr", Some(key), self.shared.conn.query(&incr)).await
            }
            Some(millis) => {
                // A missing key must be created with the default lifetime, an existing one
                // keep its own: `SET NX PX` creates "0" only when absent, and `INCRBY` keeps
                // whatever lifetime the key has. MULTI makes the pair atomic.
                let mut transaction = redis::pipe();
                transaction.atomic();
                transaction.cmd("SET").arg(&full).arg("0").arg("NX").arg("PX").arg(millis).ignore();
                transaction.cmd("INCRBY").arg(&full).arg(delta);
                let (value,): (i64,) = self.call("incr", Some(key), self.shared.conn.pipeline(&transaction)).await?;
                Ok(value)
            }
        }
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let full: Arc<Vec<Vec<u8>>> = Arc::new(keys.iter().map(|key| self.full_key(key)).collect());
        let conn = &self.shared.conn;
        let answers = self
            .call(
                "get_many",
                None,
                self.per_group(self.groups(&full), |group| {
                    let mut mget = redis::cmd("MGET");
                    for &position in group {
                        mget.arg(&full[position]);
                    }
                    let conn = conn.clone();
                    async move { conn.query::<Vec<Option<Vec<u8>>>>(&mget).await }
                }),
            )
            .await?;
        let mut values = vec![None; keys.len()];
        for (group, found) in answers {
            if found.len() != group.len() {
                return Err(error::error(
                    ErrorKind::Unexpected,
                    "get_many",
                    None,
                    format!("MGET of {} keys answered {} values", group.len(), found.len()),
                ));
            }
            for (position, value) in group.into_iter().zip(found) {
                values[position] = value.map(Bytes::from);
            }
        }
        Ok(values)
    }

    async fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        // Refuse before anything is sent, so a too-large value leaves every key as it was.
        for (key, value) in entries {
            self.check_len("set_many", key, value)?;
        }
        let full: Arc<Vec<Vec<u8>>> = Arc::new(entries.iter().map(|(key, _)| self.full_key(key)).collect());
        let values: Arc<Vec<Bytes>> = Arc::new(entries.iter().map(|(_, value)| value.clone()).collect());
        let expiry = self.expiry_ms(ttl);
        let conn = &self.shared.conn;
        self.call(
            "set_many",
            None,
            self.per_group(self.groups(&full), |group| {
                let conn = conn.clone();
                let (full, values) = (Arc::clone(&full), Arc::clone(&values));
                let group = group.to_vec();
                async move {
                    match expiry {
                        None => {
                            let mut mset = redis::cmd("MSET");
                            for position in group {
                                mset.arg(&full[position]).arg(values[position].as_ref());
                            }
                            conn.query::<()>(&mset).await
                        }
                        Some(millis) => {
                            let mut pipeline = redis::pipe();
                            for position in group {
                                pipeline
                                    .cmd("SET")
                                    .arg(&full[position])
                                    .arg(values[position].as_ref())
                                    .arg("PX")
                                    .arg(millis)
                                    .ignore();
                            }
                            conn.pipeline::<()>(&pipeline).await
                        }
                    }
                }
            }),
        )
        .await?;
        Ok(())
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.unlink("delete_many", keys.iter().map(|key| self.full_key(key)).collect()).await
    }

    async fn clear(&self) -> Result<()> {
        if !self.prefix.is_empty() {
            return self.clear_prefix().await;
        }
        if !self.shared.clear_flushes_db {
            return Err(error::error(
                ErrorKind::Unsupported,
                "clear",
                None,
                "a cache without a prefix would empty the whole database; build it with clear_flushes_db(true) to allow that",
            ));
        }
        // On a cluster the client sends FLUSHDB to every primary and expects every one to succeed.
        let mut flush = redis::cmd("FLUSHDB");
        flush.arg("ASYNC");
        self.call("clear", None, self.shared.conn.query::<()>(&flush)).await
    }

    fn capabilities(&self) -> Capabilities {
        let mut capabilities = Capabilities::default();
        capabilities.max_value_len = Some(MAX_VALUE_LEN);
        capabilities.ttl_resolution = Duration::from_millis(1);
        capabilities.clear = !self.prefix.is_empty() || self.shared.clear_flushes_db;
        capabilities.shared_between_processes = true;
        capabilities
    }

    fn single_flight_scope(&self) -> (usize, &str) {
        (Arc::as_ptr(&self.shared) as usize, &self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_in_the_prefix_match_only_themselves() {
        assert_eq!(match_pattern("app:"), b"app:*");
        assert_eq!(match_pattern("a*b?c[d]e\\f"), b"a\\*b\\?c\\[d\\]e\\\\f*".to_vec());
        assert_eq!(match_pattern(""), b"*");
    }
}
