//! `MongoCache`: a [`Cache`] in one MongoDB collection, with a TTL index, upserts and
//! atomic counters. Any MongoDB from 4.2 on (standalone, replica set, sharded on `_id`,
//! Atlas) through the official `mongodb` driver.
//!
//! - Every entry is one document; `expires_at` is a TTL index, so the server removes
//!   expired entries itself, and every read also checks `expires_at`, so an expired entry
//!   is never returned in the minute before the server's sweep.
//! - `set` replaces the whole document: a `set` without expiry removes an old expiry.
//! - `add` is atomic: of many concurrent `add`s of one key exactly one wins, an expired
//!   entry counting as absent.
//! - `incr` is the server's atomic `$inc`: exact under any number of concurrent callers,
//!   an overflow is an error (never a wrap), a non-integer is left as it was.
//! - `get_many`, `set_many` and `delete_many` are one request each; `clear` removes this
//!   prefix's documents with one anchored `_id` range, never dropping the collection.
//! - Every call fails within its [operation timeout](MongoCacheBuilder::operation_timeout)
//!   with a temporary error when the server is down or stalls; credentials never appear
//!   in `Debug` output or errors.
//!
//! ```no_run
//! use std::time::Duration;
//! use cache_core::{Cache, CacheExt, Ttl};
//! use cache_mongo::MongoCache;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cache_core::Result<()> {
//! let cache = MongoCache::builder()
//!     .uri("mongodb://127.0.0.1:27017")
//!     .database("app")
//!     .collection("cache")
//!     .prefix("sessions:")
//!     .default_ttl(Duration::from_secs(3600))
//!     .build()
//!     .await?;
//! cache.set("alice", b"token".to_vec().into(), Ttl::Default).await?;
//! assert_eq!(cache.get("alice").await?.as_deref(), Some(&b"token"[..]));
//! assert_eq!(cache.incr("logins", 1).await?, 1);
//! cache.set_as("profile", &("Alice", 36), Ttl::secs(60)).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Documents
//!
//! ```text
//! { _id: "<prefix><key>",                      string, the prefix and key as given
//!   value: BinData(0, "...") | NumberLong(42), bytes from set/add; counters from incr
//!   expires_at: ISODate("...") }               only when the entry expires
//! index { expires_at: 1 }, expireAfterSeconds: 0   created by build()
//! ```
//!
//! A key is stored as given, so any UTF-8 key works, NUL, `../` and 10 KiB included
//! (MongoDB before 4.2 refused index keys over 1 KiB: use 4.2 or newer). The prefix
//! follows the literal rule: the handle with prefix `P` addresses `_id` `P + key`, and
//! its `clear` removes every document whose `_id` starts with `P`, whoever wrote it
//! (so clearing `app` also clears `app2:...`: end prefixes with a separator). `clear`
//! without a prefix removes every document of the collection (it never drops it, so the
//! index and any settings stay).
//!
//! Expiry times are computed on the client, rounded up to MongoDB's milliseconds, and
//! compared with the client's clock on reads; the server's TTL monitor deletes by its own
//! clock about once a minute. Keep clocks in sync (NTP): a server clock running ahead
//! deletes entries early by that much. A lifetime too large for a date never expires.
//!
//! # Integers
//!
//! `incr` is one `findOneAndUpdate` with `$inc` on an Int64 `value`, filtered to live
//! documents whose value is an Int64 that the delta cannot take out of range, so the
//! server never wraps or converts it (MongoDB itself refuses an overflowing `$inc` with
//! `BadValue`; this store never asks it to). An existing entry keeps its `expires_at`;
//! `get` reads an Int64 back as decimal ASCII. When nothing matches:
//!
//! - no document: the counter is inserted as `delta` with the default TTL; if a racing
//!   `incr` inserted it first (duplicate key), the next round increments that one;
//! - expired: it counts as absent and is replaced by a new counter, conditionally on
//!   still being expired;
//! - an Int64 the delta would take out of range: `IntegerOverflow`, unchanged;
//! - binary (written by `set`, as `set(b"10")` or `set_as(&10)` do): parsed with
//!   [`cache_core::parse_integer`]; not an integer is `NotAnInteger` and overflow is
//!   `IntegerOverflow`, both unchanged; otherwise the sum is written as an Int64 with a
//!   compare-and-swap on the exact old bytes, so a concurrent writer is never overwritten.
//!   From then on the counter is an Int64 and takes the one-request path.
//!
//! Each round either applies the delta once or changes nothing, so racing `incr`s are
//! exact; a round is lost only to another writer's success, and after 16 lost rounds the
//! call gives up with `Unexpected` rather than spin.
//!
//! # Requests per operation
//!
//! | operation | requests |
//! |---|---|
//! | `get`, `has`, `delete`, `set` | 1 |
//! | `add` | 1 when absent; 2 when present or expired (the insert's duplicate key, then one conditional replace) |
//! | `incr` | 1 on a counter; 2 to create one; 3 the first time on a value written by `set` or an expired entry |
//! | `get_many` | 1 (`find` with `$in`; a further `getMore` per 16 MiB of results) |
//! | `set_many` | 1 unordered `update` command per 16 MiB of documents |
//! | `delete_many` | 1 (`deleteMany` with `$in`, counting only live entries) |
//! | `clear` | 1 (`deleteMany` over the prefix's `_id` range) |
//!
//! # Limits and errors
//!
//! A document is at most 16 MiB: a value over [`MAX_VALUE_LEN`] (16 MiB − 16 KiB), or one
//! whose document with its key would pass 16 MiB, is
//! [`ErrorKind::ValueTooLarge`](cache_core::ErrorKind::ValueTooLarge) before anything is
//! sent, and the old value stays. Server selection failures and network errors are
//! `Unavailable`, a call past its operation timeout is `Timeout` (both temporary);
//! refused credentials, bad URIs and names are `InvalidConfig`. Every error names the
//! operation and, for keyed ones, the key (cut after 64 bytes); the driver's error is
//! its `source()`.
//!
//! # Tested against
//!
//! The conformance suite runs against SecantusDB, a MongoDB-wire server (it answers as
//! MongoDB 8.2, wire version 27), started by `cargo xtask test`. Only standard
//! operations are used (`find`, `findAndModify`, `insert`, `update`, `delete`,
//! `createIndexes`), so the same code runs on MongoDB and Atlas. Where the emulator and
//! MongoDB could differ, this crate follows MongoDB's documented behaviour and does not
//! depend on the difference: for example it never relies on the server's automatic retry
//! of duplicate-key upserts (a concurrent `set` retries once itself) or on the TTL
//! monitor's timing.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod builder;
mod document;
mod error;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use cache_core::{Cache, Capabilities, Result, Ttl};
use mongodb::Collection;
use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::options::ReturnDocument;

