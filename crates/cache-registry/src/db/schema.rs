//! The database schema and its versioned migrations.
//!
//! `PRAGMA user_version` holds the schema version. Each migration runs in the same
//! `BEGIN IMMEDIATE` transaction as the version bump, so two processes opening a new registry
//! at once apply it exactly once, and a crash mid-migration leaves the previous version.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, ErrorKind, Result};

/// Migrations in order: entry `n` takes the schema from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // Version 1.
    //
    // Times are microseconds since the Unix epoch. `status` codes are `Status::code`.
    // `(key, status, version)` serves `best` with one index seek; `attrs (name, kind, value)`
    // serves every attribute comparison as an index range, which the search SQL relies on.
    "CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,
        version INTEGER NOT NULL,
        uri TEXT NOT NULL,
        params TEXT NOT NULL,
        status INTEGER NOT NULL,
        file_name TEXT NOT NULL,
        ext TEXT NOT NULL,
        label TEXT,
        created INTEGER NOT NULL,
        last_read INTEGER,
        read_count INTEGER NOT NULL DEFAULT 0,
        size INTEGER,
        UNIQUE (key, version)
    );
    CREATE INDEX items_key_status_version ON items (key, status, version);
    CREATE INDEX items_uri ON items (uri);
    CREATE INDEX items_status ON items (status);
    CREATE INDEX items_label ON items (label);
    CREATE INDEX items_created ON items (created);
    CREATE TABLE attrs (
        item_id INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        kind INTEGER NOT NULL,
        value NOT NULL,
        PRIMARY KEY (item_id, name)
    ) WITHOUT ROWID;
    CREATE INDEX attrs_name_kind_value ON attrs (name, kind, value);",
    // Version 2: high-water marks, so a version number, and with it a file name, is never
    // given twice for a key, and an item id never names two rows. Version 1 computed both
    // from the rows that still existed: after cleanup removed the newest row, the next create
    // reused its version (and file name, which cleanup then deleted from under it) and
    // SQLite reused its id (so an old `Item` acted on the new row).
    //
    // `key_versions` keeps one row per key ever created, also after cleanup removed every
    // version of it; `counters` holds the last item id given.
    "CREATE TABLE key_versions (
        key TEXT PRIMARY KEY,
        last INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO key_versions (key, last) SELECT key, max(version) FROM items GROUP BY key;
    CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO counters (name, value) SELECT 'item_id', coalesce(max(id), 0) FROM items;",
];

/// The schema version this crate writes.
pub(crate) const CURRENT: i64 = 2;

pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let found: i64 =
        conn.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(|error| Error::db("open", error))?;
    if found == CURRENT {
        return Ok(());
    }
    let tx =
        conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|error| Error::db("open", error))?;
    // Read again under the write lock: another process may have migrated meanwhile.
    let found: i64 =
        tx.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(|error| Error::db("open", error))?;
    if !(0..=CURRENT).contains(&found) {
        return Err(Error::new(ErrorKind::IncompatibleSchema, "open")
            .with_context(format!("schema version {found}, this crate knows up to {CURRENT}")));
    }
    if found == 0 {
        let tables: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'", [], |row| row.get(0))
            .map_err(|error| Error::db("open", error))?;
        if tables > 0 {
            return Err(Error::new(ErrorKind::IncompatibleSchema, "open")
                .with_context("the database holds tables but is not a registry"));
        }
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
        tx.execute_batch(sql)
            .map_err(|error| Error::db("open", error).with_context(format!("migrating from schema version {from}")))?;
    }
    // PRAGMA takes no bound parameters; CURRENT is a constant of this crate.
    tx.execute_batch(&format!("PRAGMA user_version = {CURRENT}")).map_err(|error| Error::db("open", error))?;
    tx.commit().map_err(|error| Error::db("open", error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_from_version_1_keeps_the_high_water_marks_of_existing_rows() {
        let mut conn = Connection::open_in_memory().expect("in-memory database");
        conn.execute_batch(MIGRATIONS[0]).expect("version 1 schema");
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO items (id, key, version, uri, params, status, file_name, ext, created)
             VALUES (7, 'k', 3, 'u', '{}', 2, 'k-3', '', 0), (9, 'j', 1, 'u', '[]', 2, 'j-1', '', 0);",
        )
        .expect("version 1 rows");
        migrate(&mut conn).expect("migrate");
        let last: i64 =
            conn.query_row("SELECT last FROM key_versions WHERE key = 'k'", [], |row| row.get(0)).expect("k");
        assert_eq!(last, 3);
        let id: i64 =
            conn.query_row("SELECT value FROM counters WHERE name = 'item_id'", [], |row| row.get(0)).expect("id");
        assert_eq!(id, 9);
        let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0)).expect("version");
        assert_eq!(version, CURRENT);
    }
}
