//! Per-shard write locks that hold across threads and processes.
//!
//! Every entry belongs to one of 256 shards (the first byte of its file name's hash).
//! A writer takes the shard's lock around the moment it decides and publishes (`add`'s
//! check then rename, `incr`'s read-modify-write, `delete`'s check then unlink, and the
//! plain rename of `set`), so those steps are atomic against every other writer, in this
//! process or another. Readers never lock: a rename replaces a file atomically, so a
//! reader sees the old entry or the new one.
//!
//! The cross-process half is `flock(2)` on `<root>/locks/<shard>`. `flock` locks belong to
//! an open file description, and this process keeps one per shard, so threads of one
//! process would share the lock; a mutex per shard serializes them first.

use std::fs::{File, OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use rustix::fs::{FlockOperation, OFlags, flock};
use rustix::io::Errno;

use crate::error::FsError;

pub(crate) const SHARDS: usize = 256;

pub(crate) struct Locks {
    dir: PathBuf,
    file_mode: u32,
    files: Box<[OnceLock<File>]>,
    threads: Box<[Mutex<()>]>,
}

/// Holds one shard until dropped.
pub(crate) struct ShardGuard<'a> {
    file: &'a File,
    _thread: MutexGuard<'a, ()>,
}

impl Drop for ShardGuard<'_> {
    fn drop(&mut self) {
        // Closing the descriptor would release it too, but the file stays open for reuse;
        // an unlock that fails leaves nothing to do, the kernel drops it with the process.
        let _ = flock(self.file, FlockOperation::Unlock);
    }
}

impl Locks {
    pub(crate) fn new(dir: PathBuf, file_mode: u32) -> Locks {
        Locks {
            dir,
            file_mode,
            files: (0..SHARDS).map(|_| OnceLock::new()).collect(),
            threads: (0..SHARDS).map(|_| Mutex::new(())).collect(),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Waits for shard `shard` in this process and then across processes.
    pub(crate) fn lock(&self, shard: u8) -> Result<ShardGuard<'_>, FsError> {
        let index = usize::from(shard);
        // A panic while holding a shard leaves no half-done state in memory (the state is
        // on disk, published by rename), so a poisoned mutex is safe to take over.
        let thread = self.threads[index].lock().unwrap_or_else(PoisonError::into_inner);
        let file = match self.files[index].get() {
            Some(file) => file,
            None => {
                let path = self.dir.join(format!("{shard:02x}"));
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(self.file_mode)
                    .custom_flags(nofollow())
                    .open(&path)
                    .map_err(|source| FsError::io("opening the lock file", &path, source))?;
                // The umask may have taken bits the caller asked for. Only the creator may
                // chmod; anyone else can still lock, so a refusal changes nothing here.
                let mode = file.metadata().map(|metadata| metadata.permissions().mode() & 0o7777);
                if mode.is_ok_and(|mode| mode != self.file_mode) {
                    let _ = file.set_permissions(Permissions::from_mode(self.file_mode));
                }
                // The shard's mutex is held, so no other thread can have set it meanwhile.
                self.files[index].get_or_init(|| file)
            }
        };
        loop {
            match flock(file, FlockOperation::LockExclusive) {
                Ok(()) => return Ok(ShardGuard { file, _thread: thread }),
                Err(Errno::INTR) => continue,
                Err(errno) => {
                    let path = self.dir.join(format!("{shard:02x}"));
                    return Err(FsError::io("locking", &path, errno.into()));
                }
            }
        }
    }
}

/// `O_NOFOLLOW` for `OpenOptionsExt::custom_flags`: a symlink planted at the path makes
/// the open fail instead of reaching whatever it points to.
pub(crate) fn nofollow() -> i32 {
    // The flag is a small positive constant; the cast cannot truncate.
    OFlags::NOFOLLOW.bits() as i32
}

/// `O_NONBLOCK`, so opening a FIFO planted at an entry path returns at once instead of
/// waiting for a writer; the regular-file check then rejects it.
pub(crate) fn nonblock() -> i32 {
    OFlags::NONBLOCK.bits() as i32
}

/// `O_NOATIME`: reading does not move the access time the LRU order is kept in.
pub(crate) fn noatime() -> i32 {
    OFlags::NOATIME.bits() as i32
}
