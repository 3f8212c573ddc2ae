//! `cache-registry` beside the same work done with bare rusqlite statements, in the same run:
//!
//! - `registry/create_ready`: 10 000 items, each created with one attribute, its 1 KiB file
//!   written through a `.part` file and renamed, and marked Ready: three commits per item on
//!   both sides (insert, claim for writing, mark Ready), into a fresh registry per sample.
//! - `registry/best`: the newest Ready version of one of 50 000 keys on a registry of 100 000
//!   items (two versions per key), cycling through the keys.
//! - `registry/search`: an attribute search (`group = "g42" AND n < 20000`, 200 matches) on
//!   the same registry.
//! - `registry/tar_last_member`: reading the last of 20 000 small members of a tar item
//!   through `Item::open_member`, beside the `tar` crate walking the same file by hand.
//!
//! The bare peer opens the very database file the registry created, so schema and indexes are
//! identical, and runs the statements a careful hand-written implementation would: the same
//! pragmas (WAL, `synchronous = NORMAL`, a 16 MiB page cache), the key hashed the same way,
//! prepared statements cached, the same commits, versions and ids from the same high-water
//! marks, the file created the same way (new, 0600), the same search SQL.
//!
//! `cargo bench -p benches --bench registry`

use std::hint::black_box;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cache_registry::{Filter, NewItem, Registry};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const CREATE_ITEMS: usize = 10_000;
const KEYS: usize = 50_000;
const VERSIONS: usize = 2;
const PAYLOAD: [u8; 1024] = [b'x'; 1024];
const READY: i64 = 2;
const HEX: &[u8; 16] = b"0123456789abcdef";
const TAR_MEMBERS: usize = 20_000;

fn uri(index: usize) -> String {
    format!("https://example.org/data/{index}.csv")
}

fn params_of(index: usize) -> Value {
    json!({"year": 2000 + index % 25, "region": format!("r{}", index % 7), "index": index})
}

/// The bare peer: one connection, statements cached, the registry's own database file.
struct Bare {
    conn: Connection,
    files: PathBuf,
}

impl Bare {
    fn open(dir: &Path) -> Bare {
        let conn = Connection::open(dir.join(cache_registry::DATABASE_FILE)).expect("open the database");
        conn.busy_timeout(Duration::from_secs(30)).expect("busy timeout");
        let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)).expect("WAL");
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384;")
            .expect("pragmas");
        conn.set_prepared_statement_cache_capacity(64);
        Bare { conn, files: dir.join(cache_registry::FILES_DIR) }
    }

    fn key(uri: &str, params: &Value) -> String {
        // serde_json's default map is sorted, so this is the canonical form for these params.
        let canonical = serde_json::to_string(params).expect("json");
        let digest = Sha256::new().chain_update(uri).chain_update(b"\n").chain_update(&canonical).finalize();
        let mut hex = String::with_capacity(64);
        for byte in digest.iter() {
            hex.push(char::from(HEX[usize::from(byte >> 4)]));
            hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        hex
    }

    fn create_ready(&mut self, uri: &str, params: &Value, index: usize) {
        let canonical = serde_json::to_string(params).expect("json");
        let key = Bare::key(uri, params);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).expect("begin");
        // Versions and ids from high-water marks, as a correct hand-written store must keep
        // them: computing them from the rows that exist reuses them after a cleanup.
        let version: i64 = tx
            .prepare_cached(
                "INSERT INTO key_versions (key, last) VALUES (?1, 1) \
                 ON CONFLICT (key) DO UPDATE SET last = last + 1 RETURNING last",
            )
            .and_then(|mut statement| statement.query_row([&key], |row| row.get(0)))
            .expect("next version");
        let id: i64 = tx
            .prepare_cached("UPDATE counters SET value = value + 1 WHERE name = 'item_id' RETURNING value")
            .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
            .expect("next id");
        let file_name = format!("{key}-{version}.csv");
        let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_micros();
        tx.prepare_cached(
            "INSERT INTO items (id, key, version, uri, params, status, file_name, ext, label, created) \
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, 'csv', NULL, ?7)",
        )
        .and_then(|mut statement| {
            statement.execute(params![id, key, version, uri, canonical, file_name, i64::try_from(created).unwrap_or(0)])
        })
        .expect("insert item");
        tx.prepare_cached("INSERT INTO attrs (item_id, name, kind, value) VALUES (?1, 'i', 0, ?2)")
            .and_then(|mut statement| statement.execute(params![id, i64::try_from(index).unwrap_or(0)]))
            .expect("insert attr");
        tx.commit().expect("commit");
        self.conn
            .prepare_cached("UPDATE items SET status = 1 WHERE id = ?1 AND status = 0")
            .and_then(|mut statement| statement.execute([id]))
            .expect("claim");
        let final_path = self.files.join(&file_name);
        let temp = self.files.join(format!("{file_name}.part"));
        // Created new and private, as the registry does (its extra O_NOFOLLOW is one more flag
        // on the same open call).
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp).expect("create file");
        file.write_all(&PAYLOAD).expect("write file");
        drop(file);
        std::fs::rename(&temp, &final_path).expect("rename");
        self.conn
            .prepare_cached("UPDATE items SET status = 2, size = ?2 WHERE id = ?1 AND status = 1")
            .and_then(|mut statement| statement.execute(params![id, PAYLOAD.len() as i64]))
            .expect("ready");
    }

    fn best(&self, uri: &str, params: &Value) -> Option<BareItem> {
        let key = Bare::key(uri, params);
        self.conn
            .prepare_cached(
                "SELECT id, key, version, uri, params, status, file_name, ext, label, created, last_read, read_count, size \
                 FROM items WHERE key = ?1 AND status = ?2 ORDER BY version DESC LIMIT 1",
            )
            .and_then(|mut statement| statement.query_row(params![key, READY], BareItem::from_row).optional())
            .expect("best")
    }

    fn search(&self, group: &str, below: i64) -> Vec<BareItem> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT id, key, version, uri, params, status, file_name, ext, label, created, last_read, read_count, size \
                 FROM items WHERE id IN (SELECT item_id FROM attrs WHERE name = ?1 AND kind = 2 AND value = ?2) \
                 AND EXISTS (SELECT 1 FROM attrs WHERE item_id = items.id AND name = ?3 AND kind IN (0, 1) AND value < ?4) \
                 ORDER BY id DESC",
            )
            .expect("prepare search");
        let rows = statement.query_map(params!["group", group, "n", below], BareItem::from_row).expect("search");
        rows.collect::<rusqlite::Result<Vec<_>>>().expect("rows")
    }
}

