//! The directory's size, shared by every process that writes to it.
//!
//! `<dir>/usage` holds the number of entries and their bytes, updated under an `flock` of
//! the file itself. Each handle adds its own writes to a pending delta in memory and
//! flushes it in batches, so the file is touched once per batch, not once per write: a
//! handle holds back at most one batch (1/64 of the tightest limit, at most
//! [`MAX_BATCH`] writes), which bounds how far several processes together can overshoot a
//! limit before one of them sees it and sweeps.
//!
//! The count is an estimate that sweeps correct: a process killed between a rename and
//! its flush loses its pending delta, and every sweep recounts the disk and stores what
//! it found. A damaged or missing file reads as "unknown", which also triggers a sweep.

use std::fs::{File, OpenOptions, Permissions};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};

use rustix::fs::{FlockOperation, flock};
use rustix::io::Errno;

use crate::error::FsError;
use crate::lock::nofollow;

const MAGIC: &[u8; 8] = b"FSCUSE1\0";
const RECORD_LEN: usize = 32;
/// The most writes a handle keeps to itself before it adds them to the shared count.
pub(crate) const MAX_BATCH: i64 = 64;

/// Entries and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) entries: i64,
    pub(crate) bytes: i64,
}

pub(crate) struct Usage {
    path: PathBuf,
    /// The open file; the mutex serializes this process's threads, which share the
    /// descriptor and so would share its `flock`.
    file: Mutex<Option<File>>,
    file_mode: u32,
    /// The shared totals as of this handle's last flush or sweep.
    known_entries: AtomicI64,
    known_bytes: AtomicI64,
    /// This handle's writes not yet added to the file.
    pending_entries: AtomicI64,
    pending_bytes: AtomicI64,
    pending_writes: AtomicI64,
    batch_writes: i64,
    batch_bytes: i64,
}

impl std::fmt::Debug for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Usage").field("path", &self.path).finish_non_exhaustive()
    }
}

fn encode(totals: Totals) -> [u8; RECORD_LEN] {
    let mut record = [0; RECORD_LEN];
    record[0..8].copy_from_slice(MAGIC);
    record[8..16].copy_from_slice(&totals.entries.to_le_bytes());
    record[16..24].copy_from_slice(&totals.bytes.to_le_bytes());
    let sum = twox_hash::XxHash3_64::oneshot(&record[..24]);
    record[24..32].copy_from_slice(&sum.to_le_bytes());
    record
}

fn decode(record: &[u8; RECORD_LEN]) -> Option<Totals> {
    let word = |at: usize| record.get(at..at + 8).and_then(|b| b.try_into().ok()).map(i64::from_le_bytes);
    let sum = record.get(24..32).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)?;
    if &record[0..8] != MAGIC || twox_hash::XxHash3_64::oneshot(&record[..24]) != sum {
        return None;
    }
    Some(Totals { entries: word(8)?.max(0), bytes: word(16)?.max(0) })
}

/// Holds the file's `flock` until dropped.
struct Locked<'a> {
    file: &'a File,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // The kernel releases it with the process anyway; nothing to do if this fails.
        let _ = flock(self.file, FlockOperation::Unlock);
    }
}

impl Usage {
    /// `limits` are `max_entries` and `max_bytes`; the batch is 1/64 of the tightest.
    pub(crate) fn new(path: PathBuf, file_mode: u32, max_entries: Option<u64>, max_bytes: Option<u64>) -> Usage {
        let fraction = |limit: u64| i64::try_from(limit / 64).unwrap_or(i64::MAX).max(1);
        Usage {
            path,
            file: Mutex::new(None),
            file_mode,
            known_entries: AtomicI64::new(0),
            known_bytes: AtomicI64::new(0),
            pending_entries: AtomicI64::new(0),
            pending_bytes: AtomicI64::new(0),
            pending_writes: AtomicI64::new(0),
            batch_writes: max_entries.map_or(MAX_BATCH, fraction).min(MAX_BATCH),
            batch_bytes: max_bytes.map_or(i64::MAX, fraction),
        }
    }

    /// The directory's size as this handle knows it: the shared count as of its last
    /// flush, plus its own writes since.
    pub(crate) fn estimate(&self) -> Totals {
        Totals {
            entries: (self.known_entries.load(Ordering::Relaxed) + self.pending_entries.load(Ordering::Relaxed)).max(0),
            bytes: (self.known_bytes.load(Ordering::Relaxed) + self.pending_bytes.load(Ordering::Relaxed)).max(0),
        }
    }

    /// Records a write (or removal) by this handle; flushes when a batch is full.
    /// Returns `false` when that flush found no valid shared count (a sweep should recount).
    pub(crate) fn record(&self, entries: i64, bytes: i64) -> Result<bool, FsError> {
        self.pending_entries.fetch_add(entries, Ordering::Relaxed);
        self.pending_bytes.fetch_add(bytes, Ordering::Relaxed);
        let writes = self.pending_writes.fetch_add(1, Ordering::Relaxed) + 1;
        if writes >= self.batch_writes || self.pending_bytes.load(Ordering::Relaxed).abs() >= self.batch_bytes {
            return Ok(self.flush()?.is_some());
        }
        Ok(true)
    }

