//! The blocking core: paths, reads, atomic writes, locks, sweeps. The async API in
//! `lib.rs` runs each operation as one `spawn_blocking` task over this.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, IoSlice, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::Durability;
use crate::entry::{Checksum, HEADER_LEN, Header, checksum_of};
use crate::error::FsError;
use crate::lock::{Locks, noatime, nofollow, nonblock};

/// A read refreshes an entry's access time (the LRU clock) at most this often, so a hot
/// entry costs one extra syscall per second, not one per read.
const TOUCH_EVERY: Duration = Duration::from_secs(1);
/// Temp files older than this belong to a writer that died; a sweep or `clear` removes them.
const STALE_TEMP: Duration = Duration::from_secs(3600);
const TEMP_PREFIX: &str = ".tmp-";
/// Longest stored form of an `i64` (`-9223372036854775808`), with a sign to spare.
const MAX_INTEGER_LEN: u64 = 21;
/// Entries up to this size are read into a zeroed buffer with one `read`.
const SMALL_READ: usize = 64 * 1024;

/// The settings a store runs with, fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) root: PathBuf,
    pub(crate) prefix: String,
    pub(crate) default_ttl: Option<Duration>,
    pub(crate) durability: Durability,
    pub(crate) max_entries: Option<u64>,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) file_mode: u32,
    pub(crate) dir_mode: u32,
}

/// Where one key lives.
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

pub(crate) struct Store {
    settings: Settings,
    namespace: PathBuf,
    locks: Locks,
    /// This process's view of the namespace's size, set by each sweep and moved by each
    /// write through this handle (see `FsCache::len`).
    entries: AtomicI64,
    bytes: AtomicI64,
    sweeping: AtomicBool,
    temp_counter: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("settings", &self.settings).field("namespace", &self.namespace).finish()
    }
}

