//! `FsCache` beside the bare syscall floor, cacache and Python's cachelib, in the same run,
//! each in its own temp directory (same file system) holding the same number of entries:
//!
//! - `fs_cache`: `FsCache` through its async API on a current-thread tokio runtime;
//! - `fs_cache_sync`: `FsCache` through `cache.sync()`, on the bench thread;
//! - `floor_sync`: the bare calls any crash-safe file cache must make, on the bench thread,
//!   with nothing added: temp file, write, rename (set) or open and read (get), under
//!   `FsCache`'s own fan-out and file names;
//! - `cacache`: `cacache::write` / `cacache::read` (tokio runtime);
//! - `cachelib`: Python's `cachelib.FileSystemCache` (no threshold, no fan-out: its
//!   fastest setting), driven by a Python process this bench starts; each criterion sample
//!   asks it to run N operations and report the time they took, so the pipe costs nothing
//!   per operation. It runs when the interpreter in `CACHE_BENCH_PYTHON` (default:
//!   `<target>/bench-venv/bin/python3`) can `import cachelib`; otherwise the bench prints a
//!   note and measures the others.
//!
//! Groups `fs/set_1KiB`, `fs/get_1KiB` (2 000 entries) and `fs/set_1MiB`, `fs/get_1MiB`
//! (64 entries). Sets write each key's own value, held in memory for the whole run, as
//! cachelib's driver does: no contender pays for allocating, filling or freeing a 1 MiB
//! buffer per write (an earlier version gave the Rust contenders a fresh buffer per set,
//! which cachelib never paid for). cacache alone gets fresh bytes per write (made and
//! freed outside the timing), so its content addressing cannot skip one. Dirty pages are
//! flushed before each contender's set run, so no contender pays for the write-back of
//! another's writes.
//!
//! `cargo bench -p benches --bench fs`

use std::fs::{self, OpenOptions};
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cache_core::{Cache, Ttl};
use cache_fs::FsCache;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

struct Size {
    name: &'static str,
    bytes: usize,
    entries: usize,
}

const SIZES: [Size; 2] =
    [Size { name: "1KiB", bytes: 1024, entries: 2000 }, Size { name: "1MiB", bytes: 1 << 20, entries: 64 }];

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

/// Each key's value, held for the whole run.
fn resident(size: &Size) -> Vec<Bytes> {
    (0..size.entries).map(|_| fresh(size.bytes)).collect()
}

/// `len` bytes that differ from every other call's.
fn fresh(len: usize) -> Bytes {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let stamp = COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes();
    let mut value = vec![0x5a; len];
    value[..8].copy_from_slice(&stamp);
    value.into()
}

/// Flushes dirty pages, so the write-back of one contender's writes (or of the prefill)
/// does not land in the next contender's measurements.
fn settle() {
    let status = Command::new("sync").status().expect("running sync");
    assert!(status.success(), "sync failed");
}

fn keys(entries: usize) -> Vec<String> {
    (0..entries).map(|index| format!("bench-key-{index}")).collect()
}

/// The floor: what any cache that never shows a torn file must do per write.
fn floor_write(path: &Path, value: &[u8], counter: u64) -> std::io::Result<()> {
    let temp = path.with_file_name(format!(".tmp-{counter}"));
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
    file.write_all(value)?;
    drop(file);
    fs::rename(&temp, path)
}

/// The floor's paths: `FsCache`'s own fan-out and names, under the floor's directory.
fn floor_paths(cache: &FsCache, keys: &[String], root: &Path) -> Vec<PathBuf> {
    keys.iter()
        .map(|key| {
            let path = cache.entry_path(key);
            let relative = path.strip_prefix(cache.directory()).expect("entry paths are under the directory");
            let path = root.join(relative);
            fs::create_dir_all(path.parent().expect("a leaf directory")).expect("fan-out directories");
            path
        })
        .collect()
}

/// cachelib's side of the pipe: prefills, then for each `set N` / `get N` line runs N
/// operations on the keys in turn and answers with the nanoseconds they took.
const CACHELIB_DRIVER: &str = r#"
import sys, time
from cachelib import FileSystemCache
directory, size, entries = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cache = FileSystemCache(directory, threshold=0, default_timeout=0)
keys = ["bench-key-%d" % i for i in range(entries)]
values = [i.to_bytes(8, "little") + b"\x5a" * (size - 8) for i in range(entries)]
for key, value in zip(keys, values):
    cache.set(key, value)
print("ready", flush=True)
turn = 0
for line in sys.stdin:
    op, n = line.split()
    n = int(n)
    start = time.perf_counter_ns()
    if op == "set":
        for _ in range(n):
            turn = (turn + 1) % entries
            cache.set(keys[turn], values[turn])
    else:
        for _ in range(n):
            turn = (turn + 1) % entries
            if cache.get(keys[turn]) is None:
                raise SystemExit("cachelib missed " + keys[turn])
    print(time.perf_counter_ns() - start, flush=True)
"#;

/// A running cachelib driver.
struct Cachelib {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Cachelib {
    fn python() -> PathBuf {
        std::env::var_os("CACHE_BENCH_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("..").join("bench-venv").join("bin").join("python3")
        })
    }

