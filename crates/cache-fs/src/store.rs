//! The blocking core: paths, reads, atomic writes, locks, sweeps. The async API in
//! `lib.rs` and the synchronous view in `sync.rs` are thin layers over this.
//!
//! Every keyed operation takes the handle's prefix and the caller's key and works on the
//! entry of the full key `prefix + key`, whoever wrote it (the literal prefix rule): the
//! path is a function of the full key only.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, IoSlice, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cache_core::{CacheStats, ReadCounters};
use rustix::fs::{FlockOperation, flock};
use sha2::{Digest, Sha256};

use crate::Durability;
use crate::entry::{Checksum, HEADER_LEN, Header, checksum_of};
use crate::error::FsError;
use crate::lock::{Locks, SHARDS, noatime, nofollow, nonblock};
use crate::usage::{Totals, Usage};

/// A read refreshes an entry's access time (the LRU clock) at most this often, so a hot
/// entry costs one extra syscall per second, not one per read.
const TOUCH_EVERY: Duration = Duration::from_secs(1);
/// Temp files older than this belong to a writer that died; a sweep or `clear` removes them.
const STALE_TEMP: Duration = Duration::from_secs(3600);
const TEMP_PREFIX: &str = ".tmp-";
/// Longest stored form of an `i64` (`-9223372036854775808`), with a sign to spare.
const MAX_INTEGER_LEN: u64 = 21;
/// Entries up to this size are read into a zeroed buffer with one `read`.
pub(crate) const SMALL_READ: usize = 64 * 1024;
/// Entries up to this size (a 1 MiB value with room for its header and a long key) may
/// be read on the calling task when every byte is in the page cache: copying and checking
/// 1 MiB takes about 90 µs there, against about 150 µs through a blocking thread, where
/// the bytes cross threads and two wake-ups are paid.
pub(crate) const INLINE_READ: usize = (1 << 20) + 64 * 1024;
/// Chunk size for verifying a large value's checksum without holding it in memory.
const VERIFY_CHUNK: usize = 256 * 1024;
/// The directory under the cache directory that holds the entries.
pub(crate) const ENTRIES_DIR: &str = "entries";

/// The settings a store runs with, fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) root: PathBuf,
    pub(crate) default_ttl: Option<Duration>,
    pub(crate) durability: Durability,
    pub(crate) max_entries: Option<u64>,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) file_mode: u32,
    pub(crate) dir_mode: u32,
    pub(crate) cached_reads: bool,
}

/// Where one full key lives.
pub(crate) struct Slot {
    pub(crate) shard: u8,
    pub(crate) dir: PathBuf,
    pub(crate) path: PathBuf,
}

/// Which file a decision was made about, so it is removed only if it is still that file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
}

impl Identity {
    fn of(metadata: &fs::Metadata) -> Identity {
        Identity { dev: metadata.dev(), ino: metadata.ino() }
    }
}

/// What is at an entry path.
enum Probe {
    Missing,
    /// A complete, unexpired entry of this key.
    Live {
        header: Header,
        file_len: u64,
        value: Option<Bytes>,
    },
    /// An expired, truncated or corrupt entry, or something that is not a regular file:
    /// a miss, to be removed if the path still holds the same file.
    Dead(Option<Identity>),
    /// A valid entry of another key (only a hash collision or a moved file does that):
    /// a miss, left alone.
    Foreign,
}

/// How much of an entry a probe reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Depth {
    /// Header and key: enough to know the entry is complete, live and this key's.
    Header,
    /// Header and key, and the value's checksum verified in chunks without keeping the
    /// value: what `add` and `delete` need to agree with `get` on a damaged entry.
    Verified,
    /// The whole file, checksum verified, value returned.
    Value,
}

/// What [`Store::sweep`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Swept {
    pub(crate) expired: u64,
    pub(crate) corrupt: u64,
    pub(crate) evicted: u64,
    pub(crate) stale_temps: u64,
    pub(crate) entries: u64,
    pub(crate) bytes: u64,
}

/// Whether a sweep waits for one running in another process, or leaves the work to it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SweepWait {
    Wait,
    SkipIfBusy,
}

pub(crate) struct Store {
    settings: Settings,
    entries_dir: PathBuf,
    locks: Locks,
    usage: Usage,
    /// One sweep at a time in this process; `sweep_file`'s `flock` does it across processes.
    sweeping: Mutex<()>,
    sweep_file: OnceLock<File>,
    /// Set when a flush found no valid shared count: the next write sweeps to recount.
    recount: AtomicBool,
    temp_counter: AtomicU64,
    /// What this process's handles did, for `FsCache::stats`.
    reads: ReadCounters,
    inserts: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("settings", &self.settings).finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    text
}