use crate::document::{EXPIRES_AT, ID, VALUE};
use crate::error::{Failure, Secrets, is_duplicate_code, is_duplicate_key};

pub use crate::builder::{
    DEFAULT_COLLECTION, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DATABASE, DEFAULT_HEARTBEAT_FREQUENCY, DEFAULT_MAX_CONNECTING,
    DEFAULT_MAX_POOL_SIZE, DEFAULT_OPERATION_TIMEOUT, DEFAULT_SERVER_SELECTION_TIMEOUT, ENV_COLLECTION, ENV_DATABASE,
    ENV_DEFAULT_TTL_SECS, ENV_PREFIX, ENV_URL, MongoCacheBuilder,
};
pub use crate::document::MAX_VALUE_LEN;

/// How often `incr` re-reads and retries when other writers change the document between
/// its requests; each round is lost only to a write that succeeded.
const INCR_ATTEMPTS: usize = 16;

/// Most bytes of `_id`s one `$in` filter carries; more keys are split into several
/// requests, so a filter never nears MongoDB's 16 MiB command limit.
const MAX_FILTER_BYTES: usize = 8 * 1024 * 1024;

/// Most bytes of documents one `update` command carries (MongoDB accepts 16 MiB plus
/// 16 KiB of command); a single larger document is sent alone.
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// MongoDB's `maxWriteBatchSize`.
const MAX_BATCH_LEN: usize = 100_000;

/// A cache in one MongoDB collection. Cheap to clone: clones share the client (and its
/// connection pool) and the settings.
#[derive(Clone)]
pub struct MongoCache {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) collection: Collection<Document>,
    pub(crate) database: String,
    /// Scheme and hosts, for `Debug`; never credentials.
    pub(crate) location: String,
    pub(crate) prefix: String,
    pub(crate) default_ttl: Option<Duration>,
    pub(crate) operation_timeout: Duration,
    pub(crate) secrets: Secrets,
}

