//! What `FsCache` does with the files themselves: modes, symlinks, damaged entries,
//! collisions, bad directories, eviction order, counts, streams and stale temp files.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use cache_core::{Bytes, Cache, ErrorKind, Ttl};
use cache_fs::FsCache;
use tokio::io::AsyncReadExt;

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp directory")
}

async fn open(dir: &Path) -> FsCache {
    FsCache::builder(dir).build().await.expect("building the cache")
}

/// Every file and directory under `root` (not `root` itself).
fn walk(root: &Path) -> Vec<(PathBuf, fs::Metadata)> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("listing") {
            let path = entry.expect("listing").path();
            let metadata = fs::symlink_metadata(&path).expect("metadata");
            if metadata.is_dir() {
                stack.push(path.clone());
            }
            found.push((path, metadata));
        }
    }
    found
}

fn assert_modes(root: &Path, file_mode: u32, dir_mode: u32) {
    let found = walk(root);
    let (dirs, files): (Vec<_>, Vec<_>) = found.iter().partition(|(_, metadata)| metadata.is_dir());
    // locks/, entries/ and its fan-out directories.
    assert!(dirs.len() >= 4, "expected the cache's directories, found {dirs:?}");
    assert!(files.len() >= 2, "expected an entry and a lock file, found {files:?}");
    for (path, metadata) in dirs {
        assert_eq!(metadata.mode() & 0o7777, dir_mode, "mode of directory {}", path.display());
    }
    for (path, metadata) in files {
        assert_eq!(metadata.mode() & 0o7777, file_mode, "mode of file {}", path.display());
    }
}

#[tokio::test]
async fn files_are_0600_and_directories_0700_by_default() {
    let tmp = tempdir();
    let cache = open(tmp.path()).await;
    cache.set("k", Bytes::from_static(b"v"), Ttl::Never).await.expect("set");
    cache.incr("n", 1).await.expect("incr takes a lock file");
    assert_modes(tmp.path(), 0o600, 0o700);
}

#[tokio::test]
async fn modes_are_configurable_whatever_the_umask() {
    let tmp = tempdir();
    let cache = FsCache::builder(tmp.path()).file_mode(0o664).dir_mode(0o775).build().await.expect("build");
    cache.set("k", Bytes::from_static(b"v"), Ttl::Never).await.expect("set");
    cache.incr("n", 1).await.expect("incr");
    let root = tmp.path();
    let lock_files: Vec<_> = walk(&root.join("locks")).into_iter().filter(|(_, m)| m.is_file()).collect();
    assert!(!lock_files.is_empty());
    for (path, metadata) in walk(root) {
        // Lock files were created with the same setting.
        let expected = if metadata.is_dir() { 0o775 } else { 0o664 };
        assert_eq!(metadata.mode() & 0o7777, expected, "mode of {}", path.display());
    }
}

#[tokio::test]
async fn modes_without_the_owners_bits_are_refused() {
    let tmp = tempdir();
    for builder in [FsCache::builder(tmp.path()).file_mode(0o400), FsCache::builder(tmp.path()).dir_mode(0o10700)] {
        let error = builder.build().await.expect_err("a mode the cache cannot use");
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    }
}

#[tokio::test]
async fn a_symlink_at_an_entry_path_is_not_followed() {
    let tmp = tempdir();
    let outside = tempdir();
    let cache = open(tmp.path()).await;
    let path = cache.entry_path("victim");

    // A complete, valid entry for the key, but outside the cache: following the link
    // would return it.
    cache.set("victim", Bytes::from_static(b"planted"), Ttl::Never).await.expect("set");
    let target = outside.path().join("planted-entry");
    fs::copy(&path, &target).expect("copying the entry out");
    fs::remove_file(&path).expect("removing the entry");
    symlink(&target, &path).expect("planting a symlink");

    assert_eq!(cache.get("victim").await.expect("get"), None, "the symlink was followed");
    assert!(fs::symlink_metadata(&path).is_err(), "the planted symlink is removed");
    let before = fs::read(&target).expect("target");

    symlink(&target, &path).expect("planting it again");
    assert!(cache.get_stream("victim").await.expect("get_stream").is_none(), "get_stream followed the symlink");
    symlink(&target, &path).ok();
    cache.set("victim", Bytes::from_static(b"mine"), Ttl::Never).await.expect("set over the symlink");
    assert!(fs::symlink_metadata(&path).expect("entry").file_type().is_file(), "set replaces the link itself");
    assert_eq!(fs::read(&target).expect("target"), before, "set wrote through the symlink");
    assert_eq!(cache.get("victim").await.expect("get"), Some(Bytes::from_static(b"mine")));
}

