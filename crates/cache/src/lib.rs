//! One async cache API, and the freedom to keep the bytes where you like.
//!
//! This crate re-exports the contract from `cache-core` ([`Cache`], [`CacheExt`],
//! [`Ttl`], [`Error`]) and every store behind a cargo feature named like the store.
//! Code written against `Arc<dyn Cache>` runs unchanged on any of them.
//!
//! ```
//! # #[cfg(feature = "memory")]
//! # tokio::runtime::Runtime::new().expect("runtime").block_on(async {
//! use std::sync::Arc;
//! use cache::{Cache, CacheExt, Ttl, memory::MemoryCache};
//!
//! let cache: Arc<dyn Cache> = Arc::new(MemoryCache::builder().max_capacity(10_000).build()?);
//! cache.set_as("user:7:name", "Ada", Ttl::secs(60)).await?;
//! assert_eq!(cache.get_as::<String>("user:7:name").await?.as_deref(), Some("Ada"));
//! assert_eq!(cache.incr("visits", 1).await?, 1);
//! # Ok::<(), cache::Error>(())
//! # }).expect("example");
//! ```
//!
//! # Feature flags
//!
//! | feature | store | default |
//! |---|---|---|
//! | `memory` | `memory::MemoryCache`: in process, sharded, bounded, per-entry TTL, eviction policies | yes |
//! | `fs` | `fs::FsCache`: a directory of atomic, checksummed files shared by many processes; streaming values | no |
//! | `registry` | `registry::Registry`: versioned cached files with status and typed, searchable attributes, in SQLite (not a `Cache`) | no |
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

#[doc(inline)]
pub use cache_core::{
    Bytes, Cache, CacheExt, Capabilities, Codec, Error, ErrorKind, Json, Postcard, Result, Ttl, Typed,
};

#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
#[doc(inline)]
pub use cache_memory as memory;

#[cfg(feature = "fs")]
#[cfg_attr(docsrs, doc(cfg(feature = "fs")))]
#[doc(inline)]
pub use cache_fs as fs;

#[cfg(feature = "registry")]
#[cfg_attr(docsrs, doc(cfg(feature = "registry")))]
#[doc(inline)]
pub use cache_registry as registry;
