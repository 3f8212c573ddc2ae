//! The registry handle: opening, the connection pool, and every SQL statement but search's.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use crate::attr::{self, Attributes};
use crate::cleanup::{Cleanup, CleanupReport};
use crate::error::{Error, ErrorKind, Result};
use crate::item::{BestOrNew, Item, NewItem, Row, Status, attr_from_row};
use crate::key::{canonical_params, key_of};
use crate::query::Query;
use crate::read::Limits as ReadLimits;
use crate::write::Writer;

/// `SELECT <every item column> FROM items <rest>` as a literal, so hot lookups build no string.
macro_rules! select_items {
    ($rest:literal) => {
        concat!(
            "SELECT id, key, version, uri, params, status, file_name, ext, label, created, last_read, read_count, size ",
            "FROM items ",
            $rest
        )
    };
}

/// The SQLite file's name inside the registry directory.
pub const DATABASE_FILE: &str = "registry.sqlite3";
/// The directory inside the registry directory that holds the items' files.
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
/// SQLite and the disk: from async code, call it inside `spawn_blocking`.
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
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    files: PathBuf,
    database: PathBuf,
    busy_timeout: Duration,
    sync_files: bool,
    max_idle: usize,
    page_cache: u64,
    read_limits: ReadLimits,
    idle: Mutex<Vec<Connection>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("dir", &self.inner.dir)
            .field("busy_timeout", &self.inner.busy_timeout)
            .field("sync_files", &self.inner.sync_files)
            .finish_non_exhaustive()
    }
}

/// Settings for opening a [`Registry`]; [`Registry::builder`] makes one.
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
    #[must_use]
    pub fn xz_memory_limit(mut self, bytes: u64) -> Self {
        self.xz_memory_limit = bytes;
        self
    }

    /// How long a call waits for another process's write lock before failing with
    /// [`ErrorKind::Busy`]. Default 30 seconds.
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
    #[must_use]
    pub fn sync_files(mut self, sync: bool) -> Self {
        self.sync_files = sync;
        self
    }

    /// How many idle connections the handle keeps open for reuse. Default 4.
    #[must_use]
    pub fn max_idle_connections(mut self, max: usize) -> Self {
        self.max_idle = max;
        self
    }

    /// How much of the database each pooled connection keeps cached in memory. Default 16 MiB:
    /// SQLite's own default (2 MiB) makes lookups on a registry of 100 000 items read most
    /// pages from the OS again.
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
    pub fn open(self) -> Result<Registry> {
        if self.xz_memory_limit == 0 {
            return Err(Error::new(ErrorKind::InvalidConfig, "open")
                .with_context("xz_memory_limit(0) would refuse every xz file: give a size, or u64::MAX for no limit"));
        }
        let files = self.dir.join(FILES_DIR);
        std::fs::create_dir_all(&files).map_err(|error| Error::io("open", &files, error))?;
        let registry = Registry {
            inner: Arc::new(Inner {
                database: self.dir.join(DATABASE_FILE),
                dir: self.dir,
                files,
                busy_timeout: self.busy_timeout,
                sync_files: self.sync_files,
                max_idle: self.max_idle,
                page_cache: self.page_cache,
                read_limits: ReadLimits { xz_memory: self.xz_memory_limit },
                idle: Mutex::new(Vec::new()),
            }),
        };
        registry.with_conn("open", crate::schema::migrate)?;
        Ok(registry)
    }
}

impl Registry {
    /// Opens (creating if needed) the registry in `dir` with default settings.
    ///
    /// # Errors
    ///
    /// As [`RegistryBuilder::open`].
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
    pub fn for_app(name: &str) -> Result<Registry> {
        Registry::open(Registry::app_dir(name)?)
    }

    /// The directory [`for_app`](Registry::for_app) uses for `name`.
    ///
    /// # Errors
    ///
    /// As [`for_app`](Registry::for_app), before opening anything.
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
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Records a new version of the item `uri` + `params` in [`Status::Uninitialized`]; its
    /// version is one more than the highest this key has ever had, also when cleanup removed
    /// that one, so a version number and its file name are never given twice.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for params that are not JSON, a bad extension or bad
    /// attributes; [`ErrorKind::Busy`]; database errors.
    pub fn create<P: Serialize + ?Sized>(&self, uri: &str, params: &P, options: &NewItem) -> Result<Item> {
        let row = self.insert(uri, params, options, Status::Uninitialized, "create")?;
        Ok(self.item(row))
    }

