//! Cleanup: removing what may go, with a dry run that only reports.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::attr;
use crate::db::CleanupRow;
use crate::error::{Error, Result};
use crate::status::Status;
use crate::store::{Store, temp_name};

/// What [`Registry::cleanup`](crate::Registry::cleanup) may remove. Always: Failed and Trash versions, Ready versions
/// whose file is gone, and files in the registry that no record owns. Optionally: Ready
/// versions beyond the newest N per key, and Uninitialized or Write versions older than an age
/// (left behind by a process that died).
///
/// ```
/// use std::time::Duration;
/// use cache_registry::Cleanup;
///
/// let plan = Cleanup::new().keep_newest(2).stale_after(Duration::from_secs(24 * 3600)).dry_run(true);
/// # let _ = plan;
/// ```
#[derive(Debug, Clone, Default)]
pub struct Cleanup {
    keep_newest: Option<usize>,
    stale_after: Option<Duration>,
    dry_run: bool,
}

impl Cleanup {
    /// The always-on rules only.
    ///
    /// ```
    /// use cache_registry::{Cleanup, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// let report = registry.cleanup(&Cleanup::new())?;
    /// assert!(report.removed.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn new() -> Self {
        Cleanup::default()
    }

    /// Also removes Ready versions older than the newest `n` of each key (`n` = 0 removes all).
    ///
    /// ```
    /// use std::io::Write;
    /// use cache_registry::{Cleanup, NewItem, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// for content in [&b"v1"[..], b"v2", b"v3"] {
    ///     let mut writer = registry.create("u", &(), &NewItem::new())?.write()?;
    ///     writer.write_all(content)?;
    ///     writer.commit()?;
    /// }
    /// assert_eq!(registry.cleanup(&Cleanup::new().keep_newest(1))?.removed.len(), 2);
    /// assert_eq!(registry.best("u", &())?.map(|item| item.version()), Some(3));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn keep_newest(mut self, n: usize) -> Self {
        self.keep_newest = Some(n);
        self
    }

    /// Also removes Uninitialized and Write versions created longer than `age` ago. A writer
    /// still running that long loses its version (its commit then fails), so pick an age well
    /// past the longest write.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cache_registry::{Cleanup, NewItem, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// registry.create("u", &(), &NewItem::new())?; // never written
    /// assert!(registry.cleanup(&Cleanup::new().stale_after(Duration::from_secs(3600)))?.removed.is_empty());
    /// assert_eq!(registry.cleanup(&Cleanup::new().stale_after(Duration::ZERO))?.removed.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn stale_after(mut self, age: Duration) -> Self {
        self.stale_after = Some(age);
        self
    }

    /// Only reports what would go.
    ///
    /// ```
    /// use cache_registry::{Cleanup, NewItem, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// registry.create("u", &(), &NewItem::new())?.trash()?;
    /// assert_eq!(registry.cleanup(&Cleanup::new().dry_run(true))?.removed.len(), 1);
    /// assert_eq!(registry.versions("u", &())?.len(), 1, "nothing changed");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// Why a version was (or, in a dry run, would be) removed.
///
/// ```
/// use cache_registry::{Cleanup, NewItem, Reason, Registry};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let registry = Registry::open(dir.path())?;
/// let mut item = registry.create("https://example.org/a.csv", &(), &NewItem::new())?;
/// item.trash()?;
/// let report = registry.cleanup(&Cleanup::new())?;
/// assert_eq!(report.removed[0].reason, Reason::Trash);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// It was Failed.
    Failed,
    /// It was in the Trash.
    Trash,
    /// It was Ready but its file was gone.
    FileMissing,
    /// It was Ready but newer Ready versions of its key fill the [`Cleanup::keep_newest`] quota.
    Superseded,
    /// It was Uninitialized or Write for longer than [`Cleanup::stale_after`].
    Stale,
}

/// One version that cleanup removed.
///
/// ```
/// use cache_registry::{Cleanup, NewItem, Registry, Status};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let registry = Registry::open(dir.path())?;
/// let mut item = registry.create("https://example.org/a.csv", &(), &NewItem::new())?;
/// item.trash()?;
/// let removed = &registry.cleanup(&Cleanup::new())?.removed[0];
/// assert_eq!((removed.uri.as_str(), removed.version, removed.status), ("https://example.org/a.csv", 1, Status::Trash));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Removed {
    /// The item key.
    pub key: String,
    /// The version.
    pub version: u64,
    /// The URI.
    pub uri: String,
    /// Its status when it was removed.
    pub status: Status,
    /// Why.
    pub reason: Reason,
    /// Bytes its files took on disk (0 when they were already gone).
    pub bytes: u64,
}

