//! `FsCache`: a [`Cache`] kept as a directory of atomic, checksummed files that many
//! processes share safely, with values that can be streamed in and out.
//!
//! ```
//! use cache_core::{Cache, Ttl};
//! use cache_fs::FsCache;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cache_core::Result<()> {
//! # let tmp = tempfile::tempdir().map_err(|e| cache_core::Error::new(cache_core::ErrorKind::Unexpected, "doc", "tempdir").with_source(e))?;
//! # let dir = tmp.path().join("cache");
//! // The directory is created (0700) if it is missing.
//! let cache = FsCache::builder(&dir).prefix("thumbnails:").max_bytes(512 << 20).build().await?;
//! cache.set("cat.png", b"...".to_vec().into(), Ttl::secs(3600)).await?;
//! assert_eq!(cache.get("cat.png").await?.as_deref(), Some(&b"..."[..]));
//!
//! // Another namespace on the same files, without rebuilding anything.
//! let avatars = cache.with_prefix("avatars:");
//! assert_eq!(avatars.get("cat.png").await?, None);
//!
//! // The same operations without futures, for code that is not async.
//! assert_eq!(cache.sync().incr("views", 1)?, 1);
//!
//! // Values larger than memory go through the streaming API.
//! let written = cache.set_stream("video", &b"a long stream"[..], Ttl::Never).await?;
//! let mut reader = cache.get_stream("video").await?.expect("just written");
//! let mut back = Vec::new();
//! tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut back).await.expect("read");
//! assert_eq!(back.len() as u64, written);
//! # Ok(())
//! # }
//! ```
//!
//! # Keys and prefixes
//!
//! A handle with prefix `P` addresses the full key `P + key`, the same rule as every store
//! in this family: an unprefixed `set("app:config")` is what the `app:` handle's
//! `get("config")` returns, and the other way round. [`clear`](Cache::clear) on a handle
//! with prefix `P` removes every entry whose full key starts with `P`, whoever wrote it
//! (`clear` of `ab` removes `abc` written through `a`; `clear` of `app:` leaves `apq`); an
//! unprefixed `clear` removes every entry in the directory. Give prefixes that do not
//! nest (`app:` and `app:v2:`) when one handle's `clear` must not reach another's keys.
//!
//! [`FsCache::with_prefix`] gives a handle with another prefix on the same open store
//! (its lock files, its count), without walking the directory again.
//!
//! # Layout
//!
//! ```text
//! <dir>/entries/00 .. ff/                      256 fan-out directories, made by `build`
//! <dir>/entries/ab/abcd…(64 hex)               an entry: SHA-256 of the full key
//! <dir>/entries/ab/.tmp-<pid>-<n>              temp files being written
//! <dir>/locks/00 .. ff, <dir>/locks/sweep      lock files (created on first use)
//! <dir>/usage                                  the shared count of entries and bytes
//! ```
//!
//! An entry's file name is the SHA-256 of its full key, so any key (`../`, NUL, 10 KiB) is
//! a safe path. One level of 256 directories holds millions of entries on ext4, XFS or
//! btrfs (hashed directory indexes), and creating all 256 up front means no write pays
//! for a `mkdir`. The entry holds its full key, which is compared on read: a hash
//! collision is a miss, never another key's value.
//!
//! An entry is a 48-byte header (magic, format version, expiry in Unix milliseconds,
//! the lengths of the writer's prefix, key and value, an XXH3-64 checksum), then the
//! prefix, the key and the value. A file whose lengths do not add up to its size, or whose
//! checksum does not match, reads as a miss and is removed: never wrong data, never an
//! error. [`add`](Cache::add) and [`delete`](Cache::delete) verify the checksum too, so
//! they agree with [`get`](Cache::get): a damaged entry is absent.
//!
//! Earlier versions of this crate kept each prefix in its own `ns-<hash>` directory;
//! those directories are not read. Remove them by hand.
//!
//! # Writes, durability and processes
//!
//! Every write goes to a temp file in the entry's own directory, which is then renamed
//! over the entry: a reader, in any process, sees the old entry or the new one, never a
//! mix, and a writer killed at any point leaves the old entry in place (and a temp file,
//! which a [sweep](FsCache::sweep) or `clear` removes once it is an hour old).
//! [`Durability`] says what survives a power cut as well.
//!
//! Entry files are created `0600` and directories `0700` unless configured otherwise.
//! Entries are opened with `O_NOFOLLOW`, so a symlink planted at an entry path reads as
//! a miss and is removed, and a write replaces the link, never its target. The cache's
//! own directories are trusted: keep the cache directory private (the default modes do).
//!
//! Writers in any process take a per-shard lock (an `flock(2)` on `<dir>/locks/<shard>`,
//! 256 shards keyed by the entry name's first byte, plus a mutex per shard inside the
//! process) around the moment they decide and rename, which makes [`add`](Cache::add),
//! [`incr`](Cache::incr) and [`delete`](Cache::delete) atomic across processes. Readers
//! never lock.
//!
//! # Capacity
//!
//! [`FsCacheBuilder::max_entries`] and [`FsCacheBuilder::max_bytes`] bound the whole
//! directory, across processes. Every process adds its writes to a shared count in
//! `<dir>/usage` (under an `flock`, in batches of at most 1/64 of the limit, so several
//! processes together overshoot it by a few percent at most before one of them sees it).
//! When the count goes over a limit, a sweep walks the directory (one at a time across
//! processes): it removes every expired entry first, then the least recently read or
//! written entries until the directory is at 90% of the limit, and stores the exact
//! count it found. An entry that never expires is therefore never removed while an
//! expired one remains. Recency is the file's access time, which a read refreshes at
//! most once a second. A process killed between a write and its batch loses at most one
//! batch from the count; the next sweep (and every `build`) recounts the disk.
//!
//! With `max_bytes`, a value may take at most half of it
//! ([`Capabilities::max_value_len`]), and the whole entry file (48 bytes, the full key and
//! the value) at most 90%: a larger `set` is
//! [`ErrorKind::ValueTooLarge`](cache_core::ErrorKind::ValueTooLarge) before anything is
//! written, and the old value stays.
//!
//! # Async and blocking
//!
//! File system calls block, so the async API keeps them off tokio's workers except where
//! they cannot wait for the disk:
//!
//! - A `get` or `has` of a small entry (64 KiB or less) first tries the page cache on the
//!   calling task: `open` (`O_NOATIME`), `fstat`, one `preadv2` with `RWF_NOWAIT`, which
//!   fails instead of waiting when any byte is not cached, `close`, and the checksum. A
//!   miss on a missing file is answered there too. Anything else (a large, uncached,
//!   expired or damaged entry, an access time due for a refresh) goes to the blocking
//!   path. Cost under a slow disk: the `open` still reads the directory from disk when its
//!   blocks are not cached, blocking the worker for that one read;
//!   [`FsCacheBuilder::cached_reads(false)`](FsCacheBuilder::cached_reads) sends every
//!   read to the blocking pool instead.
//! - Everything else runs as one `tokio::task::spawn_blocking` task (about 10 to 20 µs of
//!   hand-off on a small VM): a `get` there is `open`, `fstat`, one `read` and `close`
//!   (entries over 64 KiB add a size probe and a final empty `read`; a read refreshes the
//!   access time with `futimens` at most once a second per entry), and a checksum pass. A
//!   `set` is `open` of a temp file, one `writev`, `close`, and under the shard lock an
//!   `lstat` and the `rename`; writes stay off the workers because a write can wait for
//!   the disk at any step (dirty-page throttling, journal commits). The batch operations
//!   (`get_many`, `set_many`, `delete_many`) make one hand-off for all their keys.
//! - Streams read and write through `tokio::fs::File`, which does the same in chunks.
//! - [`FsCache::sync`] runs the same calls on the calling thread, with no hand-off.
//!
//! # Errors
//!
//! An unwritable or non-directory path, or a setting the cache cannot use, is
//! [`ErrorKind::InvalidConfig`](cache_core::ErrorKind::InvalidConfig) at
//! [`build`](FsCacheBuilder::build). A full disk or quota is
//! [`ErrorKind::Unavailable`](cache_core::ErrorKind::Unavailable) (temporary: space may
//! come back), and the old value stays readable; any other file system failure is
//! [`ErrorKind::Unexpected`](cache_core::ErrorKind::Unexpected). Each names the key of a
//! keyed operation and the path in its context, and carries the `io::Error` as its
//! source. A damaged entry is never an error.
//!
//! Linux is the target; the crate uses Unix file modes, `O_NOFOLLOW` and `flock`.
#![cfg(unix)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]
#![deny(rustdoc::broken_intra_doc_links)]