    /// Runs `work` with the file open and locked across processes.
    fn with_locked<T>(&self, work: impl FnOnce(&File) -> Result<T, FsError>) -> Result<T, FsError> {
        let mut slot = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let file = match &mut *slot {
            Some(file) => file,
            empty => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(self.file_mode)
                    .custom_flags(nofollow())
                    .open(&self.path)
                    .map_err(|error| FsError::io("opening", &self.path, error))?;
                if self.file_mode != crate::DEFAULT_FILE_MODE {
                    // Only the creator may chmod; anyone else can still use the file.
                    let _ = file.set_permissions(Permissions::from_mode(self.file_mode));
                }
                empty.insert(file)
            }
        };
        loop {
            match flock(&*file, FlockOperation::LockExclusive) {
                Ok(()) => break,
                Err(Errno::INTR) => continue,
                Err(errno) => return Err(FsError::io("locking", &self.path, errno.into())),
            }
        }
        let locked = Locked { file };
        work(locked.file)
    }

    fn read(&self, file: &File) -> Option<Totals> {
        let mut record = [0; RECORD_LEN];
        file.read_exact_at(&mut record, 0).ok()?;
        decode(&record)
    }

    fn write(&self, file: &File, totals: Totals) -> Result<(), FsError> {
        file.write_all_at(&encode(totals), 0).map_err(|error| FsError::io("writing", &self.path, error))
    }

    /// Adds this handle's pending writes to the shared count. Returns the new shared
    /// totals, or `None` when the file held no valid count (a sweep should recount).
    pub(crate) fn flush(&self) -> Result<Option<Totals>, FsError> {
        self.with_locked(|file| {
            let entries = self.pending_entries.swap(0, Ordering::Relaxed);
            let bytes = self.pending_bytes.swap(0, Ordering::Relaxed);
            self.pending_writes.store(0, Ordering::Relaxed);
            let Some(shared) = self.read(file) else {
                // Unknown: keep the delta so the estimate stays useful until a sweep.
                self.pending_entries.fetch_add(entries, Ordering::Relaxed);
                self.pending_bytes.fetch_add(bytes, Ordering::Relaxed);
                return Ok(None);
            };
            let totals = Totals { entries: (shared.entries + entries).max(0), bytes: (shared.bytes + bytes).max(0) };
            if let Err(error) = self.write(file, totals) {
                self.pending_entries.fetch_add(entries, Ordering::Relaxed);
                self.pending_bytes.fetch_add(bytes, Ordering::Relaxed);
                return Err(error);
            }
            self.remember(totals);
            Ok(Some(totals))
        })
    }

    /// The shared count now (`None` if unknown), for a sweep to compare against at its end.
    pub(crate) fn snapshot(&self) -> Result<Option<Totals>, FsError> {
        self.with_locked(|file| Ok(self.read(file)))
    }

    /// Stores what a sweep counted. Writes other handles added to the file while the
    /// sweep walked (the difference from `before`) are kept on top: the walk may also
    /// have seen some of them, so the result errs high, which only brings the next sweep
    /// sooner.
    pub(crate) fn store_count(&self, counted: Totals, before: Option<Totals>) -> Result<(), FsError> {
        self.with_locked(|file| {
            let since = match (before, self.read(file)) {
                (Some(before), Some(now)) => {
                    Totals { entries: (now.entries - before.entries).max(0), bytes: (now.bytes - before.bytes).max(0) }
                }
                _ => Totals::default(),
            };
            let totals = Totals { entries: counted.entries + since.entries, bytes: counted.bytes + since.bytes };
            self.write(file, totals)?;
            // This handle's own pending writes are either on disk (so counted) or about
            // to be: dropping them errs low by at most one batch, never by more.
            self.pending_entries.store(0, Ordering::Relaxed);
            self.pending_bytes.store(0, Ordering::Relaxed);
            self.pending_writes.store(0, Ordering::Relaxed);
            self.remember(totals);
            Ok(())
        })
    }

    fn remember(&self, totals: Totals) {
        self.known_entries.store(totals.entries, Ordering::Relaxed);
        self.known_bytes.store(totals.bytes, Ordering::Relaxed);
    }
}

impl Drop for Usage {
    fn drop(&mut self) {
        // A handle going away hands its last writes to the shared count; if that fails,
        // the next sweep recounts.
        if self.pending_writes.load(Ordering::Relaxed) != 0 {
            let _ = self.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_unknown() {
        let totals = Totals { entries: 12, bytes: 3456 };
        let record = encode(totals);
        assert_eq!(decode(&record), Some(totals));
        let mut damaged = record;
        damaged[9] ^= 1;
        assert_eq!(decode(&damaged), None);
        assert_eq!(decode(&[0; RECORD_LEN]), None);
    }

    #[test]
    fn the_batch_is_a_sixty_fourth_of_the_tightest_limit() {
        let usage = |entries, bytes| Usage::new(PathBuf::from("unused"), 0o600, entries, bytes);
        assert_eq!(usage(None, None).batch_writes, MAX_BATCH);
        assert_eq!(usage(Some(10), None).batch_writes, 1);
        assert_eq!(usage(Some(640), None).batch_writes, 10);
        assert_eq!(usage(Some(1 << 20), None).batch_writes, MAX_BATCH);
        assert_eq!(usage(None, Some(6400)).batch_bytes, 100);
    }
}