pub(crate) fn namespace_name(prefix: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"cache-fs namespace\0");
    hasher.update(prefix.as_bytes());
    // 128 bits name a namespace; the full prefix is also stored in every entry and compared.
    format!("ns-{}", hex(&hasher.finalize()[..16]))
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
        let namespace = settings.root.join(namespace_name(&settings.prefix));
        let locks = Locks::new(settings.root.join("locks"), settings.file_mode);
        Store {
            settings,
            namespace,
            locks,
            entries: AtomicI64::new(0),
            bytes: AtomicI64::new(0),
            sweeping: AtomicBool::new(false),
            temp_counter: AtomicU64::new(0),
        }
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn namespace(&self) -> &Path {
        &self.namespace
    }

    pub(crate) fn len(&self) -> u64 {
        unsigned(self.entries.load(Ordering::Relaxed))
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        unsigned(self.bytes.load(Ordering::Relaxed))
    }

    fn account(&self, entries: i64, bytes: i64) {
        self.entries.fetch_add(entries, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Creates the directories a store needs and checks it can write there.
    pub(crate) fn prepare(&self) -> Result<(), FsError> {
        for dir in [self.locks.dir(), self.namespace.as_path()] {
            self.make_dir(dir).map_err(|source| FsError::Directory {
                what: "cannot create a directory in the cache directory",
                path: dir.to_path_buf(),
                source: Some(source),
            })?;
        }
        let probe = self.namespace.join(format!("{TEMP_PREFIX}probe-{}", std::process::id()));
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
            path: self.namespace.clone(),
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

    pub(crate) fn slot(&self, key: &str) -> Slot {
        let prefix = self.settings.prefix.as_bytes();
        let mut hasher = Sha256::new();
        // The length keeps ("ab", "c") and ("a", "bc") apart.
        hasher.update((prefix.len() as u64).to_le_bytes());
        hasher.update(prefix);
        hasher.update(key.as_bytes());
        let hash = hasher.finalize();
        let name = hex(&hash);
        let dir = self.namespace.join(&name[0..2]).join(&name[2..4]);
        let path = dir.join(&name);
        Slot { shard: hash[0], dir, path }
    }

    fn now_live(&self, header: &Header) -> bool {
        header.is_live(now_ms())
    }

    /// Reads what is at `slot` for `key`.
    fn probe(&self, slot: &Slot, key: &str, depth: Depth, touch: bool) -> Result<Probe, FsError> {
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
        let prefix = self.settings.prefix.as_bytes();
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
                    // Zeroing a large buffer costs more than the file's own size probe, and
                    // with that probe `read_to_end` fills the buffer in one read.
                    data.reserve_exact(len);
                    (&file).read_to_end(&mut data).map(drop)
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
            Depth::Header => {
                let mut head = [0; HEADER_LEN];
                if file.read_exact_at(&mut head, 0).is_err() {
                    return Ok(Probe::Dead(identity));
                }
                let Some(header) = Header::decode(&head) else { return Ok(Probe::Dead(identity)) };
                let ident_len = header.prefix_len.saturating_add(header.key_len);
                if header.file_len() != Some(file_len) {
                    return Ok(Probe::Dead(identity));
                }
                if ident_len != (prefix.len() + key.len()) as u64 {
                    return Ok(Probe::Foreign);
                }
                let mut ident = vec![0; usize::try_from(ident_len).unwrap_or(0)];
                if file.read_exact_at(&mut ident, HEADER_LEN as u64).is_err() {
                    return Ok(Probe::Dead(identity));
                }
                let mut data = head.to_vec();
                data.extend_from_slice(&ident);
                (header, data)
            }
        };
        if header.file_len() != Some(file_len) || data.len() < HEADER_LEN {
            return Ok(Probe::Dead(identity));
        }
        let body = &data[HEADER_LEN..];
        let (Ok(prefix_len), Ok(key_len)) = (usize::try_from(header.prefix_len), usize::try_from(header.key_len))
        else {
            return Ok(Probe::Dead(identity));
        };
        if depth == Depth::Value && checksum_of(&header, &[body]) != header.checksum {
            return Ok(Probe::Dead(identity));
        }
        let ident_matches = body.get(..prefix_len) == Some(prefix)
            && body.get(prefix_len..prefix_len.saturating_add(key_len)) == Some(key.as_bytes());
        if !ident_matches {
            return Ok(Probe::Foreign);
        }
        if !self.now_live(&header) {
            return Ok(Probe::Dead(identity));
        }
        if touch {
            touch_if_stale(&file, &metadata);
        }
        let value = match depth {
            Depth::Value => {
                let start = HEADER_LEN + prefix_len + key_len;
                Some(Bytes::from(data).slice(start..))
            }
            Depth::Header => None,
        };
        Ok(Probe::Live { header, file_len, value })
    }

    /// Removes a dead file if `path` still holds it. Writers rename under the shard lock,
    /// so holding it here means a fresh entry that replaced the dead one is never removed.
    fn remove_dead(&self, slot: &Slot, identity: Option<Identity>) -> Result<(), FsError> {
        let _guard = self.locks.lock(slot.shard)?;
        self.remove_dead_locked(slot, identity);
        Ok(())
    }

    fn remove_dead_locked(&self, slot: &Slot, identity: Option<Identity>) {
        let Ok(metadata) = fs::symlink_metadata(&slot.path) else { return };
        if identity.is_some_and(|identity| identity != Identity::of(&metadata)) {
            return;
        }
        // Whatever it was, it is not an entry anyone can read; failing to remove it only
        // leaves a miss in place.
        if fs::remove_file(&slot.path).is_ok() && metadata.file_type().is_file() {
            self.account(-1, -signed(metadata.len()));
        }
    }

    pub(crate) fn get(&self, key: &str) -> Result<Option<Bytes>, FsError> {
        let slot = self.slot(key);
        match self.probe(&slot, key, Depth::Value, true)? {
            Probe::Live { value, .. } => Ok(value),
            Probe::Missing | Probe::Foreign => Ok(None),
            Probe::Dead(identity) => {
                self.remove_dead(&slot, identity)?;
                Ok(None)
            }
        }
    }

    /// Opens `key`'s value for streaming: the file positioned at the value, its header, and
    /// the checksum state after the prefix and key.
    pub(crate) fn open_value(&self, key: &str) -> Result<Option<(File, Header, Checksum)>, FsError> {
        let slot = self.slot(key);
        match self.probe(&slot, key, Depth::Header, true)? {
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

    pub(crate) fn has(&self, key: &str) -> Result<bool, FsError> {
        Ok(self.get(key)?.is_some())
    }

    /// Opens a new temp file beside `slot`'s entry, creating the fan-out directories on
    /// first use.
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
                    let fanout = slot.dir.parent().unwrap_or(&slot.dir);
                    for dir in [self.namespace.as_path(), fanout, slot.dir.as_path()] {
                        self.make_dir(dir).map_err(|error| FsError::io("creating", dir, error))?;
                    }
                }
                Err(error) => return Err(FsError::io("creating", &path, error)),
            }
        }
    }

    /// Writes a whole entry to a temp file, synced as the durability setting asks.
    fn write_temp(&self, slot: &Slot, key: &str, value: &[u8], expires_ms: u64) -> Result<(TempFile, u64), FsError> {
        let prefix = self.settings.prefix.as_bytes();
        let mut header = Header::new(expires_ms, prefix, key.as_bytes(), value.len() as u64);
        header.checksum = checksum_of(&header, &[prefix, key.as_bytes(), value]);
        let head = header.encode();
        let (mut file, temp) = self.create_temp(slot)?;
        let path = temp.path().unwrap_or(&slot.dir);
        let mut parts = [IoSlice::new(&head), IoSlice::new(prefix), IoSlice::new(key.as_bytes()), IoSlice::new(value)];
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

    /// Renames `temp` over `slot`'s entry. The caller holds the shard lock.
    fn publish_locked(&self, temp: &mut TempFile, slot: &Slot, file_len: u64) -> Result<(), FsError> {
        let Some(path) = temp.path.take() else { return Ok(()) };
        let replaced = fs::symlink_metadata(&slot.path).ok().filter(|metadata| metadata.file_type().is_file());
        if let Err(error) = fs::rename(&path, &slot.path) {
            temp.path = Some(path);
            return Err(FsError::io("renaming into place", &slot.path, error));
        }
        match replaced {
            Some(old) => self.account(0, signed(file_len) - signed(old.len())),
            None => self.account(1, signed(file_len)),
        }
        Ok(())
    }

    /// After a publish, outside the lock: the directory sync `SyncAll` asks for, and a
    /// sweep when this process sees the namespace over its limits.
    pub(crate) fn after_publish(&self, slot: &Slot) -> Result<(), FsError> {
        if self.settings.durability == Durability::SyncAll {
            sync_dir(&slot.dir).map_err(|error| FsError::io("syncing", &slot.dir, error))?;
        }
        if self.over_limits() && !self.sweeping.swap(true, Ordering::Acquire) {
            let swept = self.sweep();
            self.sweeping.store(false, Ordering::Release);
            swept?;
        }
        Ok(())
    }

    fn over_limits(&self) -> bool {
        self.settings.max_entries.is_some_and(|max| self.len() > max)
            || self.settings.max_bytes.is_some_and(|max| self.size_bytes() > max)
    }

    pub(crate) fn set(&self, key: &str, value: &[u8], expires_ms: u64) -> Result<(), FsError> {
        let slot = self.slot(key);
        let (mut temp, file_len) = self.write_temp(&slot, key, value, expires_ms)?;
        {
            let _guard = self.locks.lock(slot.shard)?;
            self.publish_locked(&mut temp, &slot, file_len)?;
        }
        self.after_publish(&slot)
    }

    /// Publishes a temp file written by the streaming path.
    pub(crate) fn publish(&self, slot: &Slot, mut temp: TempFile, file_len: u64) -> Result<(), FsError> {
        {
            let _guard = self.locks.lock(slot.shard)?;
            self.publish_locked(&mut temp, slot, file_len)?;
        }
        self.after_publish(slot)
    }

    pub(crate) fn add(&self, key: &str, value: &[u8], expires_ms: u64) -> Result<bool, FsError> {
        let slot = self.slot(key);
        // Written before taking the lock, so the lock is held only to check and rename.
        let (mut temp, file_len) = self.write_temp(&slot, key, value, expires_ms)?;
        {
            let _guard = self.locks.lock(slot.shard)?;
            match self.probe(&slot, key, Depth::Header, false)? {
                Probe::Live { .. } => return Ok(false),
                Probe::Missing | Probe::Dead(_) | Probe::Foreign => self.publish_locked(&mut temp, &slot, file_len)?,
            }
        }
        self.after_publish(&slot)?;
        Ok(true)
    }

    pub(crate) fn delete(&self, key: &str) -> Result<bool, FsError> {
        let slot = self.slot(key);
        let _guard = self.locks.lock(slot.shard)?;
        match self.probe(&slot, key, Depth::Header, false)? {
            Probe::Missing | Probe::Foreign => Ok(false),
            Probe::Dead(identity) => {
                self.remove_dead_locked(&slot, identity);
                Ok(false)
            }
            Probe::Live { file_len, .. } => match fs::remove_file(&slot.path) {
                Ok(()) => {
                    self.account(-1, -signed(file_len));
                    Ok(true)
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(error) => Err(FsError::io("removing", &slot.path, error)),
            },
        }
    }

    pub(crate) fn incr(&self, key: &str, delta: i64) -> Result<i64, FsError> {
        let slot = self.slot(key);
        let new_value;
        {
            let _guard = self.locks.lock(slot.shard)?;
            let (current, expires_ms) = match self.probe(&slot, key, Depth::Header, false)? {
                Probe::Live { header, .. } if header.value_len > MAX_INTEGER_LEN => return Err(FsError::NotAnInteger),
                Probe::Live { header, .. } => match self.probe(&slot, key, Depth::Value, false)? {
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
                self.write_temp(&slot, key, &cache_core::format_integer(new_value), expires_ms)?;
            self.publish_locked(&mut temp, &slot, file_len)?;
        }
        self.after_publish(&slot)?;
        Ok(new_value)
    }

    /// Removes every entry of this namespace (and temp files of dead writers); entries of
    /// other prefixes live in other namespace directories and are not looked at.
    pub(crate) fn clear(&self) -> Result<(), FsError> {
        let stale_before = SystemTime::now().checked_sub(STALE_TEMP);
        self.walk(|path, name, metadata| {
            if is_entry_name(name) {
                match fs::remove_file(path) {
                    Ok(()) => self.account(-1, -signed(metadata.len())),
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(error) => return Err(FsError::io("removing", path, error)),
                }
            } else if is_stale_temp(name, metadata, stale_before) {
                let _ = fs::remove_file(path);
            }
            Ok(())
        })
    }

    /// Calls `visit` with every file in the namespace's fan-out directories.
    fn walk(&self, mut visit: impl FnMut(&Path, &[u8], &fs::Metadata) -> Result<(), FsError>) -> Result<(), FsError> {
        use std::os::unix::ffi::OsStrExt;
        for first in read_dir_names(&self.namespace)? {
            if !is_fanout_name(first.as_os_str().as_bytes()) {
                continue;
            }
            let first = self.namespace.join(first);
            for second in read_dir_names(&first)? {
                if !is_fanout_name(second.as_os_str().as_bytes()) {
                    continue;
                }
                let leaf = first.join(second);
                for name in read_dir_names(&leaf)? {
                    let path = leaf.join(&name);
                    let Ok(metadata) = fs::symlink_metadata(&path) else { continue };
                    visit(&path, name.as_os_str().as_bytes(), &metadata)?;
                }
            }
        }
        Ok(())
    }

    /// Walks the namespace: removes expired and corrupt entries and stale temp files, then,
    /// while over `max_entries` or `max_bytes`, the least recently used entries down to 90%
    /// of the limit. Resets this handle's count and size to what it found.
    pub(crate) fn sweep(&self) -> Result<Swept, FsError> {
        struct Candidate {
            path: PathBuf,
            shard: u8,
            identity: Identity,
            used: SystemTime,
            len: u64,
        }
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
            let slot = Slot { shard, dir: PathBuf::new(), path };
            let _guard = self.locks.lock(shard)?;
            if fs::symlink_metadata(&slot.path).is_ok_and(|metadata| Identity::of(&metadata) == identity)
                && fs::remove_file(&slot.path).is_ok()
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
        self.entries.store(signed(entries), Ordering::Relaxed);
        self.bytes.store(signed(bytes), Ordering::Relaxed);
        Ok(swept)
    }

    fn over_limits_at(&self, entries: u64, bytes: u64) -> bool {
        self.settings.max_entries.is_some_and(|max| entries > max)
            || self.settings.max_bytes.is_some_and(|max| bytes > max)
    }
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

/// Reads an entry's header for a sweep. `O_NOATIME`, because with `relatime` the kernel
/// would count the sweep's own read as a use and scramble the next sweep's LRU order; it is
/// refused (EPERM) on files another user owns, which are then read without it.
fn read_header(path: &Path) -> Option<Header> {
    let open = |flags: i32| OpenOptions::new().read(true).custom_flags(nofollow() | nonblock() | flags).open(path);
    let file = match open(noatime()) {
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => open(0),
        opened => opened,
    }
    .ok()?;
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

/// Refreshes the access time a sweep orders evictions by. Best effort: a file system that
/// refuses it only makes eviction order coarser.
fn touch_if_stale(file: &File, metadata: &fs::Metadata) {
    let now = SystemTime::now();
    let stale = metadata.accessed().map_or(true, |used| now.duration_since(used).is_ok_and(|age| age >= TOUCH_EVERY));
    if stale {
        let _ = file.set_times(fs::FileTimes::new().set_accessed(now));
    }
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
    fn namespaces_differ_by_prefix_and_the_empty_prefix_has_its_own() {
        assert_ne!(namespace_name(""), namespace_name("a"));
        assert_ne!(namespace_name("a"), namespace_name("b"));
        assert_eq!(namespace_name("a"), namespace_name("a"));
    }
}