mod entry;
mod error;
mod lock;
mod store;
mod stream;
mod sync;
mod usage;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cache_core::{Cache, CacheStats, Capabilities, MissSettled, Result, Ttl};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::entry::{HEADER_LEN, Header};
use crate::error::FsError;
use crate::store::{Settings, Store, SweepWait, expiry_ms};

pub use crate::stream::ValueReader;
pub use crate::sync::SyncFsCache;

/// Entry files are private to the owner unless configured otherwise.
pub const DEFAULT_FILE_MODE: u32 = 0o600;
/// Directories are private to the owner unless configured otherwise.
pub const DEFAULT_DIR_MODE: u32 = 0o700;

/// How long the caller waits for a write to reach stable storage.
///
/// Every level writes a temp file and renames it, so a crashed or killed *process* never
/// leaves a torn entry. The levels differ in what survives a power cut or kernel crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// No `fsync`. After a power cut, a recent write may be lost, or (on file systems
    /// that do not order data before renames) its file may be empty or zero-filled; the
    /// checksum turns that into a miss. The fastest; a cache can usually recompute.
    #[default]
    None,
    /// `fdatasync` the temp file before the rename: a write that returned is either
    /// fully there after a power cut or the previous value is.
    SyncData,
    /// As `SyncData`, and `fsync` the directory after the rename (and after creating a
    /// directory), so a write that returned survives a power cut.
    SyncAll,
}

