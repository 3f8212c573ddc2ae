//! The registry handle: opening, lookups, and the entry points to items, writers and cleanup.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::cleanup::{Cleanup, CleanupReport};
use crate::db::{Db, NewRow, Row, Settings};
use crate::error::{Error, ErrorKind, Result};
use crate::item::{Item, NewItem};
use crate::key::{canonical_params, key_of};
use crate::query::Query;
use crate::read::Limits;
use crate::status::Status;
use crate::store::Store;
use crate::write::Writer;

/// The SQLite file's name inside the registry directory.
///
/// ```
/// use cache_registry::{DATABASE_FILE, Registry};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let registry = Registry::open(dir.path())?;
/// assert!(registry.dir().join(DATABASE_FILE).exists());
/// # Ok(())
/// # }
/// ```
pub const DATABASE_FILE: &str = "registry.sqlite3";
/// The directory inside the registry directory that holds the items' files.
///
/// ```
/// use cache_registry::{FILES_DIR, NewItem, Registry};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let registry = Registry::open(dir.path())?;
/// let item = registry.create("https://example.org/a.csv", &(), &NewItem::new())?;
/// assert!(item.path().starts_with(registry.dir().join(FILES_DIR)));
/// # Ok(())
/// # }
/// ```
pub const FILES_DIR: &str = "files";

const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_IDLE: usize = 4;
const DEFAULT_PAGE_CACHE: u64 = 16 << 20;
/// xz's largest preset (`-9`, a 64 MiB dictionary) decodes in about 65 MiB; this leaves room
/// for streams made with a custom dictionary up to about twice that.
const DEFAULT_XZ_MEMORY_LIMIT: u64 = 128 << 20;

/// A registry of versioned cached files: a directory holding [`DATABASE_FILE`] and the
/// [`FILES_DIR`] of artifacts.
///
/// Cheap to clone (clones share one pool of connections) and `Send + Sync`. Calls block on
/// SQLite and the disk: from async code, use the `AsyncRegistry` that wraps it (feature
/// `async`, on by default), which runs each call on Tokio's blocking pool.
///
/// # Concurrency
///
/// Each call borrows a connection from a small pool, opening one when none is idle. A pool,
/// rather than one `Mutex<Connection>`, lets threads of one process read at the same time
/// (WAL readers do not block each other or the writer) and keeps each connection's prepared
/// statements warm. Between processes, SQLite's WAL mode and a busy timeout (30 s by default)
/// serialize writers; every change of more than one statement runs in one `BEGIN IMMEDIATE`
/// transaction, which takes the write lock up front so two processes never deadlock upgrading
/// a read lock, and every status change is one conditional `UPDATE`.
///
/// ```
/// use std::io::Write;
/// use cache_registry::{NewItem, Registry};
/// use serde_json::json;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let registry = Registry::open(dir.path())?;
/// let item = registry.create("https://example.org/a.csv", &json!({"day": 1}), &NewItem::new())?;
/// let mut writer = item.write()?;
/// writer.write_all(b"a,b\n")?;
/// writer.commit()?;
///
/// // Clones share one pool: hand them to threads freely.
/// let other = registry.clone();
/// let found = std::thread::spawn(move || other.best("https://example.org/a.csv", &json!({"day": 1}))).join().expect("thread")?;
/// assert_eq!(found.map(|item| item.version()), Some(1));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Registry {
    store: Arc<Store>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("dir", &self.store.dir)
            .field("busy_timeout", &self.store.db.busy_timeout())
            .field("sync_files", &self.store.sync_files)
            .finish_non_exhaustive()
    }
}

/// Settings for opening a [`Registry`]; [`Registry::builder`] makes one.
///
/// ```
/// use std::time::Duration;
/// use cache_registry::Registry;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let registry = Registry::builder(dir.path())
///     .busy_timeout(Duration::from_secs(5))
///     .sync_files(true)
///     .xz_memory_limit(64 << 20)
///     .open()?;
/// assert_eq!(registry.dir(), dir.path());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RegistryBuilder {
    dir: PathBuf,
    busy_timeout: Duration,
    sync_files: bool,
    max_idle: usize,
    page_cache: u64,
    xz_memory_limit: u64,
}

