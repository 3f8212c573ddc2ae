//! The write guard: fills a version's file and marks it Ready only when complete.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use crate::error::{Error, ErrorKind, Result};
use crate::item::Item;
use crate::status::Status;
use crate::store::temp_name;

/// Fills the file of a version in [`Status::Write`]; get one from [`Item::write`] or
/// [`Registry::best_or_new`](crate::Registry::best_or_new).
///
/// Bytes go to `<file>.part` beside the final path, created new (never through a symlink
/// planted there) with mode 0600. [`commit`](Writer::commit) renames it into
/// place and only then marks the version Ready, so no reader, and no process that outlives a
/// `kill -9` of the writer, ever sees a Ready version with a partial file. Dropping the guard
/// without committing removes the partial file and marks the version Failed.
///
/// ```
/// use std::io::Write;
/// use cache_registry::{NewItem, Registry, Status};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let registry = Registry::open(dir.path())?;
/// let item = registry.create("https://example.org/a.csv", &(), &NewItem::new())?;
/// let mut writer = item.write()?;
/// writer.write_all(b"a,b\n")?;
/// assert_eq!(writer.written(), 4);
/// assert!(!item.path().exists(), "the file appears only on commit");
/// let ready = writer.commit()?;
/// assert_eq!(ready.status(), Status::Ready);
/// assert!(ready.path().exists());
/// # Ok(())
/// # }
/// ```
pub struct Writer {
    item: Item,
    temp: PathBuf,
    file: Option<BufWriter<File>>,
    written: u64,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer").field("item", &self.item).field("written", &self.written).finish_non_exhaustive()
    }
}

impl Item {
    /// Claims this version for writing (`Uninitialized -> Write`) and returns the guard that
    /// fills the file: [`Writer::commit`] marks it Ready; dropping the guard uncommitted marks
    /// it Failed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidTransition`] unless the item is Uninitialized (another writer got
    /// it first); I/O errors creating the file.
    ///
    /// ```
    /// use cache_registry::{ErrorKind, NewItem, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// let item = registry.create("https://example.org/a.csv", &(), &NewItem::new())?;
    /// let writer = item.write()?;
    /// assert_eq!(item.write().unwrap_err().kind(), ErrorKind::InvalidTransition, "one writer per version");
    /// writer.commit()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn write(&self) -> Result<Writer> {
        let mut item = self.clone();
        item.set_status(Status::Write)?;
        Writer::start(item)
    }
}

impl Writer {
    /// Starts writing `item`, which the caller has already moved to Write.
    pub(crate) fn start(item: Item) -> Result<Writer> {
        let temp = item.store.file_path(&temp_name(&item.row.file_name));
        let file = match create_new_private(&temp) {
            Ok(file) => file,
            Err(error) => {
                let error = item.named()(Error::io("write", &temp, error));
                // The claim is released so the version does not sit in Write forever.
                let _ = item.store.db.transition(item.row.id, Status::Failed, None, "write");
                return Err(error);
            }
        };
        Ok(Writer { item, temp, file: Some(BufWriter::with_capacity(64 * 1024, file)), written: 0 })
    }