/// Settings for an [`FsCache`]; see [`FsCache::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct FsCacheBuilder {
    directory: Option<PathBuf>,
    prefix: String,
    default_ttl: Option<Duration>,
    durability: Durability,
    max_entries: Option<u64>,
    max_bytes: Option<u64>,
    file_mode: u32,
    dir_mode: u32,
    create_directory: bool,
    cached_reads: bool,
}

impl Default for FsCacheBuilder {
    fn default() -> Self {
        FsCacheBuilder::new()
    }
}

impl FsCacheBuilder {
    /// A builder with no directory yet; set one with [`directory`](Self::directory).
    pub fn new() -> Self {
        FsCacheBuilder {
            directory: None,
            prefix: String::new(),
            default_ttl: None,
            durability: Durability::None,
            max_entries: None,
            max_bytes: None,
            file_mode: DEFAULT_FILE_MODE,
            dir_mode: DEFAULT_DIR_MODE,
            create_directory: true,
            cached_reads: true,
        }
    }

    /// The directory that holds the cache. Several caches, in one process or many, may
    /// share it; they see the same entries (see the crate docs on prefixes).
    pub fn directory(mut self, directory: impl Into<PathBuf>) -> Self {
        self.directory = Some(directory.into());
        self
    }

    /// The prefix of this handle's keys (default: none): it addresses the full key
    /// `prefix + key`, and its `clear` removes every full key that starts with `prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The lifetime of entries written with [`Ttl::Default`] (default: never expire).
    /// Zero is refused at [`build`](Self::build): leave it unset for entries that never
    /// expire.
    pub fn default_ttl(mut self, lifetime: Duration) -> Self {
        self.default_ttl = Some(lifetime);
        self
    }

