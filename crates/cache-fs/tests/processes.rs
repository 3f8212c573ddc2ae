//! Several processes on one directory: a writer killed with SIGKILL mid-write leaves no
//! torn entry, and concurrent `add`/`incr` stay exact across processes.
//!
//! The children are this test binary re-invoked on one test with a role in the
//! environment (see `support::child`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use cache_core::{Bytes, Cache, CacheExt, Ttl};
use cache_fs::FsCache;
use support::{DIR, ROLE, check, child, results, value};

const KEYS: u64 = 16;
const READY: &str = "WRITER-READY";

fn role() -> Option<(String, PathBuf)> {
    let role = std::env::var(ROLE).ok()?;
    let dir = std::env::var_os(DIR).expect("a child gets a directory");
    Some((role, PathBuf::from(dir)))
}

async fn open(dir: &Path) -> FsCache {
    FsCache::builder(dir).prefix("shared:").build().await.expect("building the cache")
}

/// Sizes from a few bytes to ~256 KiB, so some writes take long enough to be killed in.
fn size(generation: u64, key: u64) -> usize {
    16 + ((generation.wrapping_mul(7919) ^ key.wrapping_mul(104_729)) % (256 * 1024)) as usize
}

/// Writes generation after generation of every key until killed; says `ready` once every
/// key has been written.
async fn overwrite_forever(dir: &Path, first_generation: u64) {
    let cache = open(dir).await;
    for generation in first_generation.. {
        for key in 0..KEYS {
            let bytes = value(generation, key, size(generation, key));
            if key % 4 == 0 {
                cache.set_stream(&format!("streamed-{key}"), &bytes[..], Ttl::Never).await.expect("set_stream");
            }
            cache.set(&format!("key-{key}"), Bytes::from(bytes), Ttl::Never).await.expect("set");
        }
        cache.incr("generations", 1).await.expect("incr");
        if generation == first_generation {
            println!("{READY}");
        }
    }
}

#[test]
fn sigkill_mid_write_never_leaves_torn_entries() {
    if let Some((role, dir)) = role() {
        let first_generation = role.strip_prefix("overwrite:").and_then(|g| g.parse().ok()).expect("a generation");
        cache_core::testkit::block_on(overwrite_forever(&dir, first_generation));
        return;
    }
    const ROUNDS: u64 = 24;
    let tmp = tempfile::tempdir().expect("temp directory");
    let dir = tmp.path();
    let mut last_seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut leftover_temps = 0;
    let started = Instant::now();
    for round in 0..ROUNDS {
        let first_generation = round * 1_000_000;
        let mut writer =
            child("sigkill_mid_write_never_leaves_torn_entries", &format!("overwrite:{first_generation}"), dir)
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawning the writer");
        let stdout = writer.stdout.take().expect("piped stdout");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        // libtest prints the test's name without a newline before the test's own output,
        // so the marker is looked for anywhere in a line.
        std::thread::spawn(move || {
            let ready = BufReader::new(stdout).lines().map_while(Result::ok).any(|line| line.contains(READY));
            let _ = ready_tx.send(ready);
        });
        if ready_rx.recv_timeout(Duration::from_secs(60)) != Ok(true) {
            let _ = writer.kill();
            let _ = writer.wait();
            panic!("round {round}: the writer did not write every key within a minute");
        }
        // A different moment in the write stream each round.
        std::thread::sleep(Duration::from_millis(3 + (round * 13) % 47));
        writer.kill().expect("SIGKILL to the writer");
        writer.wait().expect("reaping the writer");

        let entry_files = count_files(dir, |name| name.len() == 64);
        leftover_temps += count_files(dir, |name| name.starts_with(".tmp-"));
        cache_core::testkit::block_on(async {
            let cache = open(dir).await;
            // `build` walks the namespace and removes anything corrupt, so a count below
            // the number of entry files would mean a torn entry had been published.
            assert_eq!(cache.len(), entry_files as u64, "round {round}: a corrupt entry file was found");
            for key in 0..KEYS {
                for name in [format!("key-{key}"), format!("streamed-{key}")] {
                    if name.starts_with("streamed") && key % 4 != 0 {
                        continue;
                    }
                    let got = cache.get(&name).await.expect("get");
                    let got = got.unwrap_or_else(|| panic!("round {round}: {name} is missing, it was never deleted"));
                    let (generation, written_key) =
                        check(&got).unwrap_or_else(|| panic!("round {round}: {name} holds torn bytes"));
                    assert_eq!(written_key, key, "round {round}: {name} holds another key's value");
                    assert_eq!(got.len(), size(generation, key), "round {round}: {name} has the wrong length");
                    let previous = last_seen.insert(name.clone(), generation).unwrap_or(0);
                    assert!(generation >= previous, "round {round}: {name} went back from {previous} to {generation}");
                    if name.starts_with("streamed") {
                        let mut reader = cache.get_stream(&name).await.expect("get_stream").expect("present");
                        let mut streamed = Vec::new();
                        tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut streamed).await.expect("stream");
                        assert_eq!(check(&streamed).map(|(_, k)| k), Some(key), "round {round}: {name} streamed torn");
                    }
                }
            }
            assert!(cache.get_as::<i64>("generations").await.expect("counter").is_some_and(|n| n >= 1));
        });
    }
    println!(
        "{ROUNDS} writers killed mid-stream in {:?}; {leftover_temps} temp files left behind in all, no torn entry",
        started.elapsed()
    );
}