impl RegistryBuilder {
    /// How much memory an xz decoder may take, in bytes; default 128 MiB. An xz stream
    /// declares its dictionary size and the decoder allocates it, so a small hostile file can
    /// otherwise ask for gigabytes. xz's presets need up to about 65 MiB (`-9`); a stream that
    /// needs more than the limit fails when read with `io::ErrorKind::OutOfMemory` (from
    /// [`Reader`](crate::Reader)) or [`ErrorKind::LimitExceeded`] (from
    /// [`Item::open_member`](crate::Item::open_member) and [`Item::members`](crate::Item::members)),
    /// with a message naming this setting. `u64::MAX` disables the limit; 0 is refused by
    /// [`open`](RegistryBuilder::open).
    ///
    /// ```
    /// use cache_registry::{ErrorKind, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::builder(dir.path()).xz_memory_limit(16 << 20).open()?;
    /// # let _ = registry;
    /// let zero = Registry::builder(dir.path()).xz_memory_limit(0).open().unwrap_err();
    /// assert_eq!(zero.kind(), ErrorKind::InvalidConfig);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn xz_memory_limit(mut self, bytes: u64) -> Self {
        self.xz_memory_limit = bytes;
        self
    }

    /// How long a call waits for another process's write lock before failing with
    /// [`ErrorKind::Busy`]. Default 30 seconds.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cache_registry::Registry;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::builder(dir.path()).busy_timeout(Duration::from_secs(2)).open()?;
    /// # let _ = registry;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Whether [`Writer::commit`] flushes the file and its directory to the disk before marking
    /// the version Ready. Default `false`, which matches the database's own setting
    /// (`synchronous = NORMAL` in WAL mode): a process crash or `kill -9` never leaves a Ready
    /// version with a torn file either way, but only `true` also guarantees it across a power
    /// loss, at the price of an fsync per file.
    ///
    /// ```
    /// use cache_registry::Registry;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::builder(dir.path()).sync_files(true).open()?;
    /// # let _ = registry;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn sync_files(mut self, sync: bool) -> Self {
        self.sync_files = sync;
        self
    }

    /// How many idle connections the handle keeps open for reuse. Default 4.
    ///
    /// ```
    /// use cache_registry::Registry;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::builder(dir.path()).max_idle_connections(1).open()?;
    /// # let _ = registry;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn max_idle_connections(mut self, max: usize) -> Self {
        self.max_idle = max;
        self
    }

    /// How much of the database each pooled connection keeps cached in memory. Default 16 MiB:
    /// SQLite's own default (2 MiB) makes lookups on a registry of 100 000 items read most
    /// pages from the OS again.
    ///
    /// ```
    /// use cache_registry::Registry;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::builder(dir.path()).page_cache_bytes(64 << 20).open()?;
    /// # let _ = registry;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn page_cache_bytes(mut self, bytes: u64) -> Self {
        self.page_cache = bytes;
        self
    }

    /// Creates the directory if needed, opens the database and brings its schema up to date.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for an xz memory limit of 0; [`ErrorKind::Io`] if the
    /// directory cannot be created; [`ErrorKind::IncompatibleSchema`]
    /// if the database is from a newer version of this crate or not a registry;
    /// [`ErrorKind::Busy`] if another process held the lock past the busy timeout.
    ///
    /// ```
    /// use cache_registry::Registry;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::builder(dir.path()).page_cache_bytes(4 << 20).open()?;
    /// # let _ = registry;
    /// # Ok(())
    /// # }
    /// ```
    pub fn open(self) -> Result<Registry> {
        if self.xz_memory_limit == 0 {
            return Err(Error::new(ErrorKind::InvalidConfig, "open")
                .with_context("xz_memory_limit(0) would refuse every xz file: give a size, or u64::MAX for no limit"));
        }
        let files = self.dir.join(FILES_DIR);
        std::fs::create_dir_all(&files).map_err(|error| Error::io("open", &files, error))?;
        let db = Db::open(Settings {
            database: self.dir.join(DATABASE_FILE),
            busy_timeout: self.busy_timeout,
            max_idle: self.max_idle,
            page_cache: self.page_cache,
        })?;
        let store = Store {
            db,
            dir: self.dir,
            files,
            sync_files: self.sync_files,
            read_limits: Limits { xz_memory: self.xz_memory_limit },
        };
        Ok(Registry { store: Arc::new(store) })
    }
}