    /// What a write waits for before it returns (default: [`Durability::None`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The most entries the directory keeps before a sweep evicts (default: no limit).
    /// Zero is refused at [`build`](Self::build): leave it unset for no limit.
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.max_entries = Some(max_entries);
        self
    }

    /// The most bytes of entry files (headers, keys and values) the directory keeps
    /// before a sweep evicts (default: no limit). A value may take at most half of it.
    /// Zero is refused at [`build`](Self::build): leave it unset for no limit.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = Some(max_bytes);
        self
    }

    /// Permission bits of entry and lock files (default `0o600`); must include `0o600`.
    pub fn file_mode(mut self, mode: u32) -> Self {
        self.file_mode = mode;
        self
    }

    /// Permission bits of the directories the cache creates (default `0o700`); must
    /// include `0o700`.
    pub fn dir_mode(mut self, mode: u32) -> Self {
        self.dir_mode = mode;
        self
    }

    /// Whether `build` creates a missing directory, its parents included, with
    /// [`dir_mode`](Self::dir_mode) (default: yes). Turn it off to make a missing
    /// directory an error, for instance when its absence means a mount is missing.
    pub fn create_directory(mut self, create: bool) -> Self {
        self.create_directory = create;
        self
    }

    /// Whether the async `get` and `has` answer on the calling task when the entry is
    /// small (64 KiB or less) and wholly in the page cache (default: yes), instead of
    /// handing every read to tokio's blocking pool. The bytes are read with `RWF_NOWAIT`,
    /// so the task never waits for the disk's data; what it may still wait for is the
    /// `open` of the entry's path when the directory blocks are not cached (one disk read,
    /// on a slow disk milliseconds). Turn it off when even that must never happen on an
    /// async worker.
    pub fn cached_reads(mut self, enabled: bool) -> Self {
        self.cached_reads = enabled;
        self
    }

    /// Checks the settings and the directory, creates the cache's own subdirectories, and
    /// counts what the directory already holds (one walk of it, removing expired entries).
    /// For another prefix on an open cache, [`FsCache::with_prefix`] skips all of that.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`](cache_core::ErrorKind::InvalidConfig), with the path in
    /// the context, when no directory was set, it is missing (and `create_directory` is
    /// off) or cannot be created, is not a directory or is not writable, when a mode lacks
    /// the owner's bits, or when `max_entries`, `max_bytes` or `default_ttl` is zero.
    pub async fn build(self) -> Result<FsCache> {
        let operation = "build";
        let settings = self.settings().map_err(|error| error.into_core(operation))?;
        let create = self.create_directory;
        let store = tokio::task::spawn_blocking(move || -> std::result::Result<Store, FsError> {
            open_root(&settings.root, create, settings.dir_mode)?;
            let store = Store::new(settings);
            store.prepare()?;
            store.sweep(SweepWait::Wait)?;
            Ok(store)
        })
        .await
        .map_err(|error| FsError::Task(error).into_core(operation))?
        .map_err(|error| error.into_core(operation))?;
        Ok(FsCache { store: Arc::new(store), prefix: self.prefix.into() })
    }

    fn settings(&self) -> std::result::Result<Settings, FsError> {
        let root = self.directory.clone().ok_or_else(|| FsError::Config("no directory was set".into()))?;
        if self.file_mode & !0o7777 != 0 || self.file_mode & DEFAULT_FILE_MODE != DEFAULT_FILE_MODE {
            return Err(FsError::Config(format!("file mode {:o} must be within 7777 and include 600", self.file_mode)));
        }
        if self.dir_mode & !0o7777 != 0 || self.dir_mode & DEFAULT_DIR_MODE != DEFAULT_DIR_MODE {
            return Err(FsError::Config(format!(
                "directory mode {:o} must be within 7777 and include 700",
                self.dir_mode
            )));
        }
        // A limit of 0 would make a cache that keeps nothing, and a default lifetime of 0
        // entries that die as they are written: refused, as MemoryCache refuses them.
        if self.max_entries == Some(0) {
            return Err(FsError::Config("max_entries must be at least 1; leave it unset for no limit".into()));
        }
        if self.max_bytes == Some(0) {
            return Err(FsError::Config("max_bytes must be at least 1; leave it unset for no limit".into()));
        }
        if self.default_ttl == Some(Duration::ZERO) {
            return Err(FsError::Config(
                "default_ttl must not be zero; leave it unset (or write with Ttl::Never) for entries that never expire"
                    .into(),
            ));
        }
        Ok(Settings {
            root,
            default_ttl: self.default_ttl,
            durability: self.durability,
            max_entries: self.max_entries,
            max_bytes: self.max_bytes,
            file_mode: self.file_mode,
            dir_mode: self.dir_mode,
            cached_reads: self.cached_reads,
        })
    }
}

fn open_root(root: &Path, create: bool, dir_mode: u32) -> std::result::Result<(), FsError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::metadata(root) {
        Ok(metadata) if metadata.is_dir() => Ok(()),
        Ok(_) => Err(FsError::Directory { what: "not a directory", path: root.to_path_buf(), source: None }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && create => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(dir_mode)
            .create(root)
            .and_then(|()| std::fs::set_permissions(root, std::fs::Permissions::from_mode(dir_mode)))
            .map_err(|source| FsError::Directory {
                what: "cannot create the cache directory",
                path: root.to_path_buf(),
                source: Some(source),
            }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(FsError::Directory {
            what: "the cache directory does not exist (and create_directory is off)",
            path: root.to_path_buf(),
            source: Some(error),
        }),
        Err(error) => Err(FsError::Directory {
            what: "cannot reach the cache directory",
            path: root.to_path_buf(),
            source: Some(error),
        }),
    }
}

/// What [`FsCache::sweep`] removed and found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweepReport {
    /// Expired entries removed.
    pub expired: u64,
    /// Truncated or corrupt entries removed.
    pub corrupt: u64,
    /// Live entries removed to get under the limits, least recently used first.
    pub evicted: u64,
    /// Temp files of writers that died (older than an hour) removed.
    pub stale_temps: u64,
    /// Entries left in the directory.
    pub entries: u64,
    /// Bytes of entry files left in the directory.
    pub bytes: u64,
}