fn is_entry_name(name: &[u8]) -> bool {
    name.len() == 64 && name.iter().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_fanout_name(name: &[u8]) -> bool {
    name.len() == 2 && name.iter().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

/// Unix milliseconds now, rounded down.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// The stored expiry for an entry written now with `lifetime` (`None` = never): rounded up
/// to the millisecond so an entry never dies early.
pub(crate) fn expiry_ms(lifetime: Option<Duration>) -> u64 {
    let Some(lifetime) = lifetime else { return 0 };
    let Some(at) = SystemTime::now().checked_add(lifetime) else { return 0 };
    let since = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let millis = since.as_millis() + u128::from(since.subsec_nanos() % 1_000_000 != 0);
    // 0 means never, so the earliest expiry is 1 ms after the epoch; past u64 is never.
    u64::try_from(millis).map_or(0, |millis| millis.max(1))
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A temp file that is removed unless it was renamed into place.
pub(crate) struct TempFile {
    path: Option<PathBuf>,
}

impl TempFile {
    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Runs on error and on cancellation; a leftover would only cost disk until the next
        // sweep, so a failed unlink is not worth reporting.
        if let Some(path) = self.path.take() {
            let _ = fs::remove_file(path);
        }
    }
}

impl Store {
    pub(crate) fn new(settings: Settings) -> Store {
        let entries_dir = settings.root.join(ENTRIES_DIR);
        let locks = Locks::new(settings.root.join("locks"), settings.file_mode);
        let usage =
            Usage::new(settings.root.join("usage"), settings.file_mode, settings.max_entries, settings.max_bytes);
        Store {
            settings,
            entries_dir,
            locks,
            usage,
            sweeping: Mutex::new(()),
            sweep_file: OnceLock::new(),
            recount: AtomicBool::new(false),
            temp_counter: AtomicU64::new(0),
            reads: ReadCounters::new(),
            inserts: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            expirations: AtomicU64::new(0),
        }
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn entries_dir(&self) -> &Path {
        &self.entries_dir
    }

    pub(crate) fn reads(&self) -> &ReadCounters {
        &self.reads
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let mut stats = self.reads.stats();
        stats.inserts = self.inserts.load(Ordering::Relaxed);
        stats.evictions = self.evictions.load(Ordering::Relaxed);
        stats.expirations = self.expirations.load(Ordering::Relaxed);
        stats
    }

    pub(crate) fn len(&self) -> u64 {
        unsigned(self.usage.estimate().entries)
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        unsigned(self.usage.estimate().bytes)
    }

    /// Records a change this handle made; a shared count that turned out unknown asks for
    /// a recount at the next chance.
    fn account(&self, entries: i64, bytes: i64) -> Result<(), FsError> {
        if !self.usage.record(entries, bytes)? {
            self.recount.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The largest value a `set` may store with `max_bytes`: half of it, so a value at the
    /// limit fits with any reasonable key, and eviction never has to remove the entry it
    /// was making room for.
    pub(crate) fn max_value_len(&self) -> Option<u64> {
        self.settings.max_bytes.map(|max| max / 2)
    }

    /// `ValueTooLarge` when a value of `value_len` bytes under a full key of
    /// `full_key_len` bytes cannot be stored: over [`max_value_len`](Self::max_value_len),
    /// or an entry file over 90% of `max_bytes` (where a sweep would evict it at once).
    pub(crate) fn check_fits(&self, full_key_len: usize, value_len: u64) -> Result<(), FsError> {
        let Some(max) = self.settings.max_bytes else { return Ok(()) };
        let file_len = (HEADER_LEN as u64).saturating_add(full_key_len as u64).saturating_add(value_len);
        if value_len > max / 2 || file_len > max - max / 10 {
            return Err(FsError::TooLarge { value_len, file_len, max_bytes: max });
        }
        Ok(())
    }

    /// Creates the directories a store needs (the 256 fan-out directories up front, so no
    /// write pays for creating one) and checks it can write there.
    pub(crate) fn prepare(&self) -> Result<(), FsError> {
        let fanout = (0..SHARDS).map(|shard| self.entries_dir.join(hex(&[shard as u8])));
        for dir in [self.locks.dir().to_path_buf(), self.entries_dir.clone()].into_iter().chain(fanout) {
            self.make_dir(&dir).map_err(|source| FsError::Directory {
                what: "cannot create a directory in the cache directory",
                path: dir.clone(),
                source: Some(source),
            })?;
        }
        let probe = self.entries_dir.join(format!("{TEMP_PREFIX}probe-{}", std::process::id()));
        let written = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(self.settings.file_mode)
            .custom_flags(nofollow())
            .open(&probe)
            .and_then(|mut file| file.write_all(b"probe"));
        let removed = fs::remove_file(&probe);
        written.and(removed).map_err(|source| FsError::Directory {
            what: "the cache directory is not writable",
            path: self.entries_dir.clone(),
            source: Some(source),
        })
    }

    /// Creates `dir` (one level) with the configured mode; an existing one is fine.
    fn make_dir(&self, dir: &Path) -> io::Result<()> {
        match DirBuilder::new().mode(self.settings.dir_mode).create(dir) {
            Ok(()) => {
                // The umask may have taken bits the caller asked for.
                if self.settings.dir_mode != crate::DEFAULT_DIR_MODE {
                    fs::set_permissions(dir, Permissions::from_mode(self.settings.dir_mode))?;
                }
                if self.settings.durability == Durability::SyncAll {
                    if let Some(parent) = dir.parent() {
                        sync_dir(parent)?;
                    }
                }
                Ok(())
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// The path of the full key `prefix + key`: one level of 256 directories, then the
    /// SHA-256 of the full key, so any key (`../`, NUL, 10 KiB) is a safe name.
    pub(crate) fn slot(&self, prefix: &str, key: &str) -> Slot {
        let mut hasher = Sha256::new();
        hasher.update(prefix.as_bytes());
        hasher.update(key.as_bytes());
        let hash = hasher.finalize();
        let name = hex(&hash);
        let dir = self.entries_dir.join(&name[0..2]);
        let path = dir.join(&name);
        Slot { shard: hash[0], dir, path }
    }

    /// Reads what is at `slot` for the full key `prefix + key`.
    fn probe(&self, slot: &Slot, prefix: &str, key: &str, depth: Depth, touch: bool) -> Result<Probe, FsError> {
        let file = match OpenOptions::new().read(true).custom_flags(nofollow() | nonblock()).open(&slot.path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Probe::Missing),
            // ELOOP: a symlink planted at the path. Not followed; removed like any non-entry.
            Err(error) if error.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
                let identity = fs::symlink_metadata(&slot.path).ok().map(|metadata| Identity::of(&metadata));
                return Ok(Probe::Dead(identity));
            }
            Err(error) => return Err(FsError::io("opening", &slot.path, error)),
        };
        let metadata = file.metadata().map_err(|error| FsError::io("inspecting", &slot.path, error))?;
        let identity = Some(Identity::of(&metadata));
        if !metadata.file_type().is_file() || metadata.len() < HEADER_LEN as u64 {
            return Ok(Probe::Dead(identity));
        }
        let file_len = metadata.len();
        let full_len = prefix.len() + key.len();
        let (header, data) = match depth {
            Depth::Value => {
                let Ok(len) = usize::try_from(file_len) else { return Ok(Probe::Dead(identity)) };
                let mut data = Vec::new();
                let read = if len <= SMALL_READ {
                    // One read into a zeroed buffer: zeroing a few KiB costs less than the
                    // extra syscalls `read_to_end` makes.
                    data.resize(len, 0);
                    (&file).read_exact(&mut data)
                } else {
                    data.reserve_exact(len);
                    read_into_spare_capacity(&file, &mut data, len)
                };
                match read {
                    Ok(()) => {}
                    // Shorter than fstat said: replaced or cut while we read.
                    Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(Probe::Dead(identity)),
                    Err(error) => return Err(FsError::io("reading", &slot.path, error)),
                }
                let Some(header) = Header::decode(&data) else { return Ok(Probe::Dead(identity)) };
                (header, data)
            }
            Depth::Header | Depth::Verified => {
                let mut head = [0; HEADER_LEN];
                if file.read_exact_at(&mut head, 0).is_err() {
                    return Ok(Probe::Dead(identity));
                }
                let Some(header) = Header::decode(&head) else { return Ok(Probe::Dead(identity)) };
                let ident_len = header.prefix_len.saturating_add(header.key_len);
                if header.file_len() != Some(file_len) {
                    return Ok(Probe::Dead(identity));
                }
                if ident_len != full_len as u64 {
                    return Ok(Probe::Foreign);
                }
                let mut data = Vec::with_capacity(HEADER_LEN + full_len);
                data.extend_from_slice(&head);
                data.resize(HEADER_LEN + full_len, 0);
                if file.read_exact_at(&mut data[HEADER_LEN..], HEADER_LEN as u64).is_err() {
                    return Ok(Probe::Dead(identity));
                }
                (header, data)
            }
        };
        if header.file_len() != Some(file_len) || data.len() < HEADER_LEN {
            return Ok(Probe::Dead(identity));
        }
        let body = &data[HEADER_LEN..];
        let Some(ident_len) = usize::try_from(header.prefix_len.saturating_add(header.key_len)).ok() else {
            return Ok(Probe::Dead(identity));
        };
        if depth == Depth::Value && checksum_of(&header, &[body]) != header.checksum {
            return Ok(Probe::Dead(identity));
        }
        // The entry's own split between prefix and key does not matter: the full key does.
        let ident_matches = ident_len == full_len
            && body.get(..prefix.len()) == Some(prefix.as_bytes())
            && body.get(prefix.len()..full_len) == Some(key.as_bytes());
        if !ident_matches {
            return Ok(Probe::Foreign);
        }
        if !header.is_live(now_ms()) {
            return Ok(Probe::Dead(identity));
        }
        if depth == Depth::Verified && !verify_value(&file, &header, body)? {
            return Ok(Probe::Dead(identity));
        }
        if touch {
            touch_if_stale(&file, &metadata);
        }
        let value = match depth {
            Depth::Value => Some(Bytes::from(data).slice(HEADER_LEN + full_len..)),
            Depth::Header | Depth::Verified => None,
        };
        Ok(Probe::Live { header, file_len, value })
    }

    /// Removes a dead file if `path` still holds it. Writers rename under the shard lock,
    /// so holding it here means a fresh entry that replaced the dead one is never removed.
    fn remove_dead(&self, slot: &Slot, identity: Option<Identity>) -> Result<(), FsError> {
        let _guard = self.locks.lock(slot.shard)?;
        self.remove_dead_locked(slot, identity)
    }

    fn remove_dead_locked(&self, slot: &Slot, identity: Option<Identity>) -> Result<(), FsError> {
        let Ok(metadata) = fs::symlink_metadata(&slot.path) else { return Ok(()) };
        if identity.is_some_and(|identity| identity != Identity::of(&metadata)) {
            return Ok(());
        }
        // Whatever it was, it is not an entry anyone can read; failing to remove it only
        // leaves a miss in place.
        if fs::remove_file(&slot.path).is_ok() && metadata.file_type().is_file() {
            self.account(-1, -signed(metadata.len()))?;
        }
        Ok(())
    }

    pub(crate) fn get(&self, prefix: &str, key: &str) -> Result<Option<Bytes>, FsError> {
        let slot = self.slot(prefix, key);
        let value = match self.probe(&slot, prefix, key, Depth::Value, true)? {
            Probe::Live { value, .. } => value,
            Probe::Missing | Probe::Foreign => None,
            Probe::Dead(identity) => {
                self.remove_dead(&slot, identity)?;
                None
            }
        };
        self.reads.record(value.is_some());
        Ok(value)
    }

    /// A `get` that never waits for the disk, for the async API to run on its own thread:
    /// `None` when it cannot answer that way and the caller should hand the `get` to a
    /// blocking thread. It answers only for a complete, live entry of up to [`INLINE_READ`]
    /// bytes, all in the page cache (`preadv2` with `RWF_NOWAIT` refuses to wait for a disk
    /// read), and for a missing file. Everything that writes (removing a damaged entry, refreshing
    /// the access time) is left to the blocking path, and the file is opened `O_NOATIME` so
    /// the read itself writes nothing either.
    pub(crate) fn get_cached(&self, prefix: &str, key: &str) -> Option<Result<Option<Bytes>, FsError>> {
        use std::os::fd::AsFd;
        let slot = self.slot(prefix, key);
        let flags = nofollow() | nonblock() | noatime();
        let file = match OpenOptions::new().read(true).custom_flags(flags).open(&slot.path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                self.reads.miss();
                return Some(Ok(None));
            }
            // A symlink, a file of another owner (O_NOATIME), anything odd: the full path.
            Err(_) => return None,
        };
        let metadata = file.metadata().ok()?;
        let len = usize::try_from(metadata.len()).ok()?;
        if !metadata.file_type().is_file() || !(HEADER_LEN..=INLINE_READ).contains(&len) || needs_touch(&metadata) {
            return None;
        }
        let mut data = vec![0; len];
        let read = rustix::io::preadv2(
            file.as_fd(),
            &mut [io::IoSliceMut::new(&mut data)],
            0,
            rustix::io::ReadWriteFlags::NOWAIT,
        );
        if read.ok()? != len {
            return None;
        }
        let header = Header::decode(&data)?;
        let full_len = prefix.len() + key.len();
        if header.file_len() != Some(metadata.len())
            || usize::try_from(header.prefix_len.saturating_add(header.key_len)).ok()? != full_len
        {
            return None;
        }
        let body = &data[HEADER_LEN..];
        if body.get(..prefix.len()) != Some(prefix.as_bytes())
            || body.get(prefix.len()..full_len) != Some(key.as_bytes())
        {
            return None;
        }
        if checksum_of(&header, &[body]) != header.checksum || !header.is_live(now_ms()) {
            return None;
        }
        self.reads.hit();
        Some(Ok(Some(Bytes::from(data).slice(HEADER_LEN + full_len..))))
    }

    /// Opens the value of `prefix + key` for streaming: the file positioned at the value,
    /// its header, and the checksum state after the stored prefix and key.
    pub(crate) fn open_value(&self, prefix: &str, key: &str) -> Result<Option<(File, Header, Checksum)>, FsError> {
        let slot = self.slot(prefix, key);
        match self.probe(&slot, prefix, key, Depth::Header, true)? {
            Probe::Live { header, .. } => {
                let file = match OpenOptions::new().read(true).custom_flags(nofollow() | nonblock()).open(&slot.path) {
                    Ok(file) => file,
                    Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(error) => return Err(FsError::io("opening", &slot.path, error)),
                };
                // The path may have been replaced since the probe; read this file's own header.
                let mut head = [0; HEADER_LEN];
                let reread = file.read_exact_at(&mut head, 0).ok().and_then(|()| Header::decode(&head));
                if reread != Some(header) {
                    return Ok(None);
                }
                let Some(offset) = header.value_offset() else { return Ok(None) };
                let mut checksum = Checksum::new();
                let mut ident = vec![0; usize::try_from(offset).unwrap_or(0).saturating_sub(HEADER_LEN)];
                if file.read_exact_at(&mut ident, HEADER_LEN as u64).is_err() {
                    return Ok(None);
                }
                checksum.update(&ident);
                let mut file = file;
                file.seek(SeekFrom::Start(offset)).map_err(|error| FsError::io("seeking", &slot.path, error))?;
                Ok(Some((file, header, checksum)))
            }
            Probe::Missing | Probe::Foreign => Ok(None),
            Probe::Dead(identity) => {
                self.remove_dead(&slot, identity)?;
                Ok(None)
            }
        }
    }

    pub(crate) fn has(&self, prefix: &str, key: &str) -> Result<bool, FsError> {
        Ok(self.get(prefix, key)?.is_some())
    }

    /// Opens a new temp file beside `slot`'s entry. The fan-out directories exist from
    /// `build`; one removed since (by hand) is made again.
    pub(crate) fn create_temp(&self, slot: &Slot) -> Result<(File, TempFile), FsError> {
        let mut created_dirs = false;
        loop {
            let count = self.temp_counter.fetch_add(1, Ordering::Relaxed);
            let path = slot.dir.join(format!("{TEMP_PREFIX}{}-{count}", std::process::id()));
            let opened = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(self.settings.file_mode)
                .custom_flags(nofollow())
                .open(&path);
            match opened {
                Ok(file) => {
                    let temp = TempFile { path: Some(path) };
                    if self.settings.file_mode != crate::DEFAULT_FILE_MODE {
                        let path = temp.path().unwrap_or(&slot.dir);
                        file.set_permissions(Permissions::from_mode(self.settings.file_mode))
                            .map_err(|error| FsError::io("setting the mode of", path, error))?;
                    }
                    return Ok((file, temp));
                }
                // A temp name left by a dead process with a recycled pid: take the next.
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(error) if error.kind() == io::ErrorKind::NotFound && !created_dirs => {
                    created_dirs = true;
                    for dir in [self.entries_dir.as_path(), slot.dir.as_path()] {
                        self.make_dir(dir).map_err(|error| FsError::io("creating", dir, error))?;
                    }
                }
                Err(error) => return Err(FsError::io("creating", &path, error)),
            }
        }
    }

    /// Writes a whole entry to a temp file, synced as the durability setting asks.
    fn write_temp(
        &self,
        slot: &Slot,
        prefix: &str,
        key: &str,
        value: &[u8],
        expires_ms: u64,
    ) -> Result<(TempFile, u64), FsError> {
        self.check_fits(prefix.len() + key.len(), value.len() as u64)?;
        let (prefix, key) = (prefix.as_bytes(), key.as_bytes());
        let mut header = Header::new(expires_ms, prefix, key, value.len() as u64);
        header.checksum = checksum_of(&header, &[prefix, key, value]);
        let head = header.encode();
        let (mut file, temp) = self.create_temp(slot)?;
        let path = temp.path().unwrap_or(&slot.dir);
        let mut parts = [IoSlice::new(&head), IoSlice::new(prefix), IoSlice::new(key), IoSlice::new(value)];
        write_all_vectored(&mut file, &mut parts).map_err(|error| FsError::io("writing", path, error))?;
        self.sync_file(&file, path)?;
        Ok((temp, header.file_len().unwrap_or(0)))
    }

    pub(crate) fn sync_file(&self, file: &File, path: &Path) -> Result<(), FsError> {
        if self.settings.durability != Durability::None {
            file.sync_data().map_err(|error| FsError::io("syncing", path, error))?;
        }
        Ok(())
    }

    /// Renames `temp` over `slot`'s entry. The caller holds the shard lock. Returns the
    /// change in entries and bytes, for the caller to record once the lock is released.
    fn publish_locked(&self, temp: &mut TempFile, slot: &Slot, file_len: u64) -> Result<(i64, i64), FsError> {
        let Some(path) = temp.path.take() else { return Ok((0, 0)) };
        let replaced = fs::symlink_metadata(&slot.path).ok().filter(|metadata| metadata.file_type().is_file());
        if let Err(error) = fs::rename(&path, &slot.path) {
            temp.path = Some(path);
            return Err(FsError::io("renaming into place", &slot.path, error));
        }
        self.inserts.fetch_add(1, Ordering::Relaxed);
        Ok(match replaced {
            Some(old) => (0, signed(file_len) - signed(old.len())),
            None => (1, signed(file_len)),
        })
    }

    /// After a publish, outside the lock: the directory sync `SyncAll` asks for, the
    /// change added to the shared count, and a sweep when the directory is over a limit.
    pub(crate) fn after_publish(&self, slot: &Slot, change: (i64, i64)) -> Result<(), FsError> {
        if self.settings.durability == Durability::SyncAll {
            sync_dir(&slot.dir).map_err(|error| FsError::io("syncing", &slot.dir, error))?;
        }
        self.account(change.0, change.1)?;
        self.sweep_if_over()
    }

    fn sweep_if_over(&self) -> Result<(), FsError> {
        if self.settings.max_entries.is_none() && self.settings.max_bytes.is_none() {
            return Ok(());
        }
        let estimate = self.usage.estimate();
        if self.recount.load(Ordering::Relaxed)
            || self.over_limits_at(unsigned(estimate.entries), unsigned(estimate.bytes))
        {
            // Others' writes since this handle last flushed may already have been swept:
            // ask the shared count before walking the directory.
            match self.usage.flush()? {
                Some(totals) if !self.over_limits_at(unsigned(totals.entries), unsigned(totals.bytes)) => {}
                _ => {
                    self.sweep(SweepWait::SkipIfBusy)?;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn set(&self, prefix: &str, key: &str, value: &[u8], expires_ms: u64) -> Result<(), FsError> {
        let slot = self.slot(prefix, key);
        let (mut temp, file_len) = self.write_temp(&slot, prefix, key, value, expires_ms)?;
        let change = {
            let _guard = self.locks.lock(slot.shard)?;
            self.publish_locked(&mut temp, &slot, file_len)?
        };
        self.after_publish(&slot, change)
    }

    /// Publishes a temp file written by the streaming path.
    pub(crate) fn publish(&self, slot: &Slot, mut temp: TempFile, file_len: u64) -> Result<(), FsError> {
        let change = {
            let _guard = self.locks.lock(slot.shard)?;
            self.publish_locked(&mut temp, slot, file_len)?
        };
        self.after_publish(slot, change)
    }

    pub(crate) fn add(&self, prefix: &str, key: &str, value: &[u8], expires_ms: u64) -> Result<bool, FsError> {
        let slot = self.slot(prefix, key);
        // Written before taking the lock, so the lock is held only to check and rename.
        let (mut temp, file_len) = self.write_temp(&slot, prefix, key, value, expires_ms)?;
        let change = {
            let _guard = self.locks.lock(slot.shard)?;
            // Verified, so a damaged entry counts as absent here as it does for `get`.
            match self.probe(&slot, prefix, key, Depth::Verified, false)? {
                Probe::Live { .. } => return Ok(false),
                Probe::Missing | Probe::Dead(_) | Probe::Foreign => self.publish_locked(&mut temp, &slot, file_len)?,
            }
        };
        self.after_publish(&slot, change)?;
        Ok(true)
    }

    pub(crate) fn delete(&self, prefix: &str, key: &str) -> Result<bool, FsError> {
        let slot = self.slot(prefix, key);
        let change = {
            let _guard = self.locks.lock(slot.shard)?;
            // Verified: a damaged entry is removed, but it was not a live one.
            match self.probe(&slot, prefix, key, Depth::Verified, false)? {
                Probe::Missing | Probe::Foreign => return Ok(false),
                Probe::Dead(identity) => {
                    self.remove_dead_locked(&slot, identity)?;
                    return Ok(false);
                }
                Probe::Live { file_len, .. } => match fs::remove_file(&slot.path) {
                    Ok(()) => (-1, -signed(file_len)),
                    Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
                    Err(error) => return Err(FsError::io("removing", &slot.path, error)),
                },
            }
        };
        self.account(change.0, change.1)?;
        Ok(true)
    }

    pub(crate) fn incr(&self, prefix: &str, key: &str, delta: i64) -> Result<i64, FsError> {
        let slot = self.slot(prefix, key);
        let new_value;
        let change = {
            let _guard = self.locks.lock(slot.shard)?;
            let (current, expires_ms) = match self.probe(&slot, prefix, key, Depth::Header, false)? {
                Probe::Live { header, .. } if header.value_len > MAX_INTEGER_LEN => return Err(FsError::NotAnInteger),
                Probe::Live { header, .. } => match self.probe(&slot, prefix, key, Depth::Value, false)? {
                    Probe::Live { value: Some(value), .. } => {
                        (cache_core::parse_integer(&value).ok_or(FsError::NotAnInteger)?, header.expires_ms)
                    }
                    // Corrupt after all: it counts as missing, like any dead entry.
                    _ => (0, expiry_ms(self.settings.default_ttl)),
                },
                Probe::Missing | Probe::Dead(_) | Probe::Foreign => (0, expiry_ms(self.settings.default_ttl)),
            };
            new_value = current.checked_add(delta).ok_or(FsError::Overflow)?;
            let (mut temp, file_len) =
                self.write_temp(&slot, prefix, key, &cache_core::format_integer(new_value), expires_ms)?;
            self.publish_locked(&mut temp, &slot, file_len)?
        };
        self.after_publish(&slot, change)?;
        Ok(new_value)
    }

    /// Removes every entry whose full key starts with `prefix`, whoever wrote it (with
    /// the empty prefix: every entry), and temp files of dead writers.
    pub(crate) fn clear(&self, prefix: &str) -> Result<(), FsError> {
        let stale_before = SystemTime::now().checked_sub(STALE_TEMP);
        let mut removed = Totals::default();
        let walked = self.walk(|path, name, metadata| {
            if is_entry_name(name) {
                // Without a prefix every entry goes, readable or not; with one, only an
                // entry whose stored full key is known to start with it.
                if !prefix.is_empty() && !full_key_starts_with(path, prefix.as_bytes()) {
                    return Ok(());
                }
                // Not under the shard lock: a path belongs to one full key, so an entry
                // written there meanwhile is the same key's, and clear races it like any
                // delete would.
                match fs::remove_file(path) {
                    Ok(()) => {
                        removed.entries += 1;
                        removed.bytes += signed(metadata.len());
                    }
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(error) => return Err(FsError::io("removing", path, error)),
                }
            } else if is_stale_temp(name, metadata, stale_before) {
                let _ = fs::remove_file(path);
            }
            Ok(())
        });
        let accounted = self.account(-removed.entries, -removed.bytes);
        walked.and(accounted)
    }

    /// Calls `visit` with every file in the fan-out directories.
    fn walk(&self, mut visit: impl FnMut(&Path, &[u8], &fs::Metadata) -> Result<(), FsError>) -> Result<(), FsError> {
        use std::os::unix::ffi::OsStrExt;
        for first in read_dir_names(&self.entries_dir)? {
            if !is_fanout_name(first.as_os_str().as_bytes()) {
                continue;
            }
            let leaf = self.entries_dir.join(first);
            for name in read_dir_names(&leaf)? {
                let path = leaf.join(&name);
                let Ok(metadata) = fs::symlink_metadata(&path) else { continue };
                visit(&path, name.as_os_str().as_bytes(), &metadata)?;
            }
        }
        Ok(())
    }

    /// Takes the cross-process sweep lock: `None` when another process holds it and the
    /// caller would rather leave the work to that sweep.
    fn sweep_lock(&self, wait: SweepWait) -> Result<Option<SweepGuard<'_>>, FsError> {
        let path = self.locks.dir().join("sweep");
        let file = match self.sweep_file.get() {
            Some(file) => file,
            None => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(self.settings.file_mode)
                    .custom_flags(nofollow())
                    .open(&path)
                    .map_err(|error| FsError::io("opening the lock file", &path, error))?;
                if self.settings.file_mode != crate::DEFAULT_FILE_MODE {
                    // The umask may have taken bits the caller asked for; only the creator
                    // may chmod, and anyone can lock regardless.
                    let _ = file.set_permissions(Permissions::from_mode(self.settings.file_mode));
                }
                self.sweep_file.get_or_init(|| file)
            }
        };
        let operation = match wait {
            SweepWait::Wait => FlockOperation::LockExclusive,
            SweepWait::SkipIfBusy => FlockOperation::NonBlockingLockExclusive,
        };
        loop {
            match flock(file, operation) {
                Ok(()) => return Ok(Some(SweepGuard { file })),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
                Err(errno) => return Err(FsError::io("locking", &path, errno.into())),
            }
        }
    }

    /// Walks the directory: removes expired and corrupt entries and stale temp files, then,
    /// while over `max_entries` or `max_bytes`, the least recently used entries down to 90%
    /// of the limit, and stores the count in the shared usage file. One sweep runs at a
    /// time across processes; with `SkipIfBusy`, a sweep already running elsewhere does
    /// the work and this returns `None`.
    pub(crate) fn sweep(&self, wait: SweepWait) -> Result<Option<Swept>, FsError> {
        struct Candidate {
            path: PathBuf,
            shard: u8,
            identity: Identity,
            used: SystemTime,
            len: u64,
        }
        let _in_process = match wait {
            SweepWait::Wait => self.sweeping.lock().unwrap_or_else(PoisonError::into_inner),
            SweepWait::SkipIfBusy => match self.sweeping.try_lock() {
                Ok(guard) => guard,
                Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
            },
        };
        let Some(_across_processes) = self.sweep_lock(wait)? else { return Ok(None) };
        self.recount.store(false, Ordering::Relaxed);
        let before = self.usage.snapshot()?;
        let now = now_ms();
        let stale_before = SystemTime::now().checked_sub(STALE_TEMP);
        let mut swept = Swept::default();
        let mut live = Vec::new();
        let mut dead = Vec::new();
        self.walk(|path, name, metadata| {
            if !is_entry_name(name) {
                if is_stale_temp(name, metadata, stale_before) && fs::remove_file(path).is_ok() {
                    swept.stale_temps += 1;
                }
                return Ok(());
            }
            let shard = name_shard(name);
            let identity = Identity::of(metadata);
            let header = read_header(path).filter(|header| header.file_len() == Some(metadata.len()));
            match header {
                Some(header) if header.is_live(now) => live.push(Candidate {
                    path: path.to_path_buf(),
                    shard,
                    identity,
                    used: metadata.accessed().unwrap_or(UNIX_EPOCH),
                    len: metadata.len(),
                }),
                Some(_) => dead.push((path.to_path_buf(), shard, identity, true)),
                None => dead.push((path.to_path_buf(), shard, identity, false)),
            }
            Ok(())
        })?;
        for (path, shard, identity, expired) in dead {
            let _guard = self.locks.lock(shard)?;
            if fs::symlink_metadata(&path).is_ok_and(|metadata| Identity::of(&metadata) == identity)
                && fs::remove_file(&path).is_ok()
            {
                if expired {
                    swept.expired += 1;
                } else {
                    swept.corrupt += 1;
                }
            }
        }
        let mut entries = live.len() as u64;
        let mut bytes: u64 = live.iter().map(|candidate| candidate.len).sum();
        let target_entries = self.settings.max_entries.map(|max| max - max / 10);
        let target_bytes = self.settings.max_bytes.map(|max| max - max / 10);
        let over = |entries: u64, bytes: u64| {
            target_entries.is_some_and(|target| entries > target) || target_bytes.is_some_and(|target| bytes > target)
        };
        if self.over_limits_at(entries, bytes) {
            live.sort_by_key(|candidate| candidate.used);
            for candidate in &live {
                if !over(entries, bytes) {
                    break;
                }
                let _guard = self.locks.lock(candidate.shard)?;
                let same = fs::symlink_metadata(&candidate.path)
                    .is_ok_and(|metadata| Identity::of(&metadata) == candidate.identity);
                if same && fs::remove_file(&candidate.path).is_ok() {
                    swept.evicted += 1;
                    entries -= 1;
                    bytes -= candidate.len;
                }
            }
        }
        swept.entries = entries;
        swept.bytes = bytes;
        self.expirations.fetch_add(swept.expired, Ordering::Relaxed);
        self.evictions.fetch_add(swept.evicted, Ordering::Relaxed);
        self.usage.store_count(Totals { entries: signed(entries), bytes: signed(bytes) }, before)?;
        Ok(Some(swept))
    }

    fn over_limits_at(&self, entries: u64, bytes: u64) -> bool {
        self.settings.max_entries.is_some_and(|max| entries > max)
            || self.settings.max_bytes.is_some_and(|max| bytes > max)
    }
}

/// Holds the cross-process sweep lock until dropped.
struct SweepGuard<'a> {
    file: &'a File,
}

impl Drop for SweepGuard<'_> {
    fn drop(&mut self) {
        // The kernel releases it with the process anyway.
        let _ = flock(self.file, FlockOperation::Unlock);
    }
}

/// Checks the value's checksum by reading it in chunks after the header and full key
/// (`ident`, already read); `false` for a file that does not match or ends early.
fn verify_value(file: &File, header: &Header, ident: &[u8]) -> Result<bool, FsError> {
    let Some(mut offset) = header.value_offset() else { return Ok(false) };
    let mut checksum = Checksum::new();
    checksum.update(ident);
    let mut left = header.value_len;
    let mut chunk = vec![0; usize::try_from(left).unwrap_or(VERIFY_CHUNK).min(VERIFY_CHUNK)];
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(VERIFY_CHUNK).min(chunk.len());
        if file.read_exact_at(&mut chunk[..want], offset).is_err() {
            return Ok(false);
        }
        checksum.update(&chunk[..want]);
        offset += want as u64;
        left -= want as u64;
    }
    Ok(checksum.finish(header) == header.checksum)
}

/// Whether the entry at `path` holds a full key starting with `prefix` (read with
/// `O_NOATIME`, so a prefixed `clear` does not count as a use of the entries it keeps).
fn full_key_starts_with(path: &Path, prefix: &[u8]) -> bool {
    let Some(file) = open_noatime(path) else { return false };
    let mut head = [0; HEADER_LEN];
    if file.read_exact_at(&mut head, 0).is_err() {
        return false;
    }
    let Some(header) = Header::decode(&head) else { return false };
    if header.prefix_len.saturating_add(header.key_len) < prefix.len() as u64 {
        return false;
    }
    let mut start = vec![0; prefix.len()];
    file.read_exact_at(&mut start, HEADER_LEN as u64).is_ok() && start == prefix
}

fn name_shard(name: &[u8]) -> u8 {
    let digit = |byte: u8| match byte {
        b'0'..=b'9' => byte - b'0',
        b'a'..=b'f' => byte - b'a' + 10,
        _ => 0,
    };
    match name {
        [high, low, ..] => digit(*high) << 4 | digit(*low),
        _ => 0,
    }
}

/// Opens an entry for a sweep or a prefixed `clear`. `O_NOATIME`, because with `relatime`
/// the kernel would count these reads as uses and scramble the next sweep's LRU order; it
/// is refused (EPERM) on files another user owns, which are then read without it.
fn open_noatime(path: &Path) -> Option<File> {
    let open = |flags: i32| OpenOptions::new().read(true).custom_flags(nofollow() | nonblock() | flags).open(path);
    match open(noatime()) {
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => open(0),
        opened => opened,
    }
    .ok()
}

fn read_header(path: &Path) -> Option<Header> {
    let file = open_noatime(path)?;
    let mut head = [0; HEADER_LEN];
    file.read_exact_at(&mut head, 0).ok()?;
    Header::decode(&head)
}

fn is_stale_temp(name: &[u8], metadata: &fs::Metadata, stale_before: Option<SystemTime>) -> bool {
    name.starts_with(TEMP_PREFIX.as_bytes())
        && metadata.file_type().is_file()
        && stale_before.is_some_and(|before| metadata.modified().is_ok_and(|modified| modified < before))
}

fn read_dir_names(dir: &Path) -> Result<Vec<std::ffi::OsString>, FsError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(FsError::io("listing", dir, error)),
    };
    entries
        .map(|entry| entry.map(|entry| entry.file_name()).map_err(|error| FsError::io("listing", dir, error)))
        .collect()
}

/// Reads `file` from its current position until `data` holds `len` bytes, into memory
/// it does not zero first (zeroing a large buffer costs more than reading it), in as few
/// reads as the kernel allows: one for a file in the page cache. `read_to_end` would add
/// an fstat, an lseek and a final read to see the end, or grow in small steps when bounded.
fn read_into_spare_capacity(file: &File, data: &mut Vec<u8>, len: usize) -> io::Result<()> {
    while data.len() < len {
        match rustix::io::read(file, rustix::buffer::spare_capacity(data)) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(())
}

/// Refreshes the access time a sweep orders evictions by. Best effort: a file system that
/// refuses it only makes eviction order coarser.
pub(crate) fn touch_if_stale(file: &File, metadata: &fs::Metadata) {
    if needs_touch(metadata) {
        let _ = file.set_times(fs::FileTimes::new().set_accessed(SystemTime::now()));
    }
}

/// Whether a read should refresh the file's access time now.
fn needs_touch(metadata: &fs::Metadata) -> bool {
    let now = SystemTime::now();
    metadata.accessed().map_or(true, |used| now.duration_since(used).is_ok_and(|age| age >= TOUCH_EVERY))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn write_all_vectored(file: &mut File, mut parts: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut parts, 0);
    while !parts.is_empty() {
        match file.write_vectored(parts) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(written) => IoSlice::advance_slices(&mut parts, written),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_rounds_up_and_never_means_zero() {
        assert_eq!(expiry_ms(None), 0);
        assert_eq!(expiry_ms(Some(Duration::MAX)), 0);
        let before = now_ms();
        let expiry = expiry_ms(Some(Duration::from_micros(1500)));
        assert!(expiry >= before + 2, "1.5 ms must round up to at least 2 ms from {before}, got {expiry}");
    }

    #[test]
    fn shard_is_the_first_byte_of_the_name() {
        assert_eq!(name_shard(b"ff00"), 0xff);
        assert_eq!(name_shard(b"0a11"), 0x0a);
        assert!(is_entry_name(hex(&[0xab; 32]).as_bytes()));
        assert!(!is_entry_name(b".tmp-1-2"));
    }

    #[test]
    fn the_path_depends_on_the_full_key_only() {
        let store = Store::new(Settings {
            root: PathBuf::from("/nonexistent"),
            default_ttl: None,
            durability: Durability::None,
            max_entries: None,
            max_bytes: None,
            file_mode: 0o600,
            dir_mode: 0o700,
            cached_reads: true,
        });
        assert_eq!(store.slot("app:", "config").path, store.slot("", "app:config").path);
        assert_eq!(store.slot("a", "bc").path, store.slot("ab", "c").path);
        assert_ne!(store.slot("a", "b").path, store.slot("", "a").path);
    }
}
