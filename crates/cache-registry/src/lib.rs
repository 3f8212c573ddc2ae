//! A registry of versioned cached files, indexed in SQLite: downloads and pipeline artifacts
//! with a status, typed searchable attributes, and streaming reads of compressed files and
//! archive members.
//!
//! An item is identified by a URI and JSON params; its [key](item_key) is a hash of both, with
//! the params in a [canonical form](canonical_params) so map order and whitespace never change
//! it. Each [`create`](Registry::create) makes a new version that moves through
//! [`Status`]`::Uninitialized -> Write -> Ready | Failed`, and `Trash` for what
//! [`cleanup`](Registry::cleanup) may delete. [`best`](Registry::best) finds the newest Ready
//! version. Files are written through a [`Writer`] guard that marks the version Ready only
//! once the file is complete and in place.
//!
//! Many threads and processes may use one registry directory at once: see
//! [`Registry`]'s concurrency notes.
//!
//! ```
//! use std::io::{Read, Write};
//! use cache_registry::{Filter, NewItem, Registry};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let registry = Registry::open(dir.path())?;
//! let params = json!({"year": 2024, "region": "eu"});
//!
//! let item = registry.create("https://example.org/sales.csv", &params, &NewItem::new().attr("rows", 2))?;
//! let mut writer = item.write()?;
//! writer.write_all(b"day,total\nmon,3\n")?;
//! writer.commit()?;
//!
//! // Key order in the params does not matter.
//! let best = registry.best("https://example.org/sales.csv", &json!({"region": "eu", "year": 2024}))?;
//! let mut text = String::new();
//! best.expect("a Ready version").open()?.read_to_string(&mut text)?;
//! assert_eq!(text, "day,total\nmon,3\n");
//!
//! let found = registry.search(Filter::attr("rows").ge(2))?;
//! assert_eq!(found.len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! From async code, `AsyncRegistry` (default feature `async`) makes the same calls on
//! Tokio's blocking pool and streams item files through `AsyncRead`/`AsyncWrite`.
//!
//! Reading: [`Item::open`] decodes gzip, bzip2 and xz (by extension, or by magic bytes when
//! there is none) and the single file of a zip; [`Item::open_member`] reads one member of a zip
//! or of a tar, plain or `.gz`/`.bz2`/`.xz`. All decoders are pure Rust or vendored: nothing
//! needs a system library. An xz stream's decoder memory is capped
//! ([`RegistryBuilder::xz_memory_limit`]), and a zip member fails as soon as it streams past
//! its declared size.
//!
//! # Feature flags
//!
//! - `async` (default): `AsyncRegistry`, `AsyncReader`, `AsyncWriter`, over Tokio.
#![doc(test(attr(deny(warnings))))]
#![deny(rustdoc::broken_intra_doc_links)]

// Layers, each using only those listed before it: values and errors; filters compiled to
// SQL text; `db`, which runs every SQL statement; `store`, what every handle shares; file
// decoding; then `Item`, `Writer`, cleanup, and `Registry` on top.
mod attr;
mod error;
mod key;
mod status;

mod query;

mod db;

mod read;
mod store;

mod item;
mod write;

mod cleanup;
mod registry;

#[cfg(feature = "async")]
mod async_registry;

#[cfg(feature = "async")]
pub use async_registry::{AsyncBestOrNew, AsyncReader, AsyncRegistry, AsyncWriter};
pub use attr::{AttrValue, Attributes};
pub use cleanup::{Cleanup, CleanupReport, Reason, Removed};
pub use error::{Error, ErrorKind, Result};
pub use item::{Item, NewItem};
pub use key::{canonical_params, item_key};
pub use query::{AttrFilter, Filter, Order, Query};
pub use read::Reader;
pub use registry::{BestOrNew, DATABASE_FILE, FILES_DIR, Registry, RegistryBuilder};
pub use status::Status;
pub use write::Writer;