/// A [`Cache`] stored as files in a directory; see the [crate docs](crate).
///
/// Cloning is cheap and shares the handle (its lock files and its count), as does
/// [`with_prefix`](Self::with_prefix).
#[derive(Debug, Clone)]
pub struct FsCache {
    store: Arc<Store>,
    prefix: Arc<str>,
}

/// Chunk size for streaming a value in: large enough to keep syscalls few, small enough
/// that memory stays bounded whatever the value's size.
const STREAM_CHUNK: usize = 256 * 1024;

impl FsCache {
    /// A builder for a cache in `directory`.
    pub fn builder(directory: impl Into<PathBuf>) -> FsCacheBuilder {
        FsCacheBuilder::new().directory(directory)
    }

    /// A handle on the same open store whose keys live under `prefix` instead: it shares
    /// this handle's settings, lock files and count, and costs no file system call.
    ///
    /// ```
    /// # use cache_core::{Cache, Ttl};
    /// # use cache_fs::FsCache;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cache_core::Result<()> {
    /// # let tmp = tempfile::tempdir().map_err(|e| cache_core::Error::new(cache_core::ErrorKind::Unexpected, "doc", "tempdir").with_source(e))?;
    /// let root = FsCache::builder(tmp.path()).build().await?;
    /// let users = root.with_prefix("users:");
    /// users.set("7", "Ada".into(), Ttl::Never).await?;
    /// // The literal rule: `users:` + `7` is the full key `users:7`.
    /// assert_eq!(root.get("users:7").await?.as_deref(), Some(&b"Ada"[..]));
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_prefix(&self, prefix: impl Into<String>) -> FsCache {
        FsCache { store: Arc::clone(&self.store), prefix: prefix.into().into() }
    }