#[tokio::test]
async fn a_fifo_at_an_entry_path_is_a_miss_not_a_hang() {
    let tmp = tempdir();
    let cache = open(tmp.path()).await;
    cache.set("pipe", Bytes::from_static(b"x"), Ttl::Never).await.expect("set");
    let path = cache.entry_path("pipe");
    fs::remove_file(&path).expect("remove");
    let status = std::process::Command::new("mkfifo").arg(&path).status().expect("running mkfifo");
    assert!(status.success(), "mkfifo failed");
    assert_eq!(cache.get("pipe").await.expect("get"), None);
    assert!(fs::symlink_metadata(&path).is_err(), "the FIFO is removed");
}

/// Damages `key`'s entry file with `damage`, then checks it reads as a miss and is gone.
async fn damaged_reads_as_miss(damage: impl FnOnce(&Path, Vec<u8>)) {
    let tmp = tempdir();
    let cache = open(tmp.path()).await;
    let value: Bytes = (0..4000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>().into();
    cache.set("fragile", value, Ttl::Never).await.expect("set");
    let path = cache.entry_path("fragile");
    let bytes = fs::read(&path).expect("reading the entry");
    damage(&path, bytes);
    assert_eq!(cache.get("fragile").await.expect("a damaged entry is a miss, not an error"), None);
    assert!(!path.exists(), "a damaged entry is removed");
    cache.set("fragile", Bytes::from_static(b"again"), Ttl::Never).await.expect("set after damage");
    assert_eq!(cache.get("fragile").await.expect("get"), Some(Bytes::from_static(b"again")));
}

#[tokio::test]
async fn truncated_entries_read_as_misses() {
    damaged_reads_as_miss(|path, bytes| fs::write(path, &bytes[..bytes.len() / 2]).expect("truncate")).await;
    damaged_reads_as_miss(|path, bytes| fs::write(path, &bytes[..20]).expect("truncate into the header")).await;
    damaged_reads_as_miss(|path, _| fs::write(path, b"").expect("empty")).await;
}

#[tokio::test]
async fn corrupt_entries_read_as_misses() {
    damaged_reads_as_miss(|path, mut bytes| {
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(path, bytes).expect("flip a value bit");
    })
    .await;
    damaged_reads_as_miss(|path, bytes| fs::write(path, vec![0; bytes.len()]).expect("zero fill")).await;
    damaged_reads_as_miss(|path, mut bytes| {
        bytes[10] ^= 0x80;
        fs::write(path, bytes).expect("flip an expiry bit");
    })
    .await;
    damaged_reads_as_miss(|path, mut bytes| {
        bytes.extend_from_slice(b"trailing");
        fs::write(path, bytes).expect("append");
    })
    .await;
}

#[tokio::test]
async fn a_damaged_stream_ends_in_an_error_not_a_clean_end() {
    let tmp = tempdir();
    let cache = open(tmp.path()).await;
    let value = vec![7u8; 300_000];
    cache.set_stream("big", &value[..], Ttl::Never).await.expect("set_stream");
    let path = cache.entry_path("big");
    let mut bytes = fs::read(&path).expect("read");
    let middle = bytes.len() - 100_000;
    bytes[middle] ^= 0xff;
    fs::write(&path, &bytes).expect("damage");
    let mut reader = cache.get_stream("big").await.expect("get_stream").expect("header and key are intact");
    let mut back = Vec::new();
    let error = reader.read_to_end(&mut back).await.expect_err("damaged bytes must not end cleanly");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    // A caller that retries must not be told the value ended cleanly.
    for _ in 0..3 {
        let mut more = [0u8; 16];
        let error = reader.read(&mut more).await.expect_err("the checksum error is sticky");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    }
    let error = reader.read_to_end(&mut back).await.expect_err("read_to_end again");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
}

#[tokio::test]
async fn another_keys_entry_at_a_path_is_a_miss_and_never_its_value() {
    let tmp = tempdir();
    let cache = open(tmp.path()).await;
    cache.set("a", Bytes::from_static(b"value of a"), Ttl::Never).await.expect("set");
    // What a SHA-256 collision would look like: b's path holds a's entry.
    fs::create_dir_all(cache.entry_path("b").parent().expect("parent")).expect("fan-out directories");
    fs::copy(cache.entry_path("a"), cache.entry_path("b")).expect("copy");
    assert_eq!(cache.get("b").await.expect("get"), None, "returned another key's value");
    assert!(!cache.has("b").await.expect("has"));
    assert!(cache.get_stream("b").await.expect("get_stream").is_none());
    assert!(!cache.delete("b").await.expect("delete"), "another key's entry is not a live entry of b");
    assert_eq!(cache.incr("b", 1).await.expect("incr"), 1, "another key's entry counts as missing");
    assert_eq!(cache.get("a").await.expect("get"), Some(Bytes::from_static(b"value of a")));
}

#[tokio::test]
async fn the_entry_holds_the_full_key_and_its_path_depends_on_nothing_else() {
    let tmp = tempdir();
    let cache = FsCache::builder(tmp.path()).prefix("app:").build().await.expect("build");
    cache.set("k", Bytes::from_static(b"v"), Ttl::Never).await.expect("set");
    let bytes = fs::read(cache.entry_path("k")).expect("read");
    assert_eq!(&bytes[0..4], b"FSC\0", "magic");
    assert_eq!(&bytes[48..], b"app:kv", "prefix, key and value follow the 48-byte header");
    assert!(cache.entry_path("k").starts_with(cache.entries_directory()));
    let unprefixed = open(tmp.path()).await;
    assert_eq!(unprefixed.entry_path("app:k"), cache.entry_path("k"), "one full key, one file");
    assert_eq!(unprefixed.get("app:k").await.expect("get"), Some(Bytes::from_static(b"v")));
    let split_elsewhere = cache.with_prefix("ap");
    assert_eq!(split_elsewhere.get("p:k").await.expect("get"), Some(Bytes::from_static(b"v")));
    assert!(split_elsewhere.delete("p:k").await.expect("delete"), "the entry is the full key's, whoever wrote it");
    assert_eq!(cache.get("k").await.expect("get"), None);
}

#[tokio::test]
async fn with_prefix_shares_the_open_store() {
    let tmp = tempdir();
    let root = FsCache::builder(tmp.path()).max_entries(100).build().await.expect("build");
    let users = root.with_prefix("users:");
    assert_eq!(users.prefix(), "users:");
    assert_eq!(root.prefix(), "");
    assert_eq!(
        users.single_flight_scope().0,
        root.single_flight_scope().0,
        "the same store, so the same loads and the same count"
    );
    users.set("7", Bytes::from_static(b"Ada"), Ttl::Never).await.expect("set");
    assert_eq!(root.len(), 1, "the count is the shared handle's");
    assert_eq!(root.get("users:7").await.expect("get"), Some(Bytes::from_static(b"Ada")));
    assert_eq!(users.capabilities(), root.capabilities());
    root.with_prefix("other:").set("7", Bytes::from_static(b"x"), Ttl::Never).await.expect("set");
    users.clear().await.expect("clear users:");
    assert_eq!(root.get("users:7").await.expect("get"), None);
    assert_eq!(root.get("other:7").await.expect("get"), Some(Bytes::from_static(b"x")));
}

#[tokio::test]
async fn bad_directories_fail_at_build_with_the_path() {
    let tmp = tempdir();
    let missing = tmp.path().join("not-there");
    let file = tmp.path().join("a-file");
    fs::write(&file, b"").expect("file");
    let no_create = |dir: &Path| FsCache::builder(dir).create_directory(false);
    // /proc refuses new directories even to root.
    for (builder, dir, what) in [
        (no_create(&missing), missing.clone(), "missing, with create_directory off"),
        (FsCache::builder(&file), file.clone(), "a file"),
        (FsCache::builder("/proc"), PathBuf::from("/proc"), "unwritable"),
        (FsCache::builder(file.join("below")), file.join("below"), "below a file, cannot be created"),
    ] {
        let error = builder.build().await.expect_err(what);
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{what}: {error}");
        let context = error.context().unwrap_or_default();
        assert!(context.contains(&*dir.to_string_lossy()), "{what}: the error names the path: {error}");
    }
    let error = no_create(&missing).build().await.expect_err("missing");
    assert!(error.to_string().contains("create_directory"), "the error names the setting that would help: {error}");
    let error = cache_fs::FsCacheBuilder::new().build().await.expect_err("no directory");
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
}

#[tokio::test]
async fn a_missing_directory_is_created_private_by_default() {
    let tmp = tempdir();
    let nested = tmp.path().join("missing").join("deeper");
    let cache = FsCache::builder(&nested).build().await.expect("created by default");
    assert_eq!(fs::metadata(&nested).expect("created").mode() & 0o7777, 0o700);
    assert_eq!(fs::metadata(tmp.path().join("missing")).expect("parent").mode() & 0o7777, 0o700);
    cache.set("k", Bytes::from_static(b"v"), Ttl::Never).await.expect("usable");
    let shared = FsCache::builder(&nested).dir_mode(0o750).build().await.expect("an existing directory");
    assert_eq!(shared.get("k").await.expect("get"), Some(Bytes::from_static(b"v")));
    assert_eq!(fs::metadata(&nested).expect("kept").mode() & 0o7777, 0o700, "an existing directory keeps its mode");
}

#[tokio::test]
async fn limits_of_zero_are_refused_with_what_to_use_instead() {
    let tmp = tempdir();
    for (builder, setting) in [
        (FsCache::builder(tmp.path()).max_entries(0), "max_entries"),
        (FsCache::builder(tmp.path()).max_bytes(0), "max_bytes"),
        (FsCache::builder(tmp.path()).default_ttl(Duration::ZERO), "default_ttl"),
    ] {
        let error = builder.build().await.expect_err(setting);
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{setting}: {error}");
        let message = error.to_string();
        assert!(message.contains(setting), "the error names {setting}: {message}");
        assert!(message.contains("leave it unset"), "the error says what to do instead: {message}");
    }
    assert!(!tmp.path().join("entries").exists(), "a refused build touches nothing");
}

#[tokio::test]
async fn an_oversize_value_is_refused_before_anything_is_written() {
    let tmp = tempdir();
    let cache = FsCache::builder(tmp.path()).max_bytes(1 << 20).build().await.expect("build");
    let limit = cache.capabilities().max_value_len.expect("max_bytes declares a value limit");
    assert_eq!(limit, 512 << 10, "a value may take half of max_bytes");
    for index in 0..500 {
        cache.set(&format!("other-{index}"), Bytes::from(vec![1u8; 100]), Ttl::Never).await.expect("set");
    }
    cache.set("k", Bytes::from_static(b"old"), Ttl::Never).await.expect("set");
    let before = walk(tmp.path()).len();

    let too_big = Bytes::from(vec![b'n'; 2 << 20]);
    let error = cache.set("k", too_big.clone(), Ttl::Never).await.expect_err("2 MiB cannot fit in 1 MiB");
    assert_eq!(error.kind(), ErrorKind::ValueTooLarge, "{error}");
    assert!(error.to_string().contains("\"k\""), "the error names the key: {error}");
    let error = cache.sync().set("k", &too_big, Ttl::Never).expect_err("sync set");
    assert_eq!(error.kind(), ErrorKind::ValueTooLarge, "{error}");
    let over = Bytes::from(vec![b'o'; limit + 1]);
    let error = cache.add("fresh", over.clone(), Ttl::Never).await.expect_err("add one byte over");
    assert_eq!(error.kind(), ErrorKind::ValueTooLarge, "{error}");
    let error = cache.set_stream("k", &too_big[..], Ttl::Never).await.expect_err("streamed, it cannot fit either");
    assert_eq!(error.kind(), ErrorKind::ValueTooLarge, "{error}");
    let error = cache.set_many(&[("a", Bytes::new()), ("k", over)], Ttl::Never).await.expect_err("set_many");
    assert_eq!(error.kind(), ErrorKind::ValueTooLarge, "{error}");

    assert_eq!(cache.get("k").await.expect("get"), Some(Bytes::from_static(b"old")), "the old value stays");
    assert!(!cache.has("fresh").await.expect("has"), "a refused add stores nothing");
    assert!(!cache.has("a").await.expect("has"), "a refused set_many checks every value before writing any");
    let survivors = (0..500).map(|index| format!("other-{index}")).collect::<Vec<_>>();
    let refs: Vec<&str> = survivors.iter().map(String::as_str).collect();
    let got = cache.get_many(&refs).await.expect("get_many");
    assert!(got.iter().all(Option::is_some), "every other entry survives a refused set");
    assert_eq!(walk(tmp.path()).len(), before, "no file was left behind (temp or otherwise)");

    let at_limit = Bytes::from(vec![b'y'; limit]);
    cache.set("at-limit", at_limit.clone(), Ttl::Never).await.expect("a value of exactly the limit fits");
    assert!(cache.get("at-limit").await.expect("get") == Some(at_limit), "and it is kept, not evicted");
}

#[tokio::test]
async fn add_and_delete_agree_with_get_on_a_damaged_entry() {
    let tmp = tempdir();
    let cache = open(tmp.path()).await;
    let damage = |path: &Path| {
        let mut bytes = fs::read(path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(path, bytes).expect("flip a value bit");
    };
    // Large enough that verifying it takes more than one chunk.
    let value = Bytes::from(vec![3u8; 600_000]);
    cache.set("k", value.clone(), Ttl::Never).await.expect("set");
    damage(&cache.entry_path("k"));
    assert!(cache.add("k", Bytes::from_static(b"new"), Ttl::Never).await.expect("add"), "a damaged entry is absent");
    assert_eq!(cache.get("k").await.expect("get"), Some(Bytes::from_static(b"new")));

    cache.set("k", value, Ttl::Never).await.expect("set");
    damage(&cache.entry_path("k"));
    assert!(!cache.delete("k").await.expect("delete"), "a damaged entry was not a live one");
    assert!(!cache.entry_path("k").exists(), "delete removes the damaged entry");
    assert_eq!(cache.get("k").await.expect("get"), None);

    cache.set("s", Bytes::from_static(b"small"), Ttl::Never).await.expect("set");
    damage(&cache.entry_path("s"));
    assert!(!cache.sync().delete("s").expect("sync delete"));
    assert!(cache.sync().add("s", b"again", Ttl::Never).expect("sync add"));
}

#[tokio::test]
async fn len_and_size_follow_writes_and_other_handles_count_at_build() {
    let tmp = tempdir();
    let cache = open(tmp.path()).await;
    assert!(cache.is_empty());
    for key in ["a", "b", "c"] {
        cache.set(key, Bytes::from(vec![0u8; 100]), Ttl::Never).await.expect("set");
    }
    cache.set("a", Bytes::from(vec![0u8; 200]), Ttl::Never).await.expect("overwrite");
    assert_eq!(cache.len(), 3);
    let on_disk: u64 =
        ["a", "b", "c"].iter().map(|key| fs::metadata(cache.entry_path(key)).expect("entry").len()).sum();
    assert_eq!(cache.size_bytes(), on_disk);
    assert!(cache.delete("b").await.expect("delete"));
    assert_eq!(cache.len(), 2);
    let other = open(tmp.path()).await;
    assert_eq!((other.len(), other.size_bytes()), (2, cache.size_bytes()), "a new handle counts the disk");
    cache.clear().await.expect("clear");
    assert_eq!((cache.len(), cache.size_bytes()), (0, 0));
}

#[tokio::test]
async fn expired_entries_are_evicted_before_any_live_one() {
    let tmp = tempdir();
    let cache = FsCache::builder(tmp.path()).max_entries(4).build().await.expect("build");
    for key in ["never-1", "never-2", "never-3"] {
        cache.set(key, Bytes::from_static(b"v"), Ttl::Never).await.expect("set");
    }
    // Written last, so least recently used order alone would keep it and drop never-1.
    cache.set("short-lived", Bytes::from_static(b"v"), Ttl::millis(50)).await.expect("set");
    tokio::time::sleep(Duration::from_millis(100)).await;
    cache.set("never-4", Bytes::from_static(b"v"), Ttl::Never).await.expect("set over the limit");
    assert!(!cache.entry_path("short-lived").exists(), "the expired entry goes first");
    for key in ["never-1", "never-2", "never-3", "never-4"] {
        assert!(cache.has(key).await.expect("has"), "{key} was evicted while an expired entry remained");
    }
    assert_eq!(cache.len(), 4);
}

#[tokio::test]
async fn the_least_recently_used_entry_is_evicted() {
    let tmp = tempdir();
    let cache = FsCache::builder(tmp.path()).max_entries(3).build().await.expect("build");
    for key in ["a", "b", "c"] {
        cache.set(key, Bytes::from_static(b"v"), Ttl::Never).await.expect("set");
        // File times come from the kernel's coarse clock (a few ms a tick): without a
        // pause, b and c can carry the same time and either may go first.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A read refreshes recency at most once a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(cache.has("a").await.expect("read a"));
    // A sweep reads every header; that must not count as a use of b and c.
    cache.sweep().await.expect("sweep");
    cache.set("d", Bytes::from_static(b"v"), Ttl::Never).await.expect("set over the limit");
    let present = ["a", "b", "c", "d"].map(|key| cache.entry_path(key).exists());
    assert_eq!(present, [true, false, true, true], "b was used least recently");
}

#[tokio::test]
async fn max_bytes_keeps_the_namespace_under_the_limit() {
    let tmp = tempdir();
    let cache = FsCache::builder(tmp.path()).max_bytes(100_000).build().await.expect("build");
    for index in 0..30 {
        cache.set(&format!("k{index}"), Bytes::from(vec![1u8; 10_000]), Ttl::Never).await.expect("set");
        assert!(cache.size_bytes() <= 100_000 + 10_100, "size {} after {index}", cache.size_bytes());
    }
    let report = cache.sweep().await.expect("sweep");
    assert!(report.bytes <= 100_000, "the sweep found {} bytes", report.bytes);
    assert!(cache.has("k29").await.expect("has"), "the newest entry is kept");
    assert!(!cache.has("k0").await.expect("has"), "the oldest entry is gone");
}

#[tokio::test]
async fn streams_round_trip_and_agree_with_get() {
    let tmp = tempdir();
    let cache = FsCache::builder(tmp.path()).prefix("s:").build().await.expect("build");
    let value: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let written = cache.set_stream("blob", &value[..], Ttl::Never).await.expect("set_stream");
    assert_eq!(written, value.len() as u64);
    let mut reader = cache.get_stream("blob").await.expect("get_stream").expect("present");
    assert_eq!(reader.len(), value.len() as u64);
    let mut back = Vec::new();
    reader.read_to_end(&mut back).await.expect("read");
    assert!(back == value, "the streamed value came back changed");
    assert!(cache.get("blob").await.expect("get") == Some(Bytes::from(value)), "get disagrees with the stream");
    assert!(cache.get_stream("absent").await.expect("get_stream").is_none());
    cache.set("small", Bytes::from_static(b"set, then streamed"), Ttl::Never).await.expect("set");
    let mut small = String::new();
    let mut reader = cache.get_stream("small").await.expect("get_stream").expect("present");
    reader.read_to_string(&mut small).await.expect("read");
    assert_eq!(small, "set, then streamed");
}

/// A reader that yields some bytes and then fails.
struct Failing(usize);

impl tokio::io::AsyncRead for Failing {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.0 == 0 {
            return std::task::Poll::Ready(Err(std::io::Error::other("the origin hung up")));
        }
        let n = self.0.min(buf.remaining()).min(1000);
        buf.put_slice(&vec![9u8; n]);
        self.0 -= n;
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn a_failing_stream_keeps_the_old_value_and_leaves_no_temp_file() {
    let tmp = tempdir();
    let cache = open(tmp.path()).await;
    cache.set("k", Bytes::from_static(b"old"), Ttl::Never).await.expect("set");
    let error = cache.set_stream("k", Failing(50_000), Ttl::Never).await.expect_err("the reader fails");
    assert!(std::error::Error::source(&error).is_some(), "the reader's error is the source: {error}");
    assert_eq!(cache.get("k").await.expect("get"), Some(Bytes::from_static(b"old")));
    let temps = walk(tmp.path()).into_iter().filter(|(path, _)| path.to_string_lossy().contains(".tmp-")).count();
    assert_eq!(temps, 0, "the temp file is removed");
}

#[tokio::test]
async fn sweeps_remove_dead_writers_temp_files_but_not_fresh_ones() {
    let tmp = tempdir();
    let cache = open(tmp.path()).await;
    cache.set("k", Bytes::from_static(b"v"), Ttl::Never).await.expect("set");
    let dir = cache.entry_path("k").parent().expect("leaf directory").to_path_buf();
    let stale = dir.join(".tmp-999999-1");
    let fresh = dir.join(".tmp-999999-2");
    fs::write(&stale, b"half written").expect("stale temp");
    fs::write(&fresh, b"being written").expect("fresh temp");
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    fs::File::options().write(true).open(&stale).expect("open").set_modified(two_hours_ago).expect("age it");
    let report = cache.sweep().await.expect("sweep");
    assert_eq!(report.stale_temps, 1);
    assert!(!stale.exists() && fresh.exists());
    assert_eq!(report.entries, 1);
    assert_eq!(fs::metadata(&dir).expect("dir").permissions().mode() & 0o777, 0o700);
}

#[tokio::test]
async fn every_durability_level_writes_and_reads_back() {
    use cache_fs::Durability;
    for durability in [Durability::None, Durability::SyncData, Durability::SyncAll] {
        let tmp = tempdir();
        let cache = FsCache::builder(tmp.path()).durability(durability).build().await.expect("build");
        cache.set("k", Bytes::from_static(b"v"), Ttl::Never).await.expect("set");
        assert_eq!(cache.incr("n", 2).await.expect("incr"), 2);
        assert!(cache.add("a", Bytes::from_static(b"x"), Ttl::Never).await.expect("add"));
        cache.set_stream("s", &b"streamed"[..], Ttl::Never).await.expect("set_stream");
        let got = cache.get_many(&["k", "n", "a", "s"]).await.expect("get_many");
        let expected = [&b"v"[..], b"2", b"x", b"streamed"].map(|bytes| Some(Bytes::copy_from_slice(bytes)));
        assert_eq!(got, expected, "{durability:?}");
    }
}

#[tokio::test]
async fn reads_answer_the_same_with_and_without_the_page_cache_path() {
    let tmp = tempdir();
    let cached = open(tmp.path()).await;
    let blocking = FsCache::builder(tmp.path()).cached_reads(false).build().await.expect("build");
    let big = Bytes::from(vec![5u8; 100_000]);
    cached.set("small", Bytes::from_static(b"s"), Ttl::Never).await.expect("set");
    cached.set("big", big.clone(), Ttl::Never).await.expect("set");
    cached.set("brief", Bytes::from_static(b"b"), Ttl::millis(20)).await.expect("set");
    tokio::time::sleep(Duration::from_millis(50)).await;
    for cache in [&cached, &blocking] {
        assert_eq!(cache.get("small").await.expect("get"), Some(Bytes::from_static(b"s")));
        assert_eq!(cache.get("big").await.expect("get"), Some(big.clone()));
        assert_eq!(cache.get("missing").await.expect("get"), None);
        assert!(cache.has("small").await.expect("has"));
        assert!(!cache.has("missing").await.expect("has"));
    }
    assert_eq!(cached.get("brief").await.expect("get"), None, "an expired entry is a miss on the cached path");
    assert!(!cached.entry_path("brief").exists(), "and the blocking path it falls back to removes it");
}