    /// Starts the driver on `dir`, or says why not and returns `None`.
    fn start(dir: &Path, size: &Size) -> Option<Cachelib> {
        let python = Cachelib::python();
        let usable = Command::new(&python)
            .args(["-c", "import cachelib"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !usable {
            eprintln!(
                "note: cachelib not measured: `{} -c 'import cachelib'` failed. Create it with \
                 `python3 -m venv {venv} && {venv}/bin/pip install cachelib`, or set CACHE_BENCH_PYTHON.",
                python.display(),
                venv = python.parent().and_then(Path::parent).unwrap_or(Path::new("VENV")).display(),
            );
            return None;
        }
        let mut child = Command::new(&python)
            .args(["-u", "-c", CACHELIB_DRIVER])
            .arg(dir)
            .args([size.bytes.to_string(), size.entries.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the cachelib driver");
        let input = child.stdin.take().expect("piped stdin");
        let mut output = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut ready = String::new();
        output.read_line(&mut ready).expect("reading from the cachelib driver");
        assert_eq!(ready.trim(), "ready", "the cachelib driver did not start");
        Some(Cachelib { child, input, output })
    }

    /// Runs `iterations` of `op` in the driver and returns the time they took there.
    fn run(&mut self, op: &str, iterations: u64) -> Duration {
        writeln!(self.input, "{op} {iterations}").expect("writing to the cachelib driver");
        let mut line = String::new();
        self.output.read_line(&mut line).expect("reading from the cachelib driver");
        Duration::from_nanos(line.trim().parse().unwrap_or_else(|_| panic!("the cachelib driver said {line:?}")))
    }
}

impl Drop for Cachelib {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    for size in SIZES {
        let keys = keys(size.entries);
        let fs_dir = tempfile::tempdir().expect("temp directory");
        let floor_dir = tempfile::tempdir().expect("temp directory");
        let cacache_dir = tempfile::tempdir().expect("temp directory");
        let cachelib_dir = tempfile::tempdir().expect("temp directory");
        let cache = rt.block_on(FsCache::builder(fs_dir.path()).build()).expect("FsCache");
        let paths = floor_paths(&cache, &keys, floor_dir.path());
        let counter = AtomicU64::new(0);
        let cacache_path = cacache_dir.path().to_path_buf();
        let values = resident(&size);
        rt.block_on(async {
            for (key, path) in keys.iter().zip(paths.iter()) {
                cache.set(key, fresh(size.bytes), Ttl::Never).await.expect("prefill FsCache");
                floor_write(path, &fresh(size.bytes), counter.fetch_add(1, Ordering::Relaxed)).expect("prefill floor");
                cacache::write(&cacache_path, key, fresh(size.bytes)).await.expect("prefill cacache");
            }
        });
        let mut cachelib = Cachelib::start(cachelib_dir.path(), &size);

        let mut group = c.benchmark_group(format!("fs/set_{}", size.name));
        group.throughput(Throughput::Bytes(size.bytes as u64));
        let mut next = 0;
        let mut pick = move || {
            next = (next + 1) % size.entries;
            next
        };
        settle();
        group.bench_function("fs_cache", |b| {
            b.to_async(&rt).iter(|| {
                let index = pick();
                // A `Bytes` clone shares the resident value: no copy.
                let (cache, key, value) = (&cache, &keys[index], values[index].clone());
                async move { cache.set(key, value, Ttl::Never).await.expect("set") }
            })
        });
        settle();
        group.bench_function("fs_cache_sync", |b| {
            let direct = cache.sync();
            b.iter(|| {
                let index = pick();
                direct.set(&keys[index], &values[index], Ttl::Never).expect("set")
            })
        });
        settle();
        group.bench_function("floor_sync", |b| {
            b.iter(|| {
                let index = pick();
                floor_write(&paths[index], &values[index], counter.fetch_add(1, Ordering::Relaxed)).expect("write")
            })
        });
        settle();
        group.bench_function("cacache", |b| {
            b.to_async(&rt).iter_batched(
                || (pick(), fresh(size.bytes)),
                |(index, value)| {
                    let (dir, key) = (&cacache_path, &keys[index]);
                    // Handed back, so criterion frees it after the timing.
                    async move {
                        cacache::write(dir, key, &value).await.expect("cacache write");
                        value
                    }
                },
                BatchSize::SmallInput,
            )
        });
        if let Some(driver) = cachelib.as_mut() {
            settle();
            group.bench_function("cachelib", |b| b.iter_custom(|iterations| driver.run("set", iterations)));
        }
        group.finish();

        settle();
        let mut group = c.benchmark_group(format!("fs/get_{}", size.name));
        group.throughput(Throughput::Bytes(size.bytes as u64));
        group.bench_function("fs_cache", |b| {
            b.to_async(&rt).iter(|| {
                let (cache, key) = (&cache, &keys[pick()]);
                async move { black_box(cache.get(key).await.expect("get").expect("hit")) }
            })
        });
        group.bench_function("fs_cache_sync", |b| {
            let direct = cache.sync();
            b.iter(|| black_box(direct.get(&keys[pick()]).expect("get").expect("hit")))
        });
        group.bench_function("floor_sync", |b| b.iter(|| black_box(fs::read(&paths[pick()]).expect("read"))));
        group.bench_function("cacache", |b| {
            b.to_async(&rt).iter(|| {
                let (dir, key) = (&cacache_path, &keys[pick()]);
                async move { black_box(cacache::read(dir, key).await.expect("cacache read")) }
            })
        });
        if let Some(driver) = cachelib.as_mut() {
            group.bench_function("cachelib", |b| b.iter_custom(|iterations| driver.run("get", iterations)));
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