fn count_files(dir: &Path, mut wanted: impl FnMut(&str) -> bool) -> usize {
    let mut count = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("listing") {
            let entry = entry.expect("listing");
            let kind = entry.file_type().expect("file type");
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() && entry.file_name().to_str().is_some_and(&mut wanted) {
                count += 1;
            }
        }
    }
    count
}

const WORKERS: u64 = 4;
const OPERATIONS: u64 = 1000;
const SLOTS: u64 = OPERATIONS / 5;

/// One worker's share of the mixed load; prints what it saw as `RESULT` lines.
async fn mixed_operations(dir: &Path, worker: u64) {
    let cache = open(dir).await;
    let mut increments = Vec::new();
    let mut wins = Vec::new();
    let mut intact_reads = 0;
    for op in 0..OPERATIONS {
        // Set, get and delete meet on the same ten keys, across workers.
        let shared = format!("shared-{}", (op / 5) % 10);
        match op % 5 {
            0 => increments.push(cache.incr("total", 1).await.expect("incr")),
            1 => {
                let bytes = value(worker * OPERATIONS + op, worker, 64 + (op as usize * 37) % 4096);
                cache.set(&shared, bytes.into(), Ttl::Never).await.expect("set");
            }
            2 => {
                if let Some(bytes) = cache.get(&shared).await.expect("get") {
                    let (_, writer) = check(&bytes).unwrap_or_else(|| panic!("{shared} read torn"));
                    assert!(writer < WORKERS, "{shared} holds a value no worker wrote");
                    intact_reads += 1;
                }
            }
            3 => {
                let slot = op / 5;
                let mine = Bytes::from(format!("worker-{worker}"));
                if cache.add(&format!("slot-{slot}"), mine, Ttl::Never).await.expect("add") {
                    wins.push(slot);
                }
            }
            _ => {
                cache.delete(&format!("shared-{}", (op / 5 + 5) % 10)).await.expect("delete");
            }
        }
    }
    let join = |values: &[u64]| values.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let increments: Vec<u64> = increments.iter().map(|&n| u64::try_from(n).expect("positive")).collect();
    println!("RESULT incr {}", join(&increments));
    println!("RESULT wins {}", join(&wins));
    println!("RESULT reads {intact_reads}");
}