/// What a hand-written lookup would map a row into: the same columns the registry reads.
#[allow(dead_code, reason = "the fields are read only through black_box")]
struct BareItem {
    id: i64,
    key: String,
    version: i64,
    uri: String,
    params: String,
    status: i64,
    file_name: String,
    ext: String,
    label: Option<String>,
    created: i64,
    last_read: Option<i64>,
    read_count: i64,
    size: Option<i64>,
}

impl BareItem {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<BareItem> {
        Ok(BareItem {
            id: row.get(0)?,
            key: row.get(1)?,
            version: row.get(2)?,
            uri: row.get(3)?,
            params: row.get(4)?,
            status: row.get(5)?,
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

fn create_ready(c: &mut Criterion) {
    let inputs: Vec<(String, Value)> = (0..CREATE_ITEMS).map(|index| (uri(index), params_of(index))).collect();
    let mut group = c.benchmark_group("registry/create_ready");
    group.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(CREATE_ITEMS as u64));
    group.bench_function("cache-registry", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let dir = tempfile::tempdir().expect("tempdir");
                let registry = Registry::open(dir.path()).expect("open");
                let start = Instant::now();
                for (index, (uri, params)) in inputs.iter().enumerate() {
                    let options = NewItem::new().attr("i", i64::try_from(index).unwrap_or(0));
                    let item = registry.create(uri, params, &options).expect("create");
                    let mut writer = item.write().expect("write");
                    writer.write_all(&PAYLOAD).expect("payload");
                    black_box(writer.commit().expect("commit"));
                }
                total += start.elapsed();
            }
            total
        });
    });
    group.bench_function("bare-rusqlite", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let dir = tempfile::tempdir().expect("tempdir");
                drop(Registry::open(dir.path()).expect("create the schema"));
                let mut bare = Bare::open(dir.path());
                let start = Instant::now();
                for (index, (uri, params)) in inputs.iter().enumerate() {
                    bare.create_ready(uri, params, index);
                }
                total += start.elapsed();
            }
            total
        });
    });
    group.finish();
}