impl fmt::Debug for MongoCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("MongoCache")
            .field("location", &inner.location)
            .field("database", &inner.database)
            .field("collection", &inner.collection.name())
            .field("prefix", &inner.prefix)
            .field("default_ttl", &inner.default_ttl)
            .field("operation_timeout", &inner.operation_timeout)
            .finish()
    }
}

impl MongoCache {
    /// Settings for a new cache; finish with [`MongoCacheBuilder::build`].
    pub fn builder() -> MongoCacheBuilder {
        MongoCacheBuilder::new()
    }

    /// This cache's prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The collection this cache keeps its documents in, for reading them with the
    /// driver directly (the shape is in the crate docs).
    pub fn collection(&self) -> &Collection<Document> {
        &self.inner.collection
    }

    fn id(&self, key: &str) -> String {
        let mut id = String::with_capacity(self.inner.prefix.len() + key.len());
        id.push_str(&self.inner.prefix);
        id.push_str(key);
        id
    }

    fn expiry(&self, ttl: Ttl, now: SystemTime) -> Option<DateTime> {
        document::expiry(ttl, self.inner.default_ttl, now)
    }

    /// Runs one operation under the operation timeout and turns its failure into the
    /// caller's error: the one place every operation's errors pass through.
    ///
    /// The driver's work runs as its own task, and only the wait for it is timed: a call
    /// that times out returns at once, while the request it started finishes (or fails)
    /// inside the driver, which then reuses or closes its connection cleanly. Dropping
    /// the driver's future halfway instead abandons its place in the connection pool's
    /// queue and closes connections mid-command; under a stalled network that left the
    /// driver's pool unable to serve any call after the network came back.
    async fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        key: Option<&str>,
        work: impl Future<Output = std::result::Result<T, Failure>> + Send + 'static,
    ) -> Result<T> {
        let limit = self.inner.operation_timeout;
        let outcome = match tokio::time::timeout(limit, tokio::spawn(work)).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(join)) => Err(Failure::Task(join)),
            Err(_) => Err(Failure::Elapsed(limit)),
        };
        outcome.map_err(|failure| failure.into_core(operation, key, &self.inner.secrets))
    }

    async fn get_one(self, id: String) -> std::result::Result<Option<Bytes>, Failure> {
        let date = document::date(SystemTime::now());
        let filter = doc! { ID: id, EXPIRES_AT: document::live(date) };
        match self.inner.collection.find_one(filter).projection(doc! { VALUE: 1 }).await? {
            Some(entry) => document::value_of(entry).map(Some),
            None => Ok(None),
        }
    }

    async fn delete_one(self, id: String) -> std::result::Result<bool, Failure> {
        let date = document::date(SystemTime::now());
        // Only a live entry counts as removed; an expired one is left to the sweep.
        let filter = doc! { ID: id, EXPIRES_AT: document::live(date) };
        Ok(self.inner.collection.delete_one(filter).await?.deleted_count == 1)
    }

    async fn has_one(self, id: String) -> std::result::Result<bool, Failure> {
        let date = document::date(SystemTime::now());
        let filter = doc! { ID: id, EXPIRES_AT: document::live(date) };
        Ok(self.inner.collection.find_one(filter).projection(doc! { ID: 1 }).await?.is_some())
    }

    async fn delete_ids(self, ids: Vec<String>) -> std::result::Result<usize, Failure> {
        let mut removed = 0;
        for chunk in chunks_by_bytes(&ids) {
            let date = document::date(SystemTime::now());
            // Counts only live entries, as `delete` does.
            let filter = doc! { ID: { "$in": chunk }, EXPIRES_AT: document::live(date) };
            let deleted = self.inner.collection.delete_many(filter).await?.deleted_count;
            removed += usize::try_from(deleted).unwrap_or(usize::MAX);
        }
        Ok(removed)
    }

    async fn clear_prefix(self) -> std::result::Result<(), Failure> {
        self.inner.collection.delete_many(document::prefix_range(&self.inner.prefix)).await?;
        Ok(())
    }

    async fn set_one(self, id: String, value: Bytes, ttl: Ttl) -> std::result::Result<(), Failure> {
        let (id, value) = (id.as_str(), &value);
        document::check_size(id, value.len())?;
        let expires_at = self.expiry(ttl, SystemTime::now());
        let collection = &self.inner.collection;
        match collection.replace_one(doc! { ID: id }, document::entry(id, value, expires_at)).upsert(true).await {
            Ok(_) => Ok(()),
            // Two upserts of a new `_id` can race; MongoDB retries such an upsert itself,
            // but not every server does, and by now the document exists to be replaced.
            Err(error) if is_duplicate_key(&error) => {
                collection.replace_one(doc! { ID: id }, document::entry(id, value, expires_at)).upsert(true).await?;
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn add_one(self, id: String, value: Bytes, ttl: Ttl) -> std::result::Result<bool, Failure> {
        let (id, value) = (id.as_str(), &value);
        document::check_size(id, value.len())?;
        let now = SystemTime::now();
        let expires_at = self.expiry(ttl, now);
        let collection = &self.inner.collection;
        match collection.insert_one(document::entry(id, value, expires_at)).await {
            Ok(_) => return Ok(true),
            Err(error) if is_duplicate_key(&error) => {}
            Err(error) => return Err(error.into()),
        }
        // The key exists; it is ours only if it has expired. The replace matches only an
        // expired document, so of many racing `add`s one replaces it and the rest find a
        // live one. It upserts in case the server's sweep removed the expired document in
        // between: then it inserts, or meets the racer that did and loses on its `_id`.
        let filter = doc! { ID: id, EXPIRES_AT: document::expired(document::date(now)) };
        match collection.replace_one(filter, document::entry(id, value, expires_at)).upsert(true).await {
            Ok(outcome) => Ok(outcome.matched_count == 1 || outcome.upserted_id.is_some()),
            Err(error) if is_duplicate_key(&error) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    async fn incr_one(self, id: String, delta: i64) -> std::result::Result<i64, Failure> {
        let id = id.as_str();
        let collection = &self.inner.collection;
        for _ in 0..INCR_ATTEMPTS {
            let now = SystemTime::now();
            let date = document::date(now);
            // Only a live Int64 the delta keeps in range matches, so the server's `$inc`
            // can neither overflow nor meet a value written by `set`.
            let in_range = if delta >= 0 {
                doc! { "$type": "long", "$lte": i64::MAX - delta }
            } else {
                doc! { "$type": "long", "$gte": i64::MIN - delta }
            };
            let filter = doc! { ID: id, VALUE: in_range, EXPIRES_AT: document::live(date) };
            let counted = collection
                .find_one_and_update(filter, doc! { "$inc": { VALUE: delta } })
                .return_document(ReturnDocument::After)
                .projection(doc! { VALUE: 1 })
                .await?;
            if let Some(counter) = counted {
                return integer_of(&counter);
            }
            // No live counter in range: a missing key is created as `delta`. (Not by the
            // `$inc` itself with upsert: under racing upserts of one new `_id` SecantusDB
            // applies the `$inc` yet may answer with no document, and then the count
            // would be lost. MongoDB never does; this way costs one more request only
            // when a counter is created.)
            let fresh = document::counter(id, delta, self.expiry(Ttl::Default, now));
            match collection.insert_one(fresh).await {
                Ok(_) => return Ok(delta),
                Err(error) if is_duplicate_key(&error) => {}
                Err(error) => return Err(error.into()),
            }
            // The `_id` exists but did not match: see why, from one fresh read.
            let Some(current) = collection.find_one(doc! { ID: id }).await? else {
                continue; // removed in between: count from zero on the next round
            };
            if document::has_expired(&current, date) {
                let fresh = document::counter(id, delta, self.expiry(Ttl::Default, now));
                let filter = doc! { ID: id, EXPIRES_AT: document::expired(date) };
                if collection.replace_one(filter, fresh).await?.matched_count == 1 {
                    return Ok(delta);
                }
                continue;
            }
            let old = match current.get(VALUE) {
                Some(Bson::Int64(old)) => *old,
                Some(Bson::Int32(old)) => i64::from(*old),
                Some(Bson::Binary(binary)) => cache_core::parse_integer(&binary.bytes).ok_or(Failure::NotAnInteger)?,
                _ => return Err(Failure::NotAnInteger),
            };
            let new = old.checked_add(delta).ok_or(Failure::Overflow)?;
            if matches!(current.get(VALUE), Some(Bson::Int64(_))) {
                continue; // it changed in between and is in range now
            }
            // Compare-and-swap on the exact old value: the document keeps its `expires_at`.
            let Some(old_value) = current.get(VALUE).cloned() else {
                continue;
            };
            let filter = doc! { ID: id, VALUE: old_value, EXPIRES_AT: document::live(date) };
            if collection.update_one(filter, doc! { "$set": { VALUE: new } }).await?.matched_count == 1 {
                return Ok(new);
            }
        }
        Err(Failure::Contended)
    }

    async fn get_many_ids(self, ids: Vec<String>) -> std::result::Result<HashMap<String, Bytes>, Failure> {
        let mut found = HashMap::with_capacity(ids.len());
        for chunk in chunks_by_bytes(&ids) {
            let date = document::date(SystemTime::now());
            let filter = doc! { ID: { "$in": chunk }, EXPIRES_AT: document::live(date) };
            // At most one document per `_id`: with the limit said, the server closes the
            // cursor with the first batch instead of waiting for a `getMore` to find it empty.
            let batch = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            let limit = i64::try_from(chunk.len()).unwrap_or(i64::MAX);
            let mut cursor = self.inner.collection.find(filter).limit(limit).batch_size(batch).await?;
            while cursor.advance().await? {
                let entry = cursor.deserialize_current()?;
                let id = match entry.get(ID) {
                    Some(Bson::String(id)) => id.clone(),
                    _ => return Err(Failure::Shape(format!("a document's `{ID}` is not a string"))),
                };
                found.insert(id, document::value_of(entry)?);
            }
        }
        Ok(found)
    }

    async fn set_many_ids(self, entries: Vec<(String, Bytes)>, ttl: Ttl) -> std::result::Result<(), Failure> {
        for (id, value) in &entries {
            document::check_size(id, value.len())?;
        }
        let expires_at = self.expiry(ttl, SystemTime::now());
        let mut start = 0;
        while start < entries.len() {
            // One unordered `update` command per batch: each statement a replace with
            // upsert, exactly what `set` sends, and the server applies them in one request.
            let mut bytes = 0;
            let mut end = start;
            while end < entries.len() && end - start < MAX_BATCH_LEN {
                let (id, value) = &entries[end];
                let len = document::entry_len(id, value.len(), expires_at.is_some()) + id.len();
                if end > start && bytes + len > MAX_BATCH_BYTES {
                    break;
                }
                bytes += len;
                end += 1;
            }
            self.update_batch(&entries[start..end], expires_at).await?;
            start = end;
        }
        Ok(())
    }

    async fn update_batch(
        &self,
        entries: &[(String, Bytes)],
        expires_at: Option<DateTime>,
    ) -> std::result::Result<(), Failure> {
        let command = || {
            let updates: Vec<Document> = entries
                .iter()
                .map(|(id, value)| {
                    doc! { "q": { ID: id.as_str() }, "u": document::entry(id, value, expires_at), "upsert": true }
                })
                .collect();
            doc! { "update": self.inner.collection.name(), "updates": updates, "ordered": false }
        };
        let database = self.inner.collection.client().database(&self.inner.database);
        let mut reply = database.run_command(command()).await?;
        // As in `set`: statements that raced another upsert of a new `_id` are safe to
        // send again, once.
        if write_errors(&reply).is_some_and(|errors| errors.iter().all(|&(code, _)| is_duplicate_code(code))) {
            reply = database.run_command(command()).await?;
        }
        if let Some(errors) = write_errors(&reply) {
            let (code, message) = errors.first().cloned().unwrap_or_default();
            return Err(Failure::Refused { code, message, refused: errors.len(), of: entries.len() });
        }
        if let Ok(concern) = reply.get_document("writeConcernError") {
            let code = concern.get_i32("code").unwrap_or_default();
            let message = concern.get_str("errmsg").unwrap_or_default().to_owned();
            return Err(Failure::Refused { code, message, refused: entries.len(), of: entries.len() });
        }
        Ok(())
    }
}

/// The `(code, errmsg)` of each write error in an `update` command's reply, if any.
fn write_errors(reply: &Document) -> Option<Vec<(i32, String)>> {
    let errors = reply.get_array("writeErrors").ok().filter(|errors| !errors.is_empty())?;
    Some(
        errors
            .iter()
            .map(|error| match error {
                Bson::Document(error) => {
                    let code = error.get_i32("code").unwrap_or_default();
                    (code, error.get_str("errmsg").unwrap_or_default().to_owned())
                }
                _ => (0, String::new()),
            })
            .collect(),
    )
}

/// The counter in a document returned by `incr`'s `$inc`.
fn integer_of(counter: &Document) -> std::result::Result<i64, Failure> {
    match counter.get(VALUE) {
        Some(Bson::Int64(value)) => Ok(*value),
        Some(Bson::Int32(value)) => Ok(i64::from(*value)),
        other => Err(Failure::Shape(format!("`$inc` returned {other:?} instead of an Int64"))),
    }
}

/// Splits `ids` into runs whose total length stays under [`MAX_FILTER_BYTES`].
fn chunks_by_bytes(ids: &[String]) -> Vec<&[String]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (index, id) in ids.iter().enumerate() {
        // Each `$in` element costs its string plus about 16 bytes of BSON framing.
        let len = id.len() + 16;
        if index > start && bytes + len > MAX_FILTER_BYTES {
            chunks.push(&ids[start..index]);
            (start, bytes) = (index, 0);
        }
        bytes += len;
    }
    if start < ids.len() {
        chunks.push(&ids[start..]);
    }
    chunks
}

/// Each distinct id once, in first-seen order.
fn distinct(ids: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.filter(|id| seen.insert(id.clone())).collect()
}

#[async_trait]
impl Cache for MongoCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.run("get", Some(key), self.clone().get_one(self.id(key))).await
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()> {
        self.run("set", Some(key), self.clone().set_one(self.id(key), value, ttl)).await
    }

    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
        self.run("add", Some(key), self.clone().add_one(self.id(key), value, ttl)).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.run("delete", Some(key), self.clone().delete_one(self.id(key))).await
    }

    async fn has(&self, key: &str) -> Result<bool> {
        self.run("has", Some(key), self.clone().has_one(self.id(key))).await
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        self.run("incr", Some(key), self.clone().incr_one(self.id(key), delta)).await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let ids = distinct(keys.iter().map(|key| self.id(key)));
        let found = self.run("get_many", None, self.clone().get_many_ids(ids)).await?;
        // Answer in the caller's order; a repeated key gets its value each time.
        Ok(keys.iter().map(|key| found.get(&self.id(key)).cloned()).collect())
    }

    async fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let entries: Vec<(String, Bytes)> = entries.iter().map(|(key, value)| (self.id(key), value.clone())).collect();
        self.run("set_many", None, self.clone().set_many_ids(entries, ttl)).await
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        if keys.is_empty() {
            return Ok(0);
        }
        let ids = distinct(keys.iter().map(|key| self.id(key)));
        self.run("delete_many", None, self.clone().delete_ids(ids)).await
    }

    async fn clear(&self) -> Result<()> {
        self.run("clear", None, self.clone().clear_prefix()).await
    }

    fn capabilities(&self) -> Capabilities {
        let mut capabilities = Capabilities::default();
        capabilities.max_value_len = Some(MAX_VALUE_LEN);
        capabilities.ttl_resolution = Duration::from_millis(1);
        capabilities.shared_between_processes = true;
        capabilities
    }

    /// Clones share loads; handles built separately (even on one client) do not, which
    /// at worst loads a value twice.
    fn single_flight_scope(&self) -> (usize, &str) {
        (Arc::as_ptr(&self.inner) as usize, &self.inner.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_split_by_size_and_keep_every_id() {
        let ids: Vec<String> = (0..3).map(|index| format!("{index}{}", "k".repeat(3 * 1024 * 1024))).collect();
        let chunks = chunks_by_bytes(&ids);
        assert_eq!(chunks.iter().map(|chunk| chunk.len()).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(chunks.concat(), ids);
        assert!(chunks_by_bytes(&[]).is_empty());
    }

    #[test]
    fn repeated_ids_are_asked_once() {
        let ids = distinct(["a", "b", "a", ""].into_iter().map(str::to_owned));
        assert_eq!(ids, ["a", "b", ""]);
    }
}
