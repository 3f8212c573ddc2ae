//! `FsCache` beside cacache and beside the floor any crash-safe file cache pays, in the
//! same run, each in its own temp directory holding the same number of entries:
//!
//! - `fs_cache`: `FsCache` through its async API on a tokio runtime;
//! - `floor`: a bare temp-file-write-and-rename (set) or open-and-read (get) with the same
//!   two-level fan-out, run as one `spawn_blocking` task like any async file cache must;
//! - `floor_sync`: the same syscalls called straight from the bench thread, for scale;
//! - `cacache`: `cacache::write` / `cacache::read` (tokio runtime).
//!
//! Groups `fs/set_1KiB`, `fs/get_1KiB` (2 000 entries) and `fs/set_1MiB`, `fs/get_1MiB`
//! (64 entries). Every set writes fresh bytes, so cacache's content addressing cannot skip
//! a write. Dirty pages are flushed before each contender's set run, so no contender pays
//! for the write-back of another's writes.
//!
//! `cargo bench -p benches --bench fs`

use std::fs::{self, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
    let status = std::process::Command::new("sync").status().expect("running sync");
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

fn bench(c: &mut Criterion) {
    let rt = runtime();
    for size in SIZES {
        let keys = keys(size.entries);
        let fs_dir = tempfile::tempdir().expect("temp directory");
        let floor_dir = tempfile::tempdir().expect("temp directory");
        let cacache_dir = tempfile::tempdir().expect("temp directory");
        let cache = rt.block_on(FsCache::builder(fs_dir.path()).build()).expect("FsCache");
        let paths = Arc::new(floor_paths(&cache, &keys, floor_dir.path()));
        let counter = Arc::new(AtomicU64::new(0));
        let cacache_path = cacache_dir.path().to_path_buf();
        rt.block_on(async {
            for (key, path) in keys.iter().zip(paths.iter()) {
                cache.set(key, fresh(size.bytes), Ttl::Never).await.expect("prefill FsCache");
                floor_write(path, &fresh(size.bytes), counter.fetch_add(1, Ordering::Relaxed)).expect("prefill floor");
                cacache::write(&cacache_path, key, fresh(size.bytes)).await.expect("prefill cacache");
            }
        });

        let mut group = c.benchmark_group(format!("fs/set_{}", size.name));
        group.throughput(Throughput::Bytes(size.bytes as u64));
        let mut next = 0;
        let mut pick = move || {
            next = (next + 1) % size.entries;
            next
        };
        settle();
        group.bench_function("fs_cache", |b| {
            b.to_async(&rt).iter_batched(
                || (pick(), fresh(size.bytes)),
                |(index, value)| {
                    let (cache, key) = (&cache, &keys[index]);
                    async move { cache.set(key, value, Ttl::Never).await.expect("set") }
                },
                BatchSize::SmallInput,
            )
        });
        settle();
        group.bench_function("floor", |b| {
            b.to_async(&rt).iter_batched(
                || (pick(), fresh(size.bytes)),
                |(index, value)| {
                    let (paths, counter) = (Arc::clone(&paths), Arc::clone(&counter));
                    async move {
                        tokio::task::spawn_blocking(move || {
                            floor_write(&paths[index], &value, counter.fetch_add(1, Ordering::Relaxed))
                        })
                        .await
                        .expect("join")
                        .expect("write")
                    }
                },
                BatchSize::SmallInput,
            )
        });
        settle();
        group.bench_function("floor_sync", |b| {
            b.iter_batched(
                || (pick(), fresh(size.bytes)),
                |(index, value)| {
                    floor_write(&paths[index], &value, counter.fetch_add(1, Ordering::Relaxed)).expect("write")
                },
                BatchSize::SmallInput,
            )
        });
        settle();
        group.bench_function("cacache", |b| {
            b.to_async(&rt).iter_batched(
                || (pick(), fresh(size.bytes)),
                |(index, value)| {
                    let (dir, key) = (&cacache_path, &keys[index]);
                    async move { cacache::write(dir, key, value).await.expect("cacache write") }
                },
                BatchSize::SmallInput,
            )
        });
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
        group.bench_function("floor", |b| {
            b.to_async(&rt).iter(|| {
                let (paths, index) = (Arc::clone(&paths), pick());
                async move {
                    black_box(
                        tokio::task::spawn_blocking(move || fs::read(&paths[index]))
                            .await
                            .expect("join")
                            .expect("read"),
                    )
                }
            })
        });
        group.bench_function("floor_sync", |b| b.iter(|| black_box(fs::read(&paths[pick()]).expect("read"))));
        group.bench_function("cacache", |b| {
            b.to_async(&rt).iter(|| {
                let (dir, key) = (&cacache_path, &keys[pick()]);
                async move { black_box(cacache::read(dir, key).await.expect("cacache read")) }
            })
        });
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