    /// The synchronous API: the same operations as [`Cache`] on the calling thread,
    /// without a hand-off to tokio's blocking pool. For code that is not async, or async
    /// code that accepts blocking its thread for the duration of a few file system calls.
    ///
    /// ```
    /// # use cache_core::Ttl;
    /// # use cache_fs::FsCache;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cache_core::Result<()> {
    /// # let tmp = tempfile::tempdir().map_err(|e| cache_core::Error::new(cache_core::ErrorKind::Unexpected, "doc", "tempdir").with_source(e))?;
    /// let cache = FsCache::builder(tmp.path()).build().await?;
    /// let direct = cache.sync();
    /// direct.set("k", b"v", Ttl::Never)?;
    /// assert_eq!(direct.get("k")?.as_deref(), Some(&b"v"[..]));
    /// assert!(direct.delete("k")?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn sync(&self) -> SyncFsCache<'_> {
        SyncFsCache::new(&self.store, &self.prefix)
    }

    /// The directory given to the builder.
    pub fn directory(&self) -> &Path {
        &self.store.settings().root
    }

    /// This cache's prefix (`""` = none).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The directory holding the entries (of every prefix).
    pub fn entries_directory(&self) -> &Path {
        self.store.entries_dir()
    }

    /// The file that holds (or would hold) `key`'s entry, for inspection and tooling.
    pub fn entry_path(&self, key: &str) -> PathBuf {
        self.store.slot(&self.prefix, key).path
    }

    /// Entries in the directory (all prefixes) as this handle knows them: the shared
    /// count as of this handle's last batch or sweep, plus its own writes since. Costs
    /// two atomic loads; [`sweep`](Self::sweep) recounts from the disk.
    pub fn len(&self) -> u64 {
        self.store.len()
    }

    /// Hits, misses, coalesced get-or-compute requests, inserts, evictions and
    /// expirations of this process's handles on this store (clones and
    /// [`with_prefix`](Self::with_prefix) handles share them); the same as
    /// [`Cache::stats`], without the `Option`. Another process, or another `build` on
    /// the same directory, counts its own. Evictions and expirations count what sweeps
    /// removed; an expired entry a read finds and removes is a miss.
    ///
    /// ```
    /// # use cache_core::{Cache, Ttl};
    /// # use cache_fs::FsCache;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cache_core::Result<()> {
    /// # let tmp = tempfile::tempdir().map_err(|e| cache_core::Error::new(cache_core::ErrorKind::Unexpected, "doc", "tempdir").with_source(e))?;
    /// let cache = FsCache::builder(tmp.path()).build().await?;
    /// cache.set("k", "v".into(), Ttl::Never).await?;
    /// cache.get("k").await?;
    /// cache.get("missing").await?;
    /// let stats = cache.stats();
    /// assert_eq!((stats.hits, stats.misses, stats.inserts), (1, 1, 1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn stats(&self) -> CacheStats {
        self.store.stats()
    }

    /// Whether [`len`](Self::len) is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of entry files (headers, keys and values) in the directory, known the same
    /// way as [`len`](Self::len).
    pub fn size_bytes(&self) -> u64 {
        self.store.size_bytes()
    }

    /// Walks the directory: removes expired and corrupt entries and dead writers' temp
    /// files, evicts least recently used entries while over a limit, and recounts
    /// [`len`](Self::len) and [`size_bytes`](Self::size_bytes) for every process. Writes
    /// run it by themselves when they take the directory over a limit. Waits for a sweep
    /// running in another process to finish first.
    ///
    /// # Errors
    /// When the directory cannot be listed or a lock file cannot be opened.
    pub async fn sweep(&self) -> Result<SweepReport> {
        let swept = self.run("sweep", |store, _| store.sweep(SweepWait::Wait)).await?;
        let swept = swept.unwrap_or_default();
        Ok(SweepReport {
            expired: swept.expired,
            corrupt: swept.corrupt,
            evicted: swept.evicted,
            stale_temps: swept.stale_temps,
            entries: swept.entries,
            bytes: swept.bytes,
        })
    }

    /// Stores everything `reader` yields under `key`, without holding it in memory, and
    /// returns the value's length. Like [`set`](Cache::set), the entry is replaced
    /// atomically once the whole value is on disk; until then readers see the old one.
    ///
    /// # Errors
    /// When `reader` fails (the old value is kept), or the disk does: a full disk is
    /// [`ErrorKind::Unavailable`](cache_core::ErrorKind::Unavailable), and the old value
    /// stays readable. A value over [`Capabilities::max_value_len`] is
    /// [`ErrorKind::ValueTooLarge`](cache_core::ErrorKind::ValueTooLarge) as soon as the
    /// reader goes past it; the old value stays.
    pub async fn set_stream<R>(&self, key: &str, mut reader: R, ttl: Ttl) -> Result<u64>
    where
        R: AsyncRead + Unpin + Send,
    {
        let operation = "set_stream";
        let fail = |error: FsError| error.into_keyed(operation, key);
        let expires_ms = expiry_ms(ttl.lifetime(self.store.settings().default_ttl));
        let slot = self.store.slot(&self.prefix, key);
        let prefix = self.prefix.as_bytes().to_vec();
        let mut placeholder = Vec::with_capacity(HEADER_LEN + prefix.len() + key.len());
        placeholder.resize(HEADER_LEN, 0);
        placeholder.extend_from_slice(&prefix);
        placeholder.extend_from_slice(key.as_bytes());
        let store = Arc::clone(&self.store);
        let dir = slot.dir.clone();
        let slot_for_create = store::Slot { shard: slot.shard, dir: slot.dir.clone(), path: slot.path.clone() };
        let (file, temp) = self
            .blocking(move || {
                let (mut file, temp) = store.create_temp(&slot_for_create)?;
                let path = temp.path().unwrap_or(&slot_for_create.dir).to_path_buf();
                std::io::Write::write_all(&mut file, &placeholder)
                    .map_err(|error| FsError::io("writing", &path, error))?;
                Ok((file, temp))
            })
            .await
            .map_err(fail)?;
        let temp_path = temp.path().unwrap_or(&dir).to_path_buf();
        let io_error = |action: &'static str, error| fail(FsError::io(action, &temp_path, error));

        let mut checksum = entry::Checksum::new();
        checksum.update(&prefix);
        checksum.update(key.as_bytes());
        let mut file = tokio::fs::File::from_std(file);
        let mut chunk = vec![0; STREAM_CHUNK];
        let mut value_len: u64 = 0;
        loop {
            let read = reader.read(&mut chunk).await.map_err(|error| fail(FsError::Source(error)))?;
            if read == 0 {
                break;
            }
            let bytes = &chunk[..read];
            value_len += read as u64;
            // Refused as soon as it cannot fit; dropping `temp` removes what was written.
            self.store.check_fits(prefix.len() + key.len(), value_len).map_err(fail)?;
            checksum.update(bytes);
            file.write_all(bytes).await.map_err(|error| io_error("writing", error))?;
        }
        file.flush().await.map_err(|error| io_error("writing", error))?;
        let file = file.into_std().await;

        let mut header = Header::new(expires_ms, &prefix, key.as_bytes(), value_len);
        header.checksum = checksum.finish(&header);
        let file_len = header.file_len().unwrap_or(0);
        let store = Arc::clone(&self.store);
        self.blocking(move || {
            let path = temp.path().unwrap_or(&slot.dir).to_path_buf();
            std::os::unix::fs::FileExt::write_all_at(&file, &header.encode(), 0)
                .map_err(|error| FsError::io("writing", &path, error))?;
            store.sync_file(&file, &path)?;
            drop(file);
            store.publish(&slot, temp, file_len)
        })
        .await
        .map_err(fail)?;
        Ok(value_len)
    }

    /// A reader over `key`'s value, or `None` on a miss. The value is not loaded into
    /// memory; [`ValueReader::len`] says how long it is.
    ///
    /// The header and key are checked before this returns; the value's checksum is checked
    /// as it is read, and a value that does not match (a file damaged on disk) ends in an
    /// [`InvalidData`](std::io::ErrorKind::InvalidData) error instead of a clean end of
    /// file, on that read and every later one. A caller that must not act on damaged
    /// bytes acts only after a clean end.
    ///
    /// # Errors
    /// When the disk fails; a missing, expired or damaged entry is `Ok(None)`.
    pub async fn get_stream(&self, key: &str) -> Result<Option<ValueReader>> {
        let opened = self.keyed("get_stream", key, |store, prefix, key| store.open_value(prefix, key)).await?;
        self.store.reads().record(opened.is_some());
        Ok(opened.map(|(file, header, checksum)| ValueReader::new(tokio::fs::File::from_std(file), header, checksum)))
    }

    /// `ValueTooLarge` for a value that cannot fit under `key` (see the crate docs on
    /// capacity), checked before anything is written.
    fn check_fits(&self, key: &str, len: usize) -> std::result::Result<(), FsError> {
        self.store.check_fits(self.prefix.len() + key.len(), len as u64)
    }

    /// The page-cache-only read of [`FsCacheBuilder::cached_reads`], when it is on and
    /// can answer without waiting for the disk.
    fn get_cached(&self, key: &str) -> Option<std::result::Result<Option<Bytes>, FsError>> {
        if self.store.settings().cached_reads { self.store.get_cached(&self.prefix, key) } else { None }
    }

    /// Runs `work` on the blocking pool with the store and this handle's prefix.
    async fn run<T, F>(&self, operation: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store, &str) -> std::result::Result<T, FsError> + Send + 'static,
    {
        let (store, prefix) = (Arc::clone(&self.store), Arc::clone(&self.prefix));
        self.blocking(move || work(&store, &prefix)).await.map_err(|error| error.into_core(operation))
    }

    /// As [`run`](Self::run), for an operation on one key, which its errors name.
    async fn keyed<T, F>(&self, operation: &'static str, key: &str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store, &str, &str) -> std::result::Result<T, FsError> + Send + 'static,
    {
        let (store, prefix, owned) = (Arc::clone(&self.store), Arc::clone(&self.prefix), key.to_owned());
        self.blocking(move || work(&store, &prefix, &owned)).await.map_err(|error| error.into_keyed(operation, key))
    }

    async fn blocking<T, F>(&self, work: F) -> std::result::Result<T, FsError>
    where
        T: Send + 'static,
        F: FnOnce() -> std::result::Result<T, FsError> + Send + 'static,
    {
        match tokio::task::spawn_blocking(work).await {
            Ok(result) => result,
            Err(error) => Err(FsError::Task(error)),
        }
    }

    fn expiry(&self, ttl: Ttl) -> u64 {
        expiry_ms(ttl.lifetime(self.store.settings().default_ttl))
    }

    fn capabilities_of(store: &Store) -> Capabilities {
        let mut capabilities = Capabilities::default();
        // Expiry is stored in Unix milliseconds, rounded up.
        capabilities.ttl_resolution = Duration::from_millis(1);
        capabilities.shared_between_processes = true;
        capabilities.max_value_len = store.max_value_len().map(|max| usize::try_from(max).unwrap_or(usize::MAX));
        capabilities
    }
}