/// What a cleanup removed, or in a dry run would remove.
///
/// ```
/// use cache_registry::{Cleanup, FILES_DIR, Registry};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let registry = Registry::open(dir.path())?;
/// std::fs::write(registry.dir().join(FILES_DIR).join("stray"), b"1234")?;
/// let dry = registry.cleanup(&Cleanup::new().dry_run(true))?;
/// assert_eq!((dry.orphan_files.len(), dry.bytes_freed, dry.dry_run), (1, 4, true));
/// assert_eq!(registry.cleanup(&Cleanup::new())?.bytes_freed, 4);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CleanupReport {
    /// Versions whose records (and files) went.
    pub removed: Vec<Removed>,
    /// Files no record owned.
    pub orphan_files: Vec<PathBuf>,
    /// Total bytes of the files removed.
    pub bytes_freed: u64,
    /// Whether this was a dry run (nothing was changed).
    pub dry_run: bool,
}

struct Candidate {
    id: i64,
    status: Status,
    file_name: String,
    removed: Removed,
}

fn size_of(path: &std::path::Path) -> u64 {
    std::fs::symlink_metadata(path).map(|meta| meta.len()).unwrap_or(0)
}

pub(crate) fn run(store: &Store, plan: &Cleanup) -> Result<CleanupReport> {
    // The listing comes before the database read: a writer commits its record before creating
    // its file, so every file listed here whose record is absent below is truly unowned.
    let listed = list_files(store)?;
    let candidates = select_candidates(store, plan)?;
    let mut report = CleanupReport { dry_run: plan.dry_run, ..CleanupReport::default() };

    let removed_ids: HashSet<i64> = if plan.dry_run {
        candidates.iter().map(|candidate| candidate.id).collect()
    } else {
        let rows: Vec<(i64, Status)> = candidates.iter().map(|candidate| (candidate.id, candidate.status)).collect();
        store.db.delete_if_status(&rows)?
    };
    // Files of the versions removed here are counted with them, never again as orphans.
    let mut handled = HashSet::new();
    for candidate in candidates {
        if !removed_ids.contains(&candidate.id) {
            continue;
        }
        let mut removed = candidate.removed;
        for name in [temp_name(&candidate.file_name), candidate.file_name] {
            let path = store.file_path(&name);
            let bytes = size_of(&path);
            if !plan.dry_run {
                remove_if_present(&path)?;
            }
            removed.bytes += bytes;
            handled.insert(name);
        }
        report.bytes_freed += removed.bytes;
        report.removed.push(removed);
    }

    let owned = owned_files(store)?;
    for name in listed {
        let orphan = !owned.contains(&name) && !handled.contains(&name);
        if orphan {
            let path = store.file_path(&name);
            report.bytes_freed += size_of(&path);
            if !plan.dry_run {
                remove_if_present(&path)?;
            }
            report.orphan_files.push(path);
        }
    }
    Ok(report)
}

fn remove_if_present(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(Error::io("cleanup", path, error)),
    }
}

fn list_files(store: &Store) -> Result<Vec<String>> {
    let dir = store.files_dir();
    let entries = std::fs::read_dir(dir).map_err(|error| Error::io("cleanup", dir, error))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| Error::io("cleanup", dir, error))?;
        let is_file = entry.file_type().map(|kind| kind.is_file() || kind.is_symlink()).unwrap_or(false);
        // Names that are not UTF-8 cannot be ours; they are still orphans in our directory.
        if is_file && let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// Every file name a remaining record owns: each record's file, and the partial file of a
/// version in Write.
fn owned_files(store: &Store) -> Result<HashSet<String>> {
    let mut owned = HashSet::new();
    for (name, status) in store.db.file_names()? {
        if status == Some(Status::Write) {
            owned.insert(temp_name(&name));
        }
        owned.insert(name);
    }
    Ok(owned)
}

fn select_candidates(store: &Store, plan: &Cleanup) -> Result<Vec<Candidate>> {
    let stale_before = plan.stale_after.map(|age| {
        let cutoff = SystemTime::now().checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH);
        attr::micros(cutoff)
    });
    let keep = plan.keep_newest.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    let mut candidates = Vec::new();
    for row in store.db.cleanup_rows()? {
        let CleanupRow { id, key, version, uri, status, file_name, created, ready_rank } = row;
        let reason = match status {
            Status::Failed => Some(Reason::Failed),
            Status::Trash => Some(Reason::Trash),
            Status::Ready if keep.is_some_and(|keep| ready_rank.is_some_and(|rank| rank > keep)) => {
                Some(Reason::Superseded)
            }
            Status::Ready if !store.file_path(&file_name).exists() => Some(Reason::FileMissing),
            Status::Uninitialized | Status::Write if stale_before.is_some_and(|cutoff| created < cutoff) => {
                Some(Reason::Stale)
            }
            _ => None,
        };
        if let Some(reason) = reason {
            let version = u64::try_from(version).unwrap_or(0);
            candidates.push(Candidate {
                id,
                status,
                file_name,
                removed: Removed { key, version, uri, status, reason, bytes: 0 },
            });
        }
    }
    Ok(candidates)
}
