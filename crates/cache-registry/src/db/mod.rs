//! Every SQL statement the registry runs, over a small pool of connections: the bottom layer.
//!
//! [`Registry`](crate::Registry), [`Item`](crate::Item), [`Writer`](crate::Writer) and
//! cleanup sit above this module and call it; it knows nothing of them. It speaks in [`Row`]s,
//! ids and flattened attributes; files are the layers above's business. The one statement
//! built at run time, search's, comes from [`Query::to_sql`], which writes only fixed
//! fragments and binds every value.

mod schema;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::attr::{self, AttrValue, Attributes, Kind};
use crate::error::{Error, ErrorKind, Result};
use crate::query::Query;
use crate::status::Status;

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

/// Attributes flattened for storage: `(dotted path, kind, value)`.
pub(crate) type FlatAttributes = [(String, Kind, SqlValue)];

/// How to open connections.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) database: PathBuf,
    pub(crate) busy_timeout: Duration,
    pub(crate) max_idle: usize,
    pub(crate) page_cache: u64,
}

/// The database: its settings and the pool of idle connections.
///
/// A pool, rather than one `Mutex<Connection>`, lets threads of one process read at the same
/// time (WAL readers do not block each other or the writer) and keeps each connection's
/// prepared statements warm.
pub(crate) struct Db {
    settings: Settings,
    idle: Mutex<Vec<Connection>>,
}

/// One stored row of `items`.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) id: i64,
    pub(crate) key: String,
    pub(crate) version: i64,
    pub(crate) uri: String,
    pub(crate) params: String,
    pub(crate) status: Status,
    pub(crate) file_name: String,
    pub(crate) ext: String,
    pub(crate) label: Option<String>,
    pub(crate) created: i64,
    pub(crate) last_read: Option<i64>,
    pub(crate) read_count: i64,
    pub(crate) size: Option<i64>,
}

impl Row {
    /// Maps a row selected with `select_items!`'s column list, in its order.
    fn from_sql(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        let code: i64 = row.get(5)?;
        let status = Status::from_code(code).ok_or(rusqlite::Error::IntegralValueOutOfRange(5, code))?;
        Ok(Row {
            id: row.get(0)?,
            key: row.get(1)?,
            version: row.get(2)?,
            uri: row.get(3)?,
            params: row.get(4)?,
            status,
            file_name: row.get(6)?,
            ext: row.get(7)?,
            label: row.get(8)?,
            created: row.get(9)?,
            last_read: row.get(10)?,
            read_count: row.get(11)?,
            size: row.get(12)?,
        })
    }
}

/// What a new row holds besides what the database assigns (id, version, times).
pub(crate) struct NewRow<'a> {
    pub(crate) key: &'a str,
    pub(crate) uri: &'a str,
    pub(crate) params: &'a str,
    pub(crate) status: Status,
    pub(crate) ext: &'a str,
    pub(crate) label: Option<&'a str>,
}

/// One row as cleanup sees it.
pub(crate) struct CleanupRow {
    pub(crate) id: i64,
    pub(crate) key: String,
    pub(crate) version: i64,
    pub(crate) uri: String,
    pub(crate) status: Status,
    pub(crate) file_name: String,
    pub(crate) created: i64,
    /// Position among the key's Ready versions, newest first; `None` for other statuses.
    pub(crate) ready_rank: Option<i64>,
}

impl Db {
    /// Opens the database and brings its schema up to date.
    pub(crate) fn open(settings: Settings) -> Result<Db> {
        let db = Db { settings, idle: Mutex::new(Vec::new()) };
        db.with_conn("open", schema::migrate)?;
        Ok(db)
    }

    pub(crate) fn busy_timeout(&self) -> Duration {
        self.settings.busy_timeout
    }