#[async_trait]
impl Cache for FsCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        if let Some(answer) = self.get_cached(key) {
            return answer.map_err(|error| error.into_keyed("get", key));
        }
        self.keyed("get", key, |store, prefix, key| store.get(prefix, key)).await
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()> {
        self.check_fits(key, value.len()).map_err(|error| error.into_keyed("set", key))?;
        let expires_ms = self.expiry(ttl);
        self.keyed("set", key, move |store, prefix, key| store.set(prefix, key, &value, expires_ms)).await
    }

    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
        self.check_fits(key, value.len()).map_err(|error| error.into_keyed("add", key))?;
        let expires_ms = self.expiry(ttl);
        self.keyed("add", key, move |store, prefix, key| store.add(prefix, key, &value, expires_ms)).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.keyed("delete", key, |store, prefix, key| store.delete(prefix, key)).await
    }

    async fn has(&self, key: &str) -> Result<bool> {
        if let Some(answer) = self.get_cached(key) {
            return answer.map(|value| value.is_some()).map_err(|error| error.into_keyed("has", key));
        }
        self.keyed("has", key, |store, prefix, key| store.has(prefix, key)).await
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
        self.keyed("incr", key, move |store, prefix, key| store.incr(prefix, key, delta)).await
    }

    // The batch operations run in one blocking task instead of one per key; an error
    // names the key it happened on.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let keys: Vec<String> = keys.iter().map(|&key| key.to_owned()).collect();
        let (store, prefix) = (Arc::clone(&self.store), Arc::clone(&self.prefix));
        self.blocking(move || {
            Ok(keys
                .iter()
                .map(|key| store.get(&prefix, key).map_err(|error| (error, key.clone())))
                .collect::<std::result::Result<Vec<_>, _>>())
        })
        .await
        .map_err(|error| error.into_core("get_many"))?
        .map_err(|(error, key): (FsError, String)| error.into_keyed("get_many", &key))
    }

    async fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
        for (key, value) in entries {
            self.check_fits(key, value.len()).map_err(|error| error.into_keyed("set_many", key))?;
        }
        let entries: Vec<(String, Bytes)> =
            entries.iter().map(|(key, value)| ((*key).to_owned(), value.clone())).collect();
        let expires_ms = self.expiry(ttl);
        let (store, prefix) = (Arc::clone(&self.store), Arc::clone(&self.prefix));
        self.blocking(move || {
            Ok(entries.iter().try_for_each(|(key, value)| {
                store.set(&prefix, key, value, expires_ms).map_err(|error| (error, key.clone()))
            }))
        })
        .await
        .map_err(|error| error.into_core("set_many"))?
        .map_err(|(error, key)| error.into_keyed("set_many", &key))
    }

    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        let keys: Vec<String> = keys.iter().map(|&key| key.to_owned()).collect();
        let (store, prefix) = (Arc::clone(&self.store), Arc::clone(&self.prefix));
        self.blocking(move || {
            Ok(keys.iter().try_fold(0, |removed, key| {
                Ok(removed + usize::from(store.delete(&prefix, key).map_err(|error| (error, key.clone()))?))
            }))
        })
        .await
        .map_err(|error| error.into_core("delete_many"))?
        .map_err(|(error, key): (FsError, String)| error.into_keyed("delete_many", &key))
    }

    async fn clear(&self) -> Result<()> {
        self.run("clear", |store, prefix| store.clear(prefix)).await
    }

    fn capabilities(&self) -> Capabilities {
        FsCache::capabilities_of(&self.store)
    }

    fn single_flight_scope(&self) -> (usize, &str) {
        // Clones and `with_prefix` handles share the store, so a key's loads are shared
        // by every handle that addresses it through the same prefix; another handle built
        // on the same directory loads on its own (the entry it writes is shared all the same).
        (Arc::as_ptr(&self.store) as usize, self.prefix())
    }

    fn stats(&self) -> Option<CacheStats> {
        Some(self.store.stats())
    }

    fn settle_miss(&self, settled: MissSettled) {
        self.store.reads().settle(settled);
    }
}