    /// The version `version` of the item with `key`, whatever its status.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn get(&self, key: &str, version: u64) -> Result<Option<Item>> {
        let version = i64::try_from(version).unwrap_or(i64::MAX);
        let sql = select_items!("WHERE key = ?1 AND version = ?2");
        let row = self.with_conn("get", |conn| {
            let mut statement = conn.prepare_cached(sql).map_err(|error| Error::db("get", error))?;
            statement
                .query_row(params![key, version], Row::from_sql)
                .optional()
                .map_err(|error| Error::db("get", error))
        })?;
        Ok(row.map(|row| self.item(row)))
    }

    /// The newest [`Ready`](Status::Ready) version of `uri` + `params`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for params that are not JSON; database errors.
    pub fn best<P: Serialize + ?Sized>(&self, uri: &str, params: &P) -> Result<Option<Item>> {
        let key = key_of(uri, &canonical_params(params)?);
        let row = self.with_conn("best", |conn| best_row(conn, &key, "best"))?;
        Ok(row.map(|row| self.item(row)))
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
    pub fn best_or_new<P: Serialize + ?Sized>(&self, uri: &str, params: &P, options: &NewItem) -> Result<BestOrNew> {
        let canonical = canonical_params(params)?;
        let key = key_of(uri, &canonical);
        let ext = options.resolved_ext(uri)?;
        let attributes = options.attributes.flatten("best or new")?;
        let found = self.with_conn("best or new", |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|error| Error::db("best or new", error))?;
            if let Some(row) = best_row(&tx, &key, "best or new")? {
                return Ok(Ok(row));
            }
            let new = NewRow { key: &key, uri, params: &canonical, status: Status::Write, ext: &ext, options };
            let row = insert_row(&tx, &new, &attributes, "best or new")?;
            tx.commit().map_err(|error| Error::db("best or new", error))?;
            Ok(Err(row))
        })?;
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
    pub fn versions<P: Serialize + ?Sized>(&self, uri: &str, params: &P) -> Result<Vec<Item>> {
        let key = key_of(uri, &canonical_params(params)?);
        let sql = select_items!("WHERE key = ?1 ORDER BY version");
        let rows = self.with_conn("versions", |conn| {
            let mut statement = conn.prepare_cached(sql).map_err(|error| Error::db("versions", error))?;
            let rows = statement.query_map([&key], Row::from_sql).map_err(|error| Error::db("versions", error))?;
            rows.collect::<rusqlite::Result<Vec<Row>>>().map_err(|error| Error::db("versions", error))
        })?;
        Ok(rows.into_iter().map(|row| self.item(row)).collect())
    }

    /// The items matching `query` (a [`Filter`](crate::Filter) or a [`Query`]), newest first
    /// unless the query says otherwise.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a condition that cannot be asked: comparing with a map
    /// or a non-finite float, an `in` list mixing kinds, a path with an empty part; database
    /// errors.
    pub fn search(&self, query: impl Into<Query>) -> Result<Vec<Item>> {
        let query = query.into();
        let (sql, values) = query.to_sql(select_items!(""))?;
        let rows = self.with_conn("search", |conn| {
            let mut statement = conn.prepare_cached(&sql).map_err(|error| Error::db("search", error))?;
            let rows = statement
                .query_map(rusqlite::params_from_iter(values.iter()), Row::from_sql)
                .map_err(|error| Error::db("search", error))?;
            rows.collect::<rusqlite::Result<Vec<Row>>>().map_err(|error| Error::db("search", error))
        })?;
        Ok(rows.into_iter().map(|row| self.item(row)).collect())
    }

    /// Removes what `plan` says may go and reports it; see [`Cleanup`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Busy`]; database errors; I/O errors other than a file already being gone.
    pub fn cleanup(&self, plan: &Cleanup) -> Result<CleanupReport> {
        crate::cleanup::run(self, plan)
    }

    pub(crate) fn item(&self, row: Row) -> Item {
        Item { registry: self.clone(), row }
    }

    pub(crate) fn file_path(&self, file_name: &str) -> PathBuf {
        self.inner.files.join(file_name)
    }

    pub(crate) fn files_dir(&self) -> &Path {
        &self.inner.files
    }

    pub(crate) fn read_limits(&self) -> ReadLimits {
        self.inner.read_limits
    }

    pub(crate) fn sync_files(&self) -> bool {
        self.inner.sync_files
    }

    /// Runs `f` on a pooled connection.
    pub(crate) fn with_conn<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&mut Connection) -> Result<T>,
    ) -> Result<T> {
        let pooled = self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.connect(operation)?,
        };
        let result = f(&mut conn);
        // A connection left inside a transaction (only if a rollback itself failed) is not reused.
        if conn.is_autocommit() {
            let mut idle = self.inner.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < self.inner.max_idle {
                idle.push(conn);
            }
        }
        result
    }

    fn connect(&self, operation: &'static str) -> Result<Connection> {
        let conn = Connection::open(&self.inner.database)
            .map_err(|error| Error::db(operation, error).with_context(self.inner.database.display().to_string()))?;
        conn.busy_timeout(self.inner.busy_timeout).map_err(|error| Error::db(operation, error))?;
        // journal_mode answers with a row, so it is read rather than executed.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(|error| Error::db(operation, error))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::new(ErrorKind::Database, operation)
                .with_context(format!("the database refused WAL mode (it is in {mode} mode)")));
        }
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(|error| Error::db(operation, error))?;
        // A negative cache_size is in KiB. PRAGMA takes no bound parameters; this is a number.
        let kib = i64::try_from(self.inner.page_cache / 1024).unwrap_or(i64::MAX).max(1);
        conn.execute_batch(&format!("PRAGMA cache_size = -{kib}")).map_err(|error| Error::db(operation, error))?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }

    fn insert<P: Serialize + ?Sized>(
        &self,
        uri: &str,
        params: &P,
        options: &NewItem,
        status: Status,
        operation: &'static str,
    ) -> Result<Row> {
        let canonical = canonical_params(params)?;
        let key = key_of(uri, &canonical);
        let ext = options.resolved_ext(uri)?;
        let attributes = options.attributes.flatten(operation)?;
        self.with_conn(operation, |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|error| Error::db(operation, error))?;
            let new = NewRow { key: &key, uri, params: &canonical, status, ext: &ext, options };
            let row = insert_row(&tx, &new, &attributes, operation)?;
            tx.commit().map_err(|error| Error::db(operation, error))?;
            Ok(row)
        })
    }

    pub(crate) fn row_by_id(&self, id: i64, operation: &'static str) -> Result<Option<Row>> {
        let sql = select_items!("WHERE id = ?1");
        self.with_conn(operation, |conn| {
            let mut statement = conn.prepare_cached(sql).map_err(|error| Error::db(operation, error))?;
            statement.query_row([id], Row::from_sql).optional().map_err(|error| Error::db(operation, error))
        })
    }

    /// Moves item `id` to `to` if its stored status allows it, in one statement; `size` is
    /// recorded with it when given.
    pub(crate) fn transition(&self, id: i64, to: Status, size: Option<u64>, operation: &'static str) -> Result<()> {
        let size = size.map(|size| i64::try_from(size).unwrap_or(i64::MAX));
        self.with_conn(operation, |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE items SET status = ?1, size = coalesce(?2, size) \
                     WHERE id = ?3 AND ((1 << status) & ?4) != 0",
                )
                .and_then(|mut statement| statement.execute(params![to.code(), size, id, to.allowed_from_mask()]))
                .map_err(|error| Error::db(operation, error))?;
            if changed == 1 {
                return Ok(());
            }
            let current: Option<i64> = conn
                .prepare_cached("SELECT status FROM items WHERE id = ?1")
                .and_then(|mut statement| statement.query_row([id], |row| row.get(0)).optional())
                .map_err(|error| Error::db(operation, error))?;
            Err(match current.and_then(Status::from_code) {
                None => Error::new(ErrorKind::NotFound, operation).with_context("the item was removed"),
                Some(from) => {
                    Error::new(ErrorKind::InvalidTransition, operation).with_context(format!("{from} -> {to}"))
                }
            })
        })
    }

    pub(crate) fn record_read(&self, id: i64) -> Result<()> {
        let now = attr::micros(SystemTime::now());
        self.with_conn("open", |conn| {
            conn.prepare_cached("UPDATE items SET read_count = read_count + 1, last_read = ?2 WHERE id = ?1")
                .and_then(|mut statement| statement.execute(params![id, now]))
                .map_err(|error| Error::db("open", error))?;
            Ok(())
        })
    }

    pub(crate) fn attributes_of(&self, id: i64) -> Result<Attributes> {
        self.with_conn("attributes", |conn| {
            let mut statement = conn
                .prepare_cached("SELECT name, kind, value FROM attrs WHERE item_id = ?1 ORDER BY name")
                .map_err(|error| Error::db("attributes", error))?;
            let mut rows = statement.query([id]).map_err(|error| Error::db("attributes", error))?;
            let mut attributes = Attributes::new();
            while let Some(row) = rows.next().map_err(|error| Error::db("attributes", error))? {
                let name: String = row.get(0).map_err(|error| Error::db("attributes", error))?;
                let kind: i64 = row.get(1).map_err(|error| Error::db("attributes", error))?;
                let value: rusqlite::types::Value = row.get(2).map_err(|error| Error::db("attributes", error))?;
                attr_from_row(name, kind, value, &mut attributes);
            }
            Ok(attributes)
        })
    }

    pub(crate) fn set_attributes(&self, id: i64, attributes: &Attributes) -> Result<()> {
        let flat = attributes.flatten("set attributes")?;
        self.with_conn("set attributes", |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|error| Error::db("set attributes", error))?;
            let exists = tx
                .prepare_cached("SELECT 1 FROM items WHERE id = ?1")
                .and_then(|mut statement| statement.exists([id]))
                .map_err(|error| Error::db("set attributes", error))?;
            if !exists {
                return Err(Error::new(ErrorKind::NotFound, "set attributes").with_context("the item was removed"));
            }
            refuse_leaf_namespace_conflicts(&tx, id, &flat, "set attributes")?;
            insert_attributes(&tx, id, &flat, "set attributes")?;
            tx.commit().map_err(|error| Error::db("set attributes", error))
        })
    }

    pub(crate) fn remove_attribute(&self, id: i64, path: &str) -> Result<usize> {
        self.with_conn("remove attribute", |conn| {
            conn.prepare_cached(
                "DELETE FROM attrs WHERE item_id = ?1 AND (name = ?2 OR substr(name, 1, length(?2) + 1) = ?2 || '.')",
            )
            .and_then(|mut statement| statement.execute(params![id, path]))
            .map_err(|error| Error::db("remove attribute", error))
        })
    }
}

