//! `DynamoCache`: one DynamoDB table as a [`cache_core::Cache`], with DynamoDB's own TTL,
//! conditional `add` and atomic counters.
//!
//! - **One item per entry**, in a table with a string partition key:
//!
//!   | attribute (default name) | type | holds |
//!   |---|---|---|
//!   | `cache_key` | S | `prefix + key` (see *Keys* below) |
//!   | `value` | B | the value's bytes; a counter written by `incr` is an N |
//!   | `expires_at` | N | expiry in epoch seconds (DynamoDB's TTL format); absent = never |
//!
//!   Any tool can read and write this shape: an item written by the plain SDK is read by
//!   `get` (B as bytes, S as UTF-8, N as decimal ASCII), and the names are settings.
//! - **Expiry** is checked on every read: DynamoDB's TTL sweep can lag by days, so an
//!   expired item is a miss (and counts as absent for `add` and `incr`) however long it
//!   lingers. Lifetimes are whole seconds, rounded up, never down.
//!   [`DynamoCache::server_ttl`] tells whether DynamoDB also deletes expired items, so an
//!   operator can spot a table that only grows: `build` turns TTL on when it creates the
//!   table, and reports `Unknown` (without failing) on an emulator that has no TTL.
//! - **Atomic where it matters**: `add` is a conditional put
//!   (`attribute_not_exists(key) OR expires_at <= now`), so of many racing `add`s one wins;
//!   `incr` is one `UpdateItem ADD` with the `i64` bounds in its condition, so overflow is
//!   an error, never a silent 38-digit number.
//! - **Prefixes are literal**: a cache with prefix `P` stores `key` under `P + key`, and
//!   `clear` removes every item whose key starts with `P` (a parallel scan with
//!   `begins_with`); without a prefix `clear` empties the table, but never deletes it.
//! - **Limits checked before sending**: a value that would take an item past DynamoDB's
//!   400 KB is `ValueTooLarge` with no request sent
//!   ([`Capabilities::max_value_len`](cache_core::Capabilities::max_value_len), about 408 KB).
//! - **Errors you can act on**: throttling, 5xx and network failures are `Unavailable` or
//!   `Timeout` (temporary); a missing table, refused credentials or a wrong region are
//!   `InvalidConfig` naming the table, region and endpoint. Secrets never appear in
//!   `Debug` or in errors.
//!
//! # Requests per operation
//!
//! | operation | requests |
//! |---|---|
//! | `get`, `has`, `set`, `add`, `delete` | 1 (`GetItem`, `PutItem`, `DeleteItem`) |
//! | `incr` | 1 `UpdateItem` on a live counter (or a missing key, without a default TTL); else 2-3 |
//! | `get_many(n)` | ⌈distinct / 100⌉ `BatchGetItem`, sent concurrently |
//! | `set_many(n)` | ⌈distinct / 25⌉ `BatchWriteItem`, sent concurrently |
//! | `delete_many(n)` | ⌈distinct / 100⌉ `BatchGetItem` (to count live entries), then ⌈distinct / 25⌉ `BatchWriteItem` |
//! | `clear` | a 4-segment parallel `Scan`, plus one `BatchWriteItem` per 25 items found |
//!
//! Items DynamoDB returns as unprocessed (throttled) are retried with jittered backoff
//! until [`DynamoCacheBuilder::batch_deadline`]. The count `delete_many` returns is of the
//! entries live just before the delete (`BatchWriteItem` does not say what it removed):
//! exact unless another writer touches the same keys in between.
//!
//! # Keys
//!
//! Any UTF-8 key works. DynamoDB refuses an empty partition key and one over 2048 bytes,
//! so a full key (prefix + key) of 1 to 1024 bytes is stored as it is, and a longer or
//! empty one under a form no literal key can take: its first 1024 bytes, a NUL and its
//! SHA-256 in hex (the empty key: 1025 NULs). Such items still start with their prefix,
//! so `clear` finds them. Prefixes are at most 1000 bytes. One consequence: a handle
//! whose prefix starts with NUL also clears the unprefixed empty key.
//!
//! # Timeouts and retries
//!
//! Every request is bounded: connecting by [`DEFAULT_CONNECT_TIMEOUT`] (2 s), each
//! attempt by [`DEFAULT_ATTEMPT_TIMEOUT`] (3 s), the whole request with its retries by
//! [`DEFAULT_OPERATION_TIMEOUT`] (7 s), with at most [`DEFAULT_MAX_ATTEMPTS`] (3)
//! attempts in the SDK's standard retry mode. The builder changes each; the constants say
//! why each default was chosen. A given [`aws_sdk_dynamodb::Client`] keeps its own.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use cache_core::{Cache, CacheExt, Ttl};
//! use cache_dynamo::DynamoCache;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cache_core::Result<()> {
//! let cache = DynamoCache::builder("cache")
//!     .namespace("prod-")                  // the table is `prod-cache`
//!     .region("eu-west-1")                 // credentials: the standard AWS chain
//!     .prefix("sessions:")
//!     .default_ttl(Duration::from_secs(3600))
//!     .create_table_if_missing(true)       // on-demand billing, TTL on `expires_at`
//!     .build()
//!     .await?;
//!
//! cache.set("user:7", "Ada".into(), Ttl::secs(60)).await?;
//! assert!(!cache.add("user:7", "Bob".into(), Ttl::Default).await?, "add never overwrites a live entry");
//! let visits = cache.incr("visits", 1).await?;
//! let same: Option<i64> = cache.get_as("visits").await?;
//! assert_eq!(same, Some(visits));
//! # Ok(())
//! # }
//! ```
//!
//! For DynamoDB Local or an emulator, add `.endpoint_url("http://127.0.0.1:8000")` and
//! `.credentials("any", "any")`. [`DynamoCache::from_env`] reads the same settings from
//! `CACHE_DYNAMO_*` variables.
#![doc(test(attr(deny(warnings))))]

mod batch;
mod builder;
mod cache;
mod error;
mod keys;

pub use crate::builder::{
    DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_BATCH_DEADLINE, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_OPERATION_TIMEOUT, DynamoCacheBuilder, ServerTtl,
};
pub use crate::cache::DynamoCache;
/// The SDK this crate is built on, for callers who pass their own client.
pub use aws_sdk_dynamodb;
