//! Several processes on one registry, and processes killed mid-write.
//!
//! Each test re-runs this test binary as its child processes (`current_exe()` with
//! `--exact <this test>`); the environment variable `ROLE` tells the re-run that it is a child
//! and which one. Children are bounded: they finish their work or stop by themselves after a
//! fixed count, and the parent kills any still running after a deadline.

#![allow(clippy::unwrap_used, reason = "a test helper that fails should panic with the error")]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cache_registry::{Cleanup, ErrorKind, Filter, Item, NewItem, Reason, Registry, Status};
use serde_json::json;

const ROLE: &str = "CACHE_REGISTRY_TEST_ROLE";
const DIR: &str = "CACHE_REGISTRY_TEST_DIR";
const WORKERS: usize = 4;
const ITEMS_PER_WORKER: i64 = 40;
const DEADLINE: Duration = Duration::from_secs(120);

fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

fn child_dir() -> PathBuf {
    PathBuf::from(std::env::var_os(DIR).expect("a child process gets the registry directory"))
}

fn spawn_child(test: &str, role: &str, dir: &Path, stdout: Stdio) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--include-ignored", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(DIR, dir)
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Waits for `child`, killing it if it outlives the deadline, and says whether it succeeded.
fn finish(mut child: Child) -> bool {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        if start.elapsed() > DEADLINE {
            child.kill().unwrap();
            child.wait().unwrap();
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The content a worker writes for item `index`: large enough to span several writes.
fn content(worker: i64, index: i64) -> Vec<u8> {
    format!("worker {worker} item {index}\n").repeat(2_000).into_bytes()
}

fn read_all(item: &Item) -> Vec<u8> {
    let mut out = Vec::new();
    item.open().unwrap().read_to_end(&mut out).unwrap();
    out
}

#[test]
fn four_processes_creating_and_finishing_items_lose_nothing() {
    if let Some(role) = role() {
        let worker: i64 = role.strip_prefix("worker-").unwrap().parse().unwrap();
        let registry = Registry::open(child_dir()).unwrap();
        for index in 0..ITEMS_PER_WORKER {
            // One key all workers race on, and one key per worker.
            for uri in ["shared", &format!("own-{worker}")] {
                let options = NewItem::new().attr("worker", worker).attr("index", index);
                let item = registry.create(uri, &json!({"p": 1}), &options).unwrap();
                let mut writer = item.write().unwrap();
                writer.write_all(&content(worker, index)).unwrap();
                writer.commit().unwrap();
            }
        }
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    Registry::open(dir.path()).unwrap();
    let children: Vec<Child> = (0..WORKERS)
        .map(|worker| {
            spawn_child(
                "four_processes_creating_and_finishing_items_lose_nothing",
                &format!("worker-{worker}"),
                dir.path(),
                Stdio::null(),
            )
        })
        .collect();
    let results: Vec<bool> = children.into_iter().map(finish).collect();
    assert!(results.iter().all(|ok| *ok), "every worker succeeds: {results:?}");

    let registry = Registry::open(dir.path()).unwrap();
    let per_worker = usize::try_from(ITEMS_PER_WORKER).unwrap();
    let shared = registry.versions("shared", &json!({"p": 1})).unwrap();
    let expected: Vec<u64> = (1..=u64::try_from(WORKERS * per_worker).unwrap()).collect();
    assert_eq!(shared.iter().map(Item::version).collect::<Vec<_>>(), expected, "versions are unique and gapless");
    for worker in 0..i64::try_from(WORKERS).unwrap() {
        let own = registry.versions(&format!("own-{worker}"), &json!({"p": 1})).unwrap();
        assert_eq!(own.len(), per_worker);
        let mine = registry.search(Filter::attr("worker").eq(worker)).unwrap();
        assert_eq!(mine.len(), 2 * per_worker);
        for item in mine {
            assert_eq!(item.status(), Status::Ready);
            let attrs = item.attributes().unwrap();
            let index = attrs.get("index").and_then(cache_registry::AttrValue::as_int).unwrap();
            assert_eq!(read_all(&item), content(worker, index), "{} v{}", item.uri(), item.version());
        }
    }
    let files = std::fs::read_dir(dir.path().join(cache_registry::FILES_DIR)).unwrap().count();
    assert_eq!(files, 2 * WORKERS * per_worker, "one file per version, no partial files left");
    let report = registry.cleanup(&Cleanup::new().dry_run(true)).unwrap();
    assert!(report.removed.is_empty() && report.orphan_files.is_empty());
}

/// Reads the child's stdout until it prints `marker`. The marker may end a line the test
/// harness started (`test name ... `), so the line's end is what counts.
fn wait_for(lines: &mut impl BufRead, marker: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        let read = lines.read_line(&mut line).unwrap();
        assert!(read > 0, "the child ended before printing {marker}");
        if line.trim_end().ends_with(marker) {
            return;
        }
    }
}

#[test]
fn kill_9_during_a_write_leaves_the_item_in_write_never_ready() {
    if role().is_some() {
        let registry = Registry::open(child_dir()).unwrap();
        let item = registry.create("killed", &json!({}), &NewItem::new().ext("bin")).unwrap();
        let mut writer = item.write().unwrap();
        let chunk = vec![7u8; 64 * 1024];
        writer.write_all(&chunk).unwrap();
        writer.flush().unwrap();
        println!("WRITING");
        std::io::stdout().flush().unwrap();
        // Keeps writing until killed; stops by itself after ~30 s so it can never linger.
        for _ in 0..3_000 {
            writer.write_all(&chunk).unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
        std::process::exit(3);
    }

    let dir = tempfile::tempdir().unwrap();
    Registry::open(dir.path()).unwrap();
    let mut child =
        spawn_child("kill_9_during_a_write_leaves_the_item_in_write_never_ready", "writer", dir.path(), Stdio::piped());
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    wait_for(&mut stdout, "WRITING");
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, not finished");

    let registry = Registry::open(dir.path()).unwrap();
    let versions = registry.versions("killed", &json!({})).unwrap();
    assert_eq!(versions.len(), 1);
    let item = &versions[0];
    assert_eq!(item.status(), Status::Write);
    assert!(registry.best("killed", &json!({})).unwrap().is_none());
    assert!(!item.path().exists(), "only the partial file exists");
    assert_eq!(item.open().unwrap_err().kind(), ErrorKind::FileMissing);

    let kept = registry.cleanup(&Cleanup::new()).unwrap();
    assert!(kept.removed.is_empty() && kept.orphan_files.is_empty(), "a write in progress is left alone");
    let report = registry.cleanup(&Cleanup::new().stale_after(Duration::ZERO)).unwrap();
    assert_eq!(report.removed.len(), 1);
    assert_eq!(report.removed[0].reason, Reason::Stale);
    assert!(report.bytes_freed >= 64 * 1024, "the partial file is removed and counted");
    assert_eq!(std::fs::read_dir(dir.path().join(cache_registry::FILES_DIR)).unwrap().count(), 0);
}

#[test]
fn kill_9_among_many_commits_never_leaves_a_ready_item_with_a_torn_file() {
    if role().is_some() {
        let registry = Registry::open(child_dir()).unwrap();
        // Bounded: far more than the parent waits for, and then it stops by itself.
        for index in 0..5_000i64 {
            let item = registry.create("many", &json!({}), &NewItem::new().attr("index", index)).unwrap();
            let mut writer = item.write().unwrap();
            writer.write_all(&content(0, index)).unwrap();
            writer.commit().unwrap();
            println!("COMMITTED");
            std::io::stdout().flush().unwrap();
        }
        std::process::exit(3);
    }

    let dir = tempfile::tempdir().unwrap();
    Registry::open(dir.path()).unwrap();
    let mut child = spawn_child(
        "kill_9_among_many_commits_never_leaves_a_ready_item_with_a_torn_file",
        "committer",
        dir.path(),
        Stdio::piped(),
    );
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..25 {
        wait_for(&mut stdout, "COMMITTED");
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let registry = Registry::open(dir.path()).unwrap();
    let versions = registry.versions("many", &json!({})).unwrap();
    let ready: Vec<&Item> = versions.iter().filter(|item| item.status() == Status::Ready).collect();
    assert!(ready.len() >= 25, "every commit the child reported is Ready");
    for item in &ready {
        let index = item.attributes().unwrap().get("index").and_then(cache_registry::AttrValue::as_int).unwrap();
        assert_eq!(read_all(item), content(0, index), "a Ready version always has its whole file");
    }
    for item in versions.iter().filter(|item| item.status() != Status::Ready) {
        assert!(matches!(item.status(), Status::Uninitialized | Status::Write), "{:?}", item.status());
    }
}

/// Racers: each round commits one Ready version of the shared key, then creates and trashes a
/// few, so the key's newest versions are often Trash rows for the cleaner to remove.
const RACE_ROUNDS: i64 = 5_000;
const RACE_STOP: &str = "stop-racing";
/// Cleanups the parent runs while the racers race.
const CLEANUPS: usize = 3;
const RACE_TRASH_BATCH: usize = 2;
/// Trash rows the cleaner adds before each cleanup, so each one has a long list of files to
/// remove while the racers commit (the issue saw the bug with 4 000).
const CLEANER_FILL: usize = 300;

/// Rounds until the parent creates the stop file in the registry directory (bounded, so a
/// racer whose parent died stops by itself).
fn race(registry: &Registry, worker: i64) {
    let stop = registry.dir().join(RACE_STOP);
    for index in 0..RACE_ROUNDS {
        if stop.exists() {
            break;
        }
        let options = NewItem::new().attr("worker", worker).attr("index", index);
        let uri = format!("raced-{worker}");
        let item = registry.create(&uri, &json!({}), &options).unwrap();
        let mut writer = item.write().unwrap();
        writer.write_all(&content(worker, index)).unwrap();
        writer.commit().unwrap();
        for _ in 0..RACE_TRASH_BATCH {
            registry.create(&uri, &json!({}), &NewItem::new()).unwrap().trash().unwrap();
        }
    }
}

/// Every Ready version of the raced key has its file, holding exactly what its writer wrote,
/// and no version number was ever seen naming two different writes (`seen` across calls).
fn assert_every_ready_version_reads_its_own_content(
    registry: &Registry,
    seen: &mut std::collections::HashMap<(String, u64), (i64, i64)>,
) {
    let mut versions = Vec::new();
    for worker in 0..=2 {
        versions.extend(registry.versions(&format!("raced-{worker}"), &json!({})).unwrap());
    }
    let ready: Vec<&Item> = versions.iter().filter(|item| item.status() == Status::Ready).collect();
    assert!(!ready.is_empty());
    for item in ready {
        let attrs = item.attributes().unwrap();
        let worker = attrs.get("worker").and_then(cache_registry::AttrValue::as_int).unwrap();
        let index = attrs.get("index").and_then(cache_registry::AttrValue::as_int).unwrap();
        let first = *seen.entry((item.uri().to_owned(), item.version())).or_insert((worker, index));
        assert_eq!(first, (worker, index), "v{} was reused for another write", item.version());
        assert!(item.path().exists(), "v{} is Ready but its file is gone", item.version());
        assert_eq!(read_all(item), content(worker, index), "v{} reads another version's content", item.version());
    }
}

#[test]
fn cleanup_racing_creates_and_commits_never_removes_a_ready_file() {
    if let Some(role) = role() {
        let worker: i64 = role.strip_prefix("racer-").unwrap().parse().unwrap();
        race(&Registry::open(child_dir()).unwrap(), worker);
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    let children: Vec<Child> = (1..=2)
        .map(|worker| {
            spawn_child(
                "cleanup_racing_creates_and_commits_never_removes_a_ready_file",
                &format!("racer-{worker}"),
                dir.path(),
                Stdio::null(),
            )
        })
        .collect();
    let mut seen = std::collections::HashMap::new();
    std::thread::scope(|scope| {
        let racer = scope.spawn(|| race(&registry, 0));
        for _ in 0..CLEANUPS {
            for fill in 0..CLEANER_FILL {
                let uri = format!("fill-{}", fill % 50);
                registry.create(&uri, &json!({}), &NewItem::new()).unwrap().trash().unwrap();
            }
            registry.cleanup(&Cleanup::new()).unwrap();
            // Checked after every cleanup: the next one would remove a Ready version whose
            // file went missing, and with it the evidence.
            assert_every_ready_version_reads_its_own_content(&registry, &mut seen);
        }
        std::fs::write(dir.path().join(RACE_STOP), b"").unwrap();
        racer.join().unwrap();
        let results: Vec<bool> = children.into_iter().map(finish).collect();
        assert!(results.iter().all(|ok| *ok), "every racer succeeds: {results:?}");
    });
    assert_every_ready_version_reads_its_own_content(&registry, &mut seen);
    registry.cleanup(&Cleanup::new()).unwrap();
    assert_every_ready_version_reads_its_own_content(&registry, &mut seen);
}