#[test]
fn four_processes_mixed_operations_stay_exact() {
    if let Some((role, dir)) = role() {
        let worker = role.strip_prefix("mixed:").and_then(|w| w.parse().ok()).expect("a worker number");
        cache_core::testkit::block_on(mixed_operations(&dir, worker));
        return;
    }
    let tmp = tempfile::tempdir().expect("temp directory");
    let dir = tmp.path();
    let children: Vec<_> = (0..WORKERS)
        .map(|worker| {
            child("four_processes_mixed_operations_stay_exact", &format!("mixed:{worker}"), dir)
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawning a worker")
        })
        .collect();
    let mut increments = BTreeSet::new();
    let mut winners: BTreeMap<u64, u64> = BTreeMap::new();
    let mut reads = 0;
    for (worker, child) in (0..WORKERS).zip(children) {
        for line in results(child, Duration::from_secs(120)) {
            let (what, list) = line.split_once(' ').unwrap_or((&line, ""));
            let numbers = list.split(',').filter(|n| !n.is_empty()).map(|n| n.parse::<u64>().expect("a number"));
            match what {
                "incr" => {
                    for n in numbers {
                        assert!(increments.insert(n), "two incr calls returned {n}");
                    }
                }
                "wins" => {
                    for slot in numbers {
                        if let Some(other) = winners.insert(slot, worker) {
                            panic!("slot-{slot} was added by worker {other} and worker {worker}");
                        }
                    }
                }
                "reads" => reads += list.parse::<u64>().expect("a count"),
                _ => panic!("unexpected child output {line:?}"),
            }
        }
    }
    let total = WORKERS * (OPERATIONS / 5);
    assert_eq!(increments, (1..=total).collect(), "incr must hand out every step exactly once");
    assert_eq!(winners.len() as u64, SLOTS, "every slot has exactly one winning add");
    assert!(reads > 0, "no worker read a value another had set");
    cache_core::testkit::block_on(async {
        let cache = open(dir).await;
        assert_eq!(cache.get_as::<i64>("total").await.expect("get total"), Some(total as i64));
        for (slot, worker) in &winners {
            let stored = cache.get(&format!("slot-{slot}")).await.expect("get slot");
            assert_eq!(stored, Some(Bytes::from(format!("worker-{worker}"))), "slot-{slot} holds a loser's value");
        }
    });
    println!(
        "{WORKERS} processes x {OPERATIONS} operations: incr total {total}, {SLOTS} adds won once each, {reads} intact reads"
    );
}

const LIMIT: u64 = 200;

/// Writes twice the limit in distinct keys of its own.
async fn fill_past_the_limit(dir: &Path, worker: u64) {
    let cache = FsCache::builder(dir).max_entries(LIMIT).build().await.expect("building the cache");
    for index in 0..2 * LIMIT {
        let bytes = value(index, worker, 64);
        cache.set(&format!("w{worker}-{index}"), Bytes::from(bytes), Ttl::Never).await.expect("set");
    }
    println!("RESULT done {worker}");
}

#[test]
fn four_processes_stay_within_the_shared_limit() {
    if let Some((role, dir)) = role() {
        let worker = role.strip_prefix("fill:").and_then(|w| w.parse().ok()).expect("a worker number");
        cache_core::testkit::block_on(fill_past_the_limit(&dir, worker));
        return;
    }
    let tmp = tempfile::tempdir().expect("temp directory");
    let dir = tmp.path();
    // Built first, so the children find the directory ready and start writing at once.
    let first = cache_core::testkit::block_on(FsCache::builder(dir).max_entries(LIMIT).build()).expect("build");
    let children: Vec<_> = (0..WORKERS)
        .map(|worker| {
            child("four_processes_stay_within_the_shared_limit", &format!("fill:{worker}"), dir)
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawning a worker")
        })
        .collect();
    let mut finished = 0;
    for child in children {
        finished += results(child, Duration::from_secs(120)).len();
    }
    assert_eq!(finished as u64, WORKERS, "every worker wrote all its keys");
    let on_disk = count_files(dir, |name| name.len() == 64) as u64;
    let written = WORKERS * 2 * LIMIT;
    println!("{WORKERS} processes wrote {written} distinct keys with max_entries {LIMIT}: {on_disk} entries left");
    assert!(on_disk <= LIMIT + LIMIT / 10, "{on_disk} entries on disk, more than 10% over the limit of {LIMIT}");
    assert!(on_disk >= LIMIT / 2, "{on_disk} entries on disk: eviction removed far more than it had to");
    // The shared count agrees with the disk once the writers are gone.
    let report = cache_core::testkit::block_on(first.sweep()).expect("sweep");
    assert_eq!(report.entries, on_disk);
}