fn best_row(conn: &Connection, key: &str, operation: &'static str) -> Result<Option<Row>> {
    let sql = select_items!("WHERE key = ?1 AND status = ?2 ORDER BY version DESC LIMIT 1");
    let mut statement = conn.prepare_cached(sql).map_err(|error| Error::db(operation, error))?;
    statement
        .query_row(params![key, Status::Ready.code()], Row::from_sql)
        .optional()
        .map_err(|error| Error::db(operation, error))
}

struct NewRow<'a> {
    key: &'a str,
    uri: &'a str,
    params: &'a str,
    status: Status,
    ext: &'a str,
    options: &'a NewItem,
}

/// Inserts the next version of `new.key`; the caller's transaction makes taking the next
/// version and id and inserting the row atomic.
fn insert_row(
    conn: &Connection,
    new: &NewRow<'_>,
    attributes: &[(String, attr::Kind, rusqlite::types::Value)],
    operation: &'static str,
) -> Result<Row> {
    // Both from high-water marks, never from the rows that still exist: see schema version 2.
    let version: i64 = conn
        .prepare_cached(
            "INSERT INTO key_versions (key, last) VALUES (?1, 1) \
             ON CONFLICT (key) DO UPDATE SET last = last + 1 RETURNING last",
        )
        .and_then(|mut statement| statement.query_row([new.key], |row| row.get(0)))
        .map_err(|error| Error::db(operation, error))?;
    let id: i64 = conn
        .prepare_cached("UPDATE counters SET value = value + 1 WHERE name = 'item_id' RETURNING value")
        .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
        .map_err(|error| Error::db(operation, error))?;
    let file_name = if new.ext.is_empty() {
        format!("{}-{version}", new.key)
    } else {
        format!("{}-{version}.{}", new.key, new.ext)
    };
    let created = attr::micros(SystemTime::now());
    conn.prepare_cached(
        "INSERT INTO items (id, key, version, uri, params, status, file_name, ext, label, created) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut statement| {
        statement.execute(params![
            id,
            new.key,
            version,
            new.uri,
            new.params,
            new.status.code(),
            file_name,
            new.ext,
            new.options.label,
            created
        ])
    })
    .map_err(|error| Error::db(operation, error))?;
    insert_attributes(conn, id, attributes, operation)?;
    Ok(Row {
        id,
        key: new.key.to_owned(),
        version,
        uri: new.uri.to_owned(),
        params: new.params.to_owned(),
        status: new.status,
        file_name,
        ext: new.ext.to_owned(),
        label: new.options.label.clone(),
        created,
        last_read: None,
        read_count: 0,
        size: None,
    })
}