/// A registry of `KEYS * VERSIONS` Ready items with attributes `n` (int), `group` (text) and
/// `score` (float), filled through the registry's own API. Filling takes a minute or two, so
/// it is kept under the target directory and reused by later runs; a marker file written last
/// says the fill completed.
fn populated() -> (PathBuf, Registry) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("registry-bench-{KEYS}x{VERSIONS}-v1"));
    let marker = dir.join("complete");
    if marker.exists() {
        return (dir.clone(), Registry::open(&dir).expect("open"));
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove an incomplete fill");
    }
    let registry = Registry::open(&dir).expect("open");
    let start = Instant::now();
    for version in 0..VERSIONS {
        for index in 0..KEYS {
            let n = version * KEYS + index;
            let options = NewItem::new()
                .attr("n", i64::try_from(n).unwrap_or(0))
                .attr("group", format!("g{}", n % 100))
                .attr("score", n as f64 / 7.0);
            let writer = match registry.best_or_new(&uri(index), &params_of(index), &options).expect("best or new") {
                cache_registry::BestOrNew::New(writer) => writer,
                cache_registry::BestOrNew::Found(_) => {
                    let item = registry.create(&uri(index), &params_of(index), &options).expect("create");
                    item.write().expect("write")
                }
            };
            writer.commit().expect("commit");
        }
    }
    eprintln!("populated {} items in {:.1?}", KEYS * VERSIONS, start.elapsed());
    std::fs::write(&marker, b"").expect("marker");
    (dir, registry)
}

fn lookups(c: &mut Criterion) {
    let (dir, registry) = populated();
    let bare = Bare::open(&dir);
    let keys: Vec<(String, Value)> = (0..KEYS).step_by(7).map(|index| (uri(index), params_of(index))).collect();

    let mut group = c.benchmark_group("registry/best");
    group.throughput(Throughput::Elements(1));
    let mut next = 0;
    group.bench_function("cache-registry", |b| {
        b.iter(|| {
            let (uri, params) = &keys[next % keys.len()];
            next += 1;
            let item = registry.best(uri, params).expect("best").expect("found");
            black_box(item)
        });
    });
    let mut next = 0;
    group.bench_function("bare-rusqlite", |b| {
        b.iter(|| {
            let (uri, params) = &keys[next % keys.len()];
            next += 1;
            black_box(bare.best(uri, params).expect("found"))
        });
    });
    group.finish();

    let mut group = c.benchmark_group("registry/search");
    group.throughput(Throughput::Elements(1));
    let filter = Filter::attr("group").eq("g42").and(Filter::attr("n").lt(20_000));
    assert_eq!(registry.search(filter.clone()).expect("search").len(), 200);
    assert_eq!(bare.search("g42", 20_000).len(), 200);
    group.bench_function("cache-registry", |b| {
        b.iter(|| black_box(registry.search(filter.clone()).expect("search")));
    });
    group.bench_function("bare-rusqlite", |b| {
        b.iter(|| black_box(bare.search("g42", 20_000)));
    });
    group.finish();
}

/// A tar of `TAR_MEMBERS` small members, stored as one registry item. The peer is the `tar`
/// crate on the same file, walking to the member and reading it, with nothing the registry
/// adds (its lookup of the item, the read count it records, the checks on the stream).
fn tar_member(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Registry::open(dir.path()).expect("open");
    let mut archive = tar::Builder::new(Vec::new());
    for index in 0..TAR_MEMBERS {
        let data = vec![b'x'; 100 + index % 900];
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        archive.append_data(&mut header, format!("dir/member-{index}.txt"), &data[..]).expect("append");
    }
    let bytes = archive.into_inner().expect("tar");
    let item = registry.create("https://example.org/bundle.tar", &json!({}), &NewItem::new()).expect("create");
    let mut writer = item.write().expect("write");
    writer.write_all(&bytes).expect("payload");
    let item = writer.commit().expect("commit");
    let last = format!("dir/member-{}.txt", TAR_MEMBERS - 1);

    let mut group = c.benchmark_group("registry/tar_last_member");
    group.sample_size(20);
    group.throughput(Throughput::Elements(TAR_MEMBERS as u64));
    group.bench_function("cache-registry", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            item.open_member(&last).expect("member").read_to_end(&mut out).expect("read");
            black_box(out)
        });
    });
    group.bench_function("bare-tar", |b| {
        b.iter(|| {
            let file = std::io::BufReader::with_capacity(64 * 1024, std::fs::File::open(item.path()).expect("open"));
            let mut archive = tar::Archive::new(file);
            let mut out = Vec::new();
            for entry in archive.entries().expect("entries") {
                let mut entry = entry.expect("entry");
                if entry.path_bytes().as_ref() == last.as_bytes() {
                    entry.read_to_end(&mut out).expect("read");
                    break;
                }
            }
            black_box(out)
        });
    });
    group.finish();
}

criterion_group!(benches, create_ready, lookups, tar_member);
criterion_main!(benches);