    /// Runs `f` on a pooled connection.
    fn with_conn<T>(&self, operation: &'static str, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let pooled = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.connect(operation)?,
        };
        let result = f(&mut conn);
        // A connection left inside a transaction (only if a rollback itself failed) is not reused.
        if conn.is_autocommit() {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < self.settings.max_idle {
                idle.push(conn);
            }
        }
        result
    }

    fn connect(&self, operation: &'static str) -> Result<Connection> {
        let database = &self.settings.database;
        let conn = Connection::open(database)
            .map_err(|error| Error::db(operation, error).with_context(database.display().to_string()))?;
        conn.busy_timeout(self.settings.busy_timeout).map_err(|error| Error::db(operation, error))?;
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
        let kib = i64::try_from(self.settings.page_cache / 1024).unwrap_or(i64::MAX).max(1);
        conn.execute_batch(&format!("PRAGMA cache_size = -{kib}")).map_err(|error| Error::db(operation, error))?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }

    /// Inserts the next version of `new.key` with `attributes`, in one transaction.
    pub(crate) fn insert(&self, new: &NewRow<'_>, attributes: &FlatAttributes, operation: &'static str) -> Result<Row> {
        self.with_conn(operation, |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|error| Error::db(operation, error))?;
            let row = insert_row(&tx, new, attributes, operation)?;
            tx.commit().map_err(|error| Error::db(operation, error))?;
            Ok(row)
        })
    }

    /// The newest Ready version of `new.key` as `Ok`, or else, in the same transaction, a new
    /// row inserted as `Err`.
    pub(crate) fn best_or_insert(
        &self,
        new: &NewRow<'_>,
        attributes: &FlatAttributes,
        operation: &'static str,
    ) -> Result<std::result::Result<Row, Row>> {
        self.with_conn(operation, |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|error| Error::db(operation, error))?;
            if let Some(row) = best_row(&tx, new.key, operation)? {
                return Ok(Ok(row));
            }
            let row = insert_row(&tx, new, attributes, operation)?;
            tx.commit().map_err(|error| Error::db(operation, error))?;
            Ok(Err(row))
        })
    }

    pub(crate) fn get(&self, key: &str, version: i64) -> Result<Option<Row>> {
        let sql = select_items!("WHERE key = ?1 AND version = ?2");
        self.with_conn("get", |conn| {
            let mut statement = conn.prepare_cached(sql).map_err(|error| Error::db("get", error))?;
            statement
                .query_row(params![key, version], Row::from_sql)
                .optional()
                .map_err(|error| Error::db("get", error))
        })
    }

    pub(crate) fn best(&self, key: &str) -> Result<Option<Row>> {
        self.with_conn("best", |conn| best_row(conn, key, "best"))
    }

    /// Every version of `key`, oldest first.
    pub(crate) fn versions(&self, key: &str) -> Result<Vec<Row>> {
        let sql = select_items!("WHERE key = ?1 ORDER BY version");
        self.with_conn("versions", |conn| {
            let mut statement = conn.prepare_cached(sql).map_err(|error| Error::db("versions", error))?;
            let rows = statement.query_map([key], Row::from_sql).map_err(|error| Error::db("versions", error))?;
            rows.collect::<rusqlite::Result<Vec<Row>>>().map_err(|error| Error::db("versions", error))
        })
    }

    pub(crate) fn search(&self, query: &Query) -> Result<Vec<Row>> {
        let (sql, values) = query.to_sql(select_items!(""))?;
        self.with_conn("search", |conn| {
            let mut statement = conn.prepare_cached(&sql).map_err(|error| Error::db("search", error))?;
            let rows = statement
                .query_map(rusqlite::params_from_iter(values.iter()), Row::from_sql)
                .map_err(|error| Error::db("search", error))?;
            rows.collect::<rusqlite::Result<Vec<Row>>>().map_err(|error| Error::db("search", error))
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

    pub(crate) fn attributes(&self, id: i64) -> Result<Attributes> {
        self.with_conn("attributes", |conn| {
            let mut statement = conn
                .prepare_cached("SELECT name, kind, value FROM attrs WHERE item_id = ?1 ORDER BY name")
                .map_err(|error| Error::db("attributes", error))?;
            let mut rows = statement.query([id]).map_err(|error| Error::db("attributes", error))?;
            let mut attributes = Attributes::new();
            while let Some(row) = rows.next().map_err(|error| Error::db("attributes", error))? {
                let name: String = row.get(0).map_err(|error| Error::db("attributes", error))?;
                let kind: i64 = row.get(1).map_err(|error| Error::db("attributes", error))?;
                let value: SqlValue = row.get(2).map_err(|error| Error::db("attributes", error))?;
                if let Some(value) = AttrValue::from_sql(kind, value) {
                    attributes.insert_path(&name, value);
                }
            }
            Ok(attributes)
        })
    }

    /// Sets `attributes` on item `id`, in one transaction, refusing leaf/namespace conflicts.
    pub(crate) fn set_attributes(&self, id: i64, attributes: &FlatAttributes) -> Result<()> {
        let operation = "set attributes";
        self.with_conn(operation, |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|error| Error::db(operation, error))?;
            let exists = tx
                .prepare_cached("SELECT 1 FROM items WHERE id = ?1")
                .and_then(|mut statement| statement.exists([id]))
                .map_err(|error| Error::db(operation, error))?;
            if !exists {
                return Err(Error::new(ErrorKind::NotFound, operation).with_context("the item was removed"));
            }
            refuse_leaf_namespace_conflicts(&tx, id, attributes, operation)?;
            insert_attributes(&tx, id, attributes, operation)?;
            tx.commit().map_err(|error| Error::db(operation, error))
        })
    }

    /// Removes the attribute at `path` and everything under it; returns how many rows went.
    pub(crate) fn remove_attribute(&self, id: i64, path: &str) -> Result<usize> {
        self.with_conn("remove attribute", |conn| {
            conn.prepare_cached(
                "DELETE FROM attrs WHERE item_id = ?1 AND (name = ?2 OR substr(name, 1, length(?2) + 1) = ?2 || '.')",
            )
            .and_then(|mut statement| statement.execute(params![id, path]))
            .map_err(|error| Error::db("remove attribute", error))
        })
    }

    /// Every row, as cleanup weighs it.
    pub(crate) fn cleanup_rows(&self) -> Result<Vec<CleanupRow>> {
        self.with_conn("cleanup", |conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT id, key, version, uri, status, file_name, created, \
                       CASE WHEN status = ?1 THEN row_number() OVER ( \
                         PARTITION BY key, status = ?1 ORDER BY version DESC) END AS rank \
                     FROM items",
                )
                .map_err(|error| Error::db("cleanup", error))?;
            let rows = statement
                .query_map(params![Status::Ready.code()], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, String>(5)?,
                        row.get::<_, i64>(6)?,
                        row.get::<_, Option<i64>>(7)?,
                    ))
                })
                .map_err(|error| Error::db("cleanup", error))?;
            let mut out = Vec::new();
            for row in rows {
                let (id, key, version, uri, code, file_name, created, ready_rank) =
                    row.map_err(|error| Error::db("cleanup", error))?;
                // A status code this crate does not know is left alone rather than guessed at.
                if let Some(status) = Status::from_code(code) {
                    out.push(CleanupRow { id, key, version, uri, status, file_name, created, ready_rank });
                }
            }
            Ok(out)
        })
    }

    /// The file name and status of every row.
    pub(crate) fn file_names(&self) -> Result<Vec<(String, Option<Status>)>> {
        self.with_conn("cleanup", |conn| {
            let mut statement = conn
                .prepare_cached("SELECT file_name, status FROM items")
                .map_err(|error| Error::db("cleanup", error))?;
            let rows = statement
                .query_map([], |row| Ok((row.get::<_, String>(0)?, Status::from_code(row.get(1)?))))
                .map_err(|error| Error::db("cleanup", error))?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|error| Error::db("cleanup", error))
        })
    }

    /// Deletes each `(id, status)` row only if its status is still that one, in one
    /// transaction, so a version that moved on meanwhile (a stale write that just committed)
    /// stays. Returns the ids deleted.
    pub(crate) fn delete_if_status(&self, rows: &[(i64, Status)]) -> Result<HashSet<i64>> {
        if rows.is_empty() {
            return Ok(HashSet::new());
        }
        self.with_conn("cleanup", |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|error| Error::db("cleanup", error))?;
            let mut deleted = HashSet::new();
            {
                let mut statement = tx
                    .prepare_cached("DELETE FROM items WHERE id = ?1 AND status = ?2")
                    .map_err(|error| Error::db("cleanup", error))?;
                for (id, status) in rows {
                    let changed =
                        statement.execute(params![id, status.code()]).map_err(|error| Error::db("cleanup", error))?;
                    if changed == 1 {
                        deleted.insert(*id);
                    }
                }
            }
            tx.commit().map_err(|error| Error::db("cleanup", error))?;
            Ok(deleted)
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

/// The file name of version `version` of `key`: unique per row, since versions are never
/// reused for a key.
fn file_name(key: &str, version: i64, ext: &str) -> String {
    if ext.is_empty() { format!("{key}-{version}") } else { format!("{key}-{version}.{ext}") }
}

/// Inserts the next version of `new.key`; the caller's transaction makes taking the next
/// version and id and inserting the row atomic.
fn insert_row(
    conn: &Connection,
    new: &NewRow<'_>,
    attributes: &FlatAttributes,
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
    let file_name = file_name(new.key, version, new.ext);
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
            new.label,
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
        label: new.label.map(str::to_owned),
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
    attributes: &FlatAttributes,
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

fn insert_attributes(conn: &Connection, id: i64, attributes: &FlatAttributes, operation: &'static str) -> Result<()> {
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