impl Registry {
    /// Opens (creating if needed) the registry in `dir` with default settings.
    ///
    /// # Errors
    ///
    /// As [`RegistryBuilder::open`].
    ///
    /// ```
    /// use cache_registry::Registry;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path().join("created/on/demand"))?;
    /// assert!(registry.dir().ends_with("created/on/demand"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<Registry> {
        Registry::builder(dir).open()
    }

    /// Opens the registry of application `name` in the OS cache directory: `$XDG_CACHE_HOME/name`
    /// or `~/.cache/name` on Linux, `~/Library/Caches/name` on macOS, `{FOLDERID_LocalAppData}\name`
    /// on Windows.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] if `name` is empty, `.`/`..`, or holds a path separator, or
    /// the OS has no cache directory; then as [`RegistryBuilder::open`].
    ///
    /// ```
    /// use cache_registry::Registry;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // Not run against the real cache directory: a doc test should not leave files behind.
    /// let _open = Registry::for_app;
    /// assert!(Registry::app_dir("my-app")?.ends_with("my-app"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn for_app(name: &str) -> Result<Registry> {
        Registry::open(Registry::app_dir(name)?)
    }

    /// The directory [`for_app`](Registry::for_app) uses for `name`.
    ///
    /// # Errors
    ///
    /// As [`for_app`](Registry::for_app), before opening anything.
    ///
    /// ```
    /// use cache_registry::{ErrorKind, Registry};
    ///
    /// assert_eq!(Registry::app_dir("../escape").unwrap_err().kind(), ErrorKind::InvalidConfig);
    /// ```
    pub fn app_dir(name: &str) -> Result<PathBuf> {
        let bad = name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\']) || name.contains('\0');
        if bad {
            return Err(Error::new(ErrorKind::InvalidConfig, "for app")
                .with_context(format!("{name:?} is not a usable directory name")));
        }
        let base = dirs::cache_dir().ok_or_else(|| {
            Error::new(ErrorKind::InvalidConfig, "for app").with_context("this system has no cache directory")
        })?;
        Ok(base.join(name))
    }

    /// Settings for opening the registry in `dir`.
    ///
    /// ```
    /// use cache_registry::Registry;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::builder(dir.path()).max_idle_connections(2).open()?;
    /// # let _ = registry;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(dir: impl AsRef<Path>) -> RegistryBuilder {
        RegistryBuilder {
            dir: dir.as_ref().to_path_buf(),
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            sync_files: false,
            max_idle: DEFAULT_MAX_IDLE,
            page_cache: DEFAULT_PAGE_CACHE,
            xz_memory_limit: DEFAULT_XZ_MEMORY_LIMIT,
        }
    }

    /// The registry's directory.
    ///
    /// ```
    /// use cache_registry::Registry;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// assert_eq!(Registry::open(dir.path())?.dir(), dir.path());
    /// # Ok(())
    /// # }
    /// ```
    pub fn dir(&self) -> &Path {
        &self.store.dir
    }

    /// Records a new version of the item `uri` + `params` in [`Status::Uninitialized`]; its
    /// version is one more than the highest this key has ever had, also when cleanup removed
    /// that one, so a version number and its file name are never given twice.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for params that are not JSON, a bad extension or bad
    /// attributes; [`ErrorKind::Busy`]; database errors.
    ///
    /// ```
    /// use cache_registry::{NewItem, Registry, Status};
    /// use serde_json::json;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// let first = registry.create("https://example.org/a.csv", &json!({"day": 1}), &NewItem::new().label("daily"))?;
    /// let second = registry.create("https://example.org/a.csv", &json!({"day": 1}), &NewItem::new())?;
    /// assert_eq!((first.version(), second.version()), (1, 2));
    /// assert_eq!(first.status(), Status::Uninitialized);
    /// # Ok(())
    /// # }
    /// ```
    pub fn create<P: Serialize + ?Sized>(&self, uri: &str, params: &P, options: &NewItem) -> Result<Item> {
        let named = |error: Error| error.with_item(uri, None);
        let canonical = canonical_params(params).map_err(named)?;
        let key = key_of(uri, &canonical);
        let ext = options.resolved_ext(uri).map_err(named)?;
        let attributes = options.attributes.flatten("create").map_err(named)?;
        let new = NewRow {
            key: &key,
            uri,
            params: &canonical,
            status: Status::Uninitialized,
            ext: &ext,
            label: options.label.as_deref(),
        };
        Ok(self.item(self.store.db.insert(&new, &attributes, "create").map_err(named)?))
    }

    /// The version `version` of the item with `key`, whatever its status.
    ///
    /// # Errors
    ///
    /// Database errors.
    ///
    /// ```
    /// use cache_registry::{NewItem, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// let item = registry.create("https://example.org/a.csv", &(), &NewItem::new())?;
    /// let again = registry.get(item.key(), 1)?.expect("version 1 exists");
    /// assert_eq!(again.uri(), "https://example.org/a.csv");
    /// assert!(registry.get(item.key(), 2)?.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub fn get(&self, key: &str, version: u64) -> Result<Option<Item>> {
        let version = i64::try_from(version).unwrap_or(i64::MAX);
        Ok(self.store.db.get(key, version)?.map(|row| self.item(row)))
    }

    /// The newest [`Ready`](Status::Ready) version of `uri` + `params`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for params that are not JSON; database errors.
    ///
    /// ```
    /// use std::io::Write;
    /// use cache_registry::{NewItem, Registry};
    /// use serde_json::json;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// assert!(registry.best("https://example.org/a.csv", &json!({"day": 1}))?.is_none());
    /// let mut writer = registry.create("https://example.org/a.csv", &json!({"day": 1}), &NewItem::new())?.write()?;
    /// writer.write_all(b"x")?;
    /// writer.commit()?;
    /// registry.create("https://example.org/a.csv", &json!({"day": 1}), &NewItem::new())?; // not Ready
    /// assert_eq!(registry.best("https://example.org/a.csv", &json!({"day": 1}))?.map(|item| item.version()), Some(1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn best<P: Serialize + ?Sized>(&self, uri: &str, params: &P) -> Result<Option<Item>> {
        let named = |error: Error| error.with_item(uri, None);
        let key = key_of(uri, &canonical_params(params).map_err(named)?);
        Ok(self.store.db.best(&key).map_err(named)?.map(|row| self.item(row)))
    }

    /// The newest Ready version of `uri` + `params`, or, when there is none, a new version in
    /// [`Status::Write`] and the [`Writer`] to fill it. The check and the insert are one
    /// transaction. A version another caller is still writing is not waited for: two callers
    /// that find nothing Ready each get their own new version, and `best` then returns the
    /// newer one once it is Ready.
    ///
    /// # Errors
    ///
    /// As [`create`](Registry::create), plus I/O errors creating the file.
    ///
    /// ```
    /// use std::io::Write;
    /// use cache_registry::{BestOrNew, NewItem, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// let item = match registry.best_or_new("https://example.org/a.csv", &(), &NewItem::new())? {
    ///     BestOrNew::Found(item) => item,
    ///     BestOrNew::New(mut writer) => {
    ///         writer.write_all(b"fetched")?;
    ///         writer.commit()?
    ///     }
    /// };
    /// assert_eq!(item.size(), Some(7));
    /// # Ok(())
    /// # }
    /// ```
    pub fn best_or_new<P: Serialize + ?Sized>(&self, uri: &str, params: &P, options: &NewItem) -> Result<BestOrNew> {
        let named = |error: Error| error.with_item(uri, None);
        let canonical = canonical_params(params).map_err(named)?;
        let key = key_of(uri, &canonical);
        let ext = options.resolved_ext(uri).map_err(named)?;
        let attributes = options.attributes.flatten("best or new").map_err(named)?;
        let new = NewRow {
            key: &key,
            uri,
            params: &canonical,
            status: Status::Write,
            ext: &ext,
            label: options.label.as_deref(),
        };
        let found = self.store.db.best_or_insert(&new, &attributes, "best or new").map_err(named)?;
        match found {
            Ok(row) => Ok(BestOrNew::Found(self.item(row))),
            Err(row) => Ok(BestOrNew::New(Writer::start(self.item(row))?)),
        }
    }

    /// Every version of `uri` + `params`, oldest first, whatever their status.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for params that are not JSON; database errors.
    ///
    /// ```
    /// use cache_registry::{NewItem, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// for _ in 0..3 {
    ///     registry.create("https://example.org/a.csv", &(), &NewItem::new())?;
    /// }
    /// let versions: Vec<u64> = registry.versions("https://example.org/a.csv", &())?.iter().map(|item| item.version()).collect();
    /// assert_eq!(versions, [1, 2, 3]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn versions<P: Serialize + ?Sized>(&self, uri: &str, params: &P) -> Result<Vec<Item>> {
        let named = |error: Error| error.with_item(uri, None);
        let key = key_of(uri, &canonical_params(params).map_err(named)?);
        Ok(self.store.db.versions(&key).map_err(named)?.into_iter().map(|row| self.item(row)).collect())
    }

    /// The items matching `query` (a [`Filter`](crate::Filter) or a [`Query`]), newest first
    /// unless the query says otherwise.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a condition that cannot be asked: comparing with a map
    /// or a non-finite float, an `in` list mixing kinds, a path with an empty part; database
    /// errors.
    ///
    /// ```
    /// use cache_registry::{AttrValue, Filter, NewItem, Order, Query, Registry};
    /// use serde_json::json;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// for rows in [10, 2_000, 30_000] {
    ///     registry.create("https://example.org/a.csv", &json!({"rows": rows}), &NewItem::new().attr("rows", rows))?;
    /// }
    /// let big = registry.search(Query::new(Filter::attr("rows").gt(1_000)).order(Order::OldestFirst).limit(1))?;
    /// assert_eq!(big[0].attributes()?.get("rows"), Some(&AttrValue::Int(2_000)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn search(&self, query: impl Into<Query>) -> Result<Vec<Item>> {
        Ok(self.store.db.search(&query.into())?.into_iter().map(|row| self.item(row)).collect())
    }

    /// Removes what `plan` says may go and reports it; see [`Cleanup`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Busy`]; database errors; I/O errors other than a file already being gone.
    ///
    /// ```
    /// use cache_registry::{Cleanup, NewItem, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// let mut item = registry.create("https://example.org/a.csv", &(), &NewItem::new())?;
    /// item.trash()?;
    /// let report = registry.cleanup(&Cleanup::new().keep_newest(3))?;
    /// assert_eq!(report.removed.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn cleanup(&self, plan: &Cleanup) -> Result<CleanupReport> {
        crate::cleanup::run(&self.store, plan)
    }

    fn item(&self, row: Row) -> Item {
        Item { store: Arc::clone(&self.store), row }
    }
}

/// What [`Registry::best_or_new`] found.
///
/// ```
/// use cache_registry::{BestOrNew, NewItem, Registry};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let registry = Registry::open(dir.path())?;
/// match registry.best_or_new("https://example.org/a.csv", &(), &NewItem::new())? {
///     BestOrNew::Found(item) => println!("cached: {}", item.path().display()),
///     BestOrNew::New(writer) => {
///         writer.commit()?;
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub enum BestOrNew {
    /// The newest Ready version.
    Found(Item),
    /// There was none: a new version, already in [`Status::Write`], for the caller to fill.
    New(Writer),
}