/// Refuses to store a leaf at a path that is a namespace of stored leaves (`model` while
/// `model.layers` is stored), or under a path that is a stored leaf (`size.bytes` while `size`
/// is). Both would be kept, and `attributes()` would show one while search matched the other.
/// One `Attributes` value cannot hold such a pair itself, so only stored rows are checked.
fn refuse_leaf_namespace_conflicts(
    conn: &Connection,
    id: i64,
    attributes: &[(String, attr::Kind, rusqlite::types::Value)],
    operation: &'static str,
) -> Result<()> {
    let conflict = |path: &str, stored: &str| {
        let namespace = if stored.len() > path.len() { path } else { stored };
        Error::invalid_input(
            operation,
            format!(
                "attribute {path:?} would be both a value and a namespace: {stored:?} is stored; \
                 remove_attribute({namespace:?}) first"
            ),
        )
    };
    let mut under = conn
        .prepare_cached("SELECT name FROM attrs WHERE item_id = ?1 AND name > ?2 AND name < ?3 LIMIT 1")
        .map_err(|error| Error::db(operation, error))?;
    let mut exact = conn
        .prepare_cached("SELECT 1 FROM attrs WHERE item_id = ?1 AND name = ?2")
        .map_err(|error| Error::db(operation, error))?;
    for (path, _, _) in attributes {
        // Every name under `path.` sorts between `path.` and `path/` ('/' follows '.').
        let inside: Option<String> = under
            .query_row(params![id, format!("{path}."), format!("{path}/")], |row| row.get(0))
            .optional()
            .map_err(|error| Error::db(operation, error))?;
        if let Some(stored) = inside {
            return Err(conflict(path, &stored));
        }
        for (end, _) in path.match_indices('.') {
            let ancestor = &path[..end];
            if exact.exists(params![id, ancestor]).map_err(|error| Error::db(operation, error))? {
                return Err(conflict(path, ancestor));
            }
        }
    }
    Ok(())
}

fn insert_attributes(
    conn: &Connection,
    id: i64,
    attributes: &[(String, attr::Kind, rusqlite::types::Value)],
    operation: &'static str,
) -> Result<()> {
    if attributes.is_empty() {
        return Ok(());
    }
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO attrs (item_id, name, kind, value) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (item_id, name) DO UPDATE SET kind = excluded.kind, value = excluded.value",
        )
        .map_err(|error| Error::db(operation, error))?;
    for (name, kind, value) in attributes {
        statement.execute(params![id, name, kind.code(), value]).map_err(|error| Error::db(operation, error))?;
    }
    Ok(())
}