    /// The version being written.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// let writer = item.write()?;
    /// assert_eq!(writer.item().status(), cache_registry::Status::Write);
    /// writer.commit()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn item(&self) -> &Item {
        &self.item
    }

    /// How many bytes were written so far.
    ///
    /// ```
    /// use std::io::Write;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// let mut writer = item.write()?;
    /// writer.write_all(b"12345")?;
    /// assert_eq!(writer.written(), 5);
    /// writer.commit()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Finishes the file, moves it into place and marks the version Ready with its size.
    /// Returns the item as it now is.
    ///
    /// # Errors
    ///
    /// I/O errors flushing or renaming (the version is then marked Failed);
    /// [`ErrorKind::InvalidTransition`] if the version stopped being in Write meanwhile (another
    /// process trashed it): the file stays for cleanup to remove.
    ///
    /// ```
    /// use std::io::Write;
    /// use cache_registry::{NewItem, Registry, Status};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// let mut writer = registry.create("u", &(), &NewItem::new())?.write()?;
    /// writer.write_all(b"done")?;
    /// let item = writer.commit()?;
    /// assert_eq!((item.status(), item.size()), (Status::Ready, Some(4)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn commit(mut self) -> Result<Item> {
        let Some(buffered) = self.file.take() else {
            let error = Error::new(ErrorKind::InvalidTransition, "commit").with_context("the writer already finished");
            return Err(self.item.named()(error));
        };
        let final_path = self.item.path();
        if let Err(error) = self.finish_file(buffered, &final_path).map_err(self.item.named()) {
            let _ = std::fs::remove_file(&self.temp);
            let _ = self.item.store.db.transition(self.item.row.id, Status::Failed, None, "commit");
            return Err(error);
        }
        self.item
            .store
            .db
            .transition(self.item.row.id, Status::Ready, Some(self.written), "commit")
            .map_err(self.item.named())?;
        let mut item = self.item.clone();
        item.row.status = Status::Ready;
        item.row.size = i64::try_from(self.written).ok();
        Ok(item)
    }

    fn finish_file(&self, buffered: BufWriter<File>, final_path: &std::path::Path) -> Result<()> {
        let file = buffered.into_inner().map_err(|error| Error::io("commit", &self.temp, error.into_error()))?;
        if self.item.store.sync_files {
            file.sync_all().map_err(|error| Error::io("commit", &self.temp, error))?;
        }
        drop(file);
        std::fs::rename(&self.temp, final_path).map_err(|error| Error::io("commit", final_path, error))?;
        if self.item.store.sync_files {
            sync_dir(self.item.store.files_dir())?;
        }
        Ok(())
    }

    /// Gives up: removes the partial file and marks the version Failed. Dropping the writer
    /// does the same; this says so explicitly and reports errors.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidTransition`] if the version is no longer in Write; database errors.
    ///
    /// ```
    /// use std::io::Write;
    /// use cache_registry::{NewItem, Registry, Status};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// let item = registry.create("https://example.org/a.csv", &(), &NewItem::new())?;
    /// let mut writer = item.write()?;
    /// writer.write_all(b"half a fi")?;
    /// writer.abort()?;
    /// assert_eq!(registry.get(item.key(), 1)?.map(|item| item.status()), Some(Status::Failed));
    /// # Ok(())
    /// # }
    /// ```
    pub fn abort(mut self) -> Result<()> {
        self.file = None;
        let _ = std::fs::remove_file(&self.temp);
        self.item.store.db.transition(self.item.row.id, Status::Failed, None, "abort").map_err(self.item.named())
    }
}

/// Creates `path` for writing only if nothing is there, not even a symlink (`O_EXCL`, and
/// `O_NOFOLLOW` besides), readable by the owner only (0600, before the umask). `File::create`
/// would follow a symlink planted at the path and truncate its target, and take the umask's
/// mode; a name that exists is never ours, since versions and file names are never reused.
#[cfg(unix)]
fn create_new_private(path: &std::path::Path) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path, flags, Mode::from_raw_mode(0o600))?;
    Ok(File::from(fd))
}

#[cfg(not(unix))]
fn create_new_private(path: &std::path::Path) -> io::Result<File> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn sync_dir(dir: &std::path::Path) -> Result<()> {
    File::open(dir).and_then(|handle| handle.sync_all()).map_err(|error| Error::io("commit", dir, error))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &std::path::Path) -> Result<()> {
    // Directory handles cannot be fsynced here; the rename is as durable as the OS makes it.
    Ok(())
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self.file.as_mut().ok_or_else(|| io::Error::other("the writer already finished"))?;
        let written = file.write(buf)?;
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Nothing can be reported from a drop; a failure here leaves the version in Write,
            // which cleanup's stale-write rule removes.
            let _ = std::fs::remove_file(&self.temp);
            let _ = self.item.store.db.transition(self.item.row.id, Status::Failed, None, "drop writer");
        }
    }
}
