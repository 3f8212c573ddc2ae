//! The one async cache contract every store in this family implements.
//!
//! - [`Cache`]: the object-safe trait (`Arc<dyn Cache>` is the normal way to hold one):
//!   `get`, `set`, `add`, `delete`, `has`, `incr`, `get_many`, `set_many`,
//!   `delete_many`, `clear`, `capabilities`, and [`CacheStats`] from the stores that count.
//! - [`Ttl`]: how long an entry lives; [`Capabilities`]: what a store can do.
//! - [`Error`] with an [`ErrorKind`] to act on; a miss is `Ok(None)`, never an error.
//! - [`CacheExt`]: typed values through a [`Codec`] ([`Json`] or [`Postcard`]) and
//!   single-flight [`get_or_insert_with`](CacheExt::get_or_insert_with).
//!
//! Stores live in their own crates (`cache-memory`, `cache-fs`, ...); the `cache` crate
//! bundles them. Code written against this crate works with any of them:
//!
//! ```
//! # #![allow(dead_code)]
//! use cache_core::{Cache, CacheExt, Result, Ttl};
//!
//! /// Counts a page view and returns the total, whatever the store.
//! async fn count_view(cache: &dyn Cache, page: &str) -> Result<i64> {
//!     let views = cache.incr(&format!("views:{page}"), 1).await?;
//!     cache.set_as(&format!("last:{page}"), &views, Ttl::secs(60)).await?;
//!     Ok(views)
//! }
//! ```
//!
//! # Feature flags
//!
//! - `testkit`: the conformance suite ([`testkit`]): one public async function per
//!   behaviour and the [`conformance_tests!`] macro that runs them all on a store.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]
#![deny(rustdoc::broken_intra_doc_links)]

mod cache;
mod capabilities;
mod codec;
mod error;
mod ext;
mod refresh;
mod single_flight;
mod stats;
mod ttl;

#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;

pub use crate::cache::{Cache, format_integer, parse_integer};
pub use crate::capabilities::Capabilities;
pub use crate::codec::{Codec, CodecError, Json, Postcard};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::ext::{BoxError, CacheExt, Typed};
pub use crate::refresh::Refresh;
pub use crate::stats::{CacheStats, MissSettled, ReadCounters};
pub use crate::ttl::Ttl;

/// Re-exported so stores and callers name the same `Bytes` and `async_trait`.
pub use async_trait::async_trait;
pub use bytes::Bytes;
