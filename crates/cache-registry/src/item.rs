//! Items: one version of one cached file, its status and its attributes.

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use rusqlite::types::Value as SqlValue;

use crate::attr::{self, AttrValue, Attributes};
use crate::error::{Error, ErrorKind, Result};
use crate::read::Reader;
use crate::registry::Registry;
use crate::write::Writer;

/// Where an item is in its life.
///
/// ```text
/// Uninitialized ──> Write ──> Ready
///       │             └─────> Failed
///       └───────────────────> Failed
/// any status but Trash ─────> Trash
/// ```
///
/// Every change is one conditional SQL update, so two processes racing for the same change
/// cannot both win: the loser gets [`ErrorKind::InvalidTransition`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// Created; nobody has started writing its file.
    Uninitialized,
    /// A [`Writer`] is (or was, if its process died) filling the file.
    Write,
    /// The file is complete and may be read.
    Ready,
    /// Writing failed or was abandoned; cleanup removes it.
    Failed,
    /// Marked for removal; cleanup removes it.
    Trash,
}

impl Status {
    /// Every status, in code order.
    pub const ALL: [Status; 5] = [Status::Uninitialized, Status::Write, Status::Ready, Status::Failed, Status::Trash];

    pub(crate) fn code(self) -> i64 {
        match self {
            Status::Uninitialized => 0,
            Status::Write => 1,
            Status::Ready => 2,
            Status::Failed => 3,
            Status::Trash => 4,
        }
    }

    pub(crate) fn from_code(code: i64) -> Option<Status> {
        Status::ALL.into_iter().find(|status| status.code() == code)
    }

    /// The statuses an item may move to `self` from.
    pub fn allowed_from(self) -> &'static [Status] {
        match self {
            Status::Uninitialized => &[],
            Status::Write => &[Status::Uninitialized],
            Status::Ready => &[Status::Write],
            Status::Failed => &[Status::Uninitialized, Status::Write],
            Status::Trash => &[Status::Uninitialized, Status::Write, Status::Ready, Status::Failed],
        }
    }

    /// The set of [`allowed_from`](Status::allowed_from) as a bit mask over codes, which the
    /// transition SQL takes as one bound parameter.
    pub(crate) fn allowed_from_mask(self) -> i64 {
        self.allowed_from().iter().fold(0, |mask, status| mask | (1 << status.code()))
    }

    /// Lowercase name, as in `Display`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Uninitialized => "uninitialized",
            Status::Write => "write",
            Status::Ready => "ready",
            Status::Failed => "failed",
            Status::Trash => "trash",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to record with a new version besides its URI and params.
///
/// ```
/// use cache_registry::NewItem;
///
/// let options = NewItem::new().ext("csv.gz").label("nightly").attr("rows", 1200);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default)]
pub struct NewItem {
    pub(crate) ext: Option<String>,
    pub(crate) label: Option<String>,
    pub(crate) attributes: Attributes,
}

impl NewItem {
    /// No extension (it is then taken from the URI's last path segment), no label, no attributes.
    pub fn new() -> Self {
        NewItem::default()
    }

    /// The file's extension without the leading dot (`"csv"`, `"tar.gz"`). It names the file and
    /// tells [`Item::open`] how to decode it. Only ASCII letters, digits, `.`, `_` and `-` are
    /// accepted, at most 32 of them; anything else is an error at create time.
    #[must_use]
    pub fn ext(mut self, ext: impl Into<String>) -> Self {
        self.ext = Some(ext.into());
        self
    }

    /// A free-text label, searchable with [`Filter::label`](crate::Filter::label).
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets one attribute.
    #[must_use]
    pub fn attr(mut self, name: impl Into<String>, value: impl Into<AttrValue>) -> Self {
        self.attributes.insert(name, value);
        self
    }

    /// Sets all of `attributes`, replacing any with the same names.
    #[must_use]
    pub fn attributes(mut self, attributes: Attributes) -> Self {
        for (name, value) in attributes.iter() {
            self.attributes.insert(name, value.clone());
        }
        self
    }

    /// The extension to use: the one given, or the URI's, or none.
    pub(crate) fn resolved_ext(&self, uri: &str) -> Result<String> {
        match &self.ext {
            Some(ext) if valid_ext(ext) => Ok(ext.clone()),
            Some(ext) => Err(Error::invalid_input("create", format!("extension {ext:?} is not a safe file suffix"))),
            None => Ok(ext_of_uri(uri)),
        }
    }
}

fn valid_ext(ext: &str) -> bool {
    ext.len() <= 32
        && !ext.starts_with('.')
        && !ext.ends_with('.')
        && !ext.contains("..")
        && ext.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}

/// `https://host/a/data.tar.gz?x=1` gives `tar.gz`; a segment without a dot gives nothing.
fn ext_of_uri(uri: &str) -> String {
    let path = uri.split(['?', '#']).next().unwrap_or("");
    let segment = path.rsplit('/').next().unwrap_or("");
    match segment.trim_start_matches('.').split_once('.') {
        Some((_, ext)) if valid_ext(ext) => ext.to_owned(),
        _ => String::new(),
    }
}

/// One stored row of `items`.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) id: i64,
    pub(crate) key: String,
    pub(crate) version: i64,
    pub(crate) uri: String,
    pub(crate) params: String,
    pub(crate) status: Status,
    pub(crate) file_name: String,
    pub(crate) ext: String,
    pub(crate) label: Option<String>,
    pub(crate) created: i64,
    pub(crate) last_read: Option<i64>,
    pub(crate) read_count: i64,
    pub(crate) size: Option<i64>,
}

impl Row {
    /// Maps a row selected with the registry's `select_items!` column list, in its order.
    pub(crate) fn from_sql(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        let code: i64 = row.get(5)?;
        let status = Status::from_code(code).ok_or(rusqlite::Error::IntegralValueOutOfRange(5, code))?;
        Ok(Row {
            id: row.get(0)?,
            key: row.get(1)?,
            version: row.get(2)?,
            uri: row.get(3)?,
            params: row.get(4)?,
            status,
            file_name: row.get(6)?,
            ext: row.get(7)?,
            label: row.get(8)?,
            created: row.get(9)?,
            last_read: row.get(10)?,
            read_count: row.get(11)?,
            size: row.get(12)?,
        })
    }
}

/// One version of one cached file, as the registry saw it when this value was read.
///
/// The fields are a snapshot: another process may change the status meanwhile;
/// [`refresh`](Item::refresh) reads it again. Status changes made through this value update it.
#[derive(Clone)]
pub struct Item {
    pub(crate) registry: Registry,
    pub(crate) row: Row,
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Item")
            .field("key", &self.row.key)
            .field("version", &self.row.version)
            .field("uri", &self.row.uri)
            .field("params", &self.row.params)
            .field("status", &self.row.status)
            .field("file_name", &self.row.file_name)
            .field("label", &self.row.label)
            .finish_non_exhaustive()
    }
}

impl Item {
    /// The stable key shared by every version of this URI and params (see [`item_key`](crate::item_key)).
    pub fn key(&self) -> &str {
        &self.row.key
    }

    /// The version, counting from 1 per key.
    pub fn version(&self) -> u64 {
        u64::try_from(self.row.version).unwrap_or(0)
    }

    /// The URI given at create time.
    pub fn uri(&self) -> &str {
        &self.row.uri
    }

    /// The params in canonical JSON form (see [`canonical_params`](crate::canonical_params)).
    pub fn params(&self) -> &str {
        &self.row.params
    }

    /// The params parsed back into a JSON value.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Corrupt`] if the stored text is not JSON (someone edited the database).
    pub fn params_json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.row.params)
            .map_err(|error| Error::new(ErrorKind::Corrupt, "params").with_source(error))
    }

    /// The status when this value was read or last changed through it.
    pub fn status(&self) -> Status {
        self.row.status
    }

    /// The file's name inside the registry's `files` directory.
    pub fn file_name(&self) -> &str {
        &self.row.file_name
    }

    /// The file's extension without the dot; empty when it has none.
    pub fn ext(&self) -> &str {
        &self.row.ext
    }

    /// The label given at create time.
    pub fn label(&self) -> Option<&str> {
        self.row.label.as_deref()
    }

    /// When this version was created.
    pub fn created(&self) -> SystemTime {
        attr::from_micros(self.row.created)
    }

    /// When this version was last opened for reading, if ever.
    pub fn last_read(&self) -> Option<SystemTime> {
        self.row.last_read.map(attr::from_micros)
    }

    /// How many times this version was opened for reading.
    pub fn read_count(&self) -> u64 {
        u64::try_from(self.row.read_count).unwrap_or(0)
    }

    /// The file's size in bytes, known once the version is [`Ready`](Status::Ready).
    pub fn size(&self) -> Option<u64> {
        self.row.size.and_then(|size| u64::try_from(size).ok())
    }

    /// Where the file lives (or will, once written).
    pub fn path(&self) -> PathBuf {
        self.registry.file_path(&self.row.file_name)
    }

    /// Reads this item's record again.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] if cleanup removed it; database errors.
    pub fn refresh(&mut self) -> Result<()> {
        let row = self.registry.row_by_id(self.row.id, "refresh")?;
        self.row =
            row.ok_or_else(|| Error::new(ErrorKind::NotFound, "refresh").with_context("the item was removed"))?;
        Ok(())
    }

    /// The attributes, namespaces nested again.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn attributes(&self) -> Result<Attributes> {
        self.registry.attributes_of(self.row.id)
    }

    /// Sets attributes, replacing those with the same paths and keeping the rest, in one transaction.
    ///
    /// A path is either a value or a namespace, never both: setting `model` to a value while
    /// `model.layers` is stored (or `size.bytes` while `size` holds a value) is refused, and
    /// nothing changes; [`remove_attribute`](Item::remove_attribute) the old one first.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a name with a `.`, a non-finite float, or a value where a
    /// namespace is stored (or the reverse), naming both paths; database errors.
    pub fn set_attributes(&self, attributes: &Attributes) -> Result<()> {
        self.registry.set_attributes(self.row.id, attributes)
    }

    /// Removes the attribute at `path` and, if it is a namespace, everything under it.
    /// Returns how many stored values went.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn remove_attribute(&self, path: &str) -> Result<usize> {
        self.registry.remove_attribute(self.row.id, path)
    }

    /// Claims this version for writing (`Uninitialized -> Write`) and returns the guard that
    /// fills the file: [`Writer::commit`] marks it Ready; dropping the guard uncommitted marks
    /// it Failed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidTransition`] unless the item is Uninitialized (another writer got
    /// it first); I/O errors creating the file.
    pub fn write(&self) -> Result<Writer> {
        let mut item = self.clone();
        item.set_status(Status::Write)?;
        Writer::start(item)
    }

    /// Moves this version to `status`, atomically checking the current status.
    ///
    /// Use [`write`](Item::write) rather than this to start writing and [`Writer::commit`] to
    /// mark Ready: those also manage the file.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidTransition`] when the stored status does not allow it (the context
    /// names both); [`ErrorKind::NotFound`] if the item was removed.
    pub fn set_status(&mut self, status: Status) -> Result<()> {
        self.registry.transition(self.row.id, status, None, "set status")?;
        self.row.status = status;
        Ok(())
    }

    /// Marks this version for removal by the next [`cleanup`](Registry::cleanup).
    ///
    /// # Errors
    ///
    /// As [`set_status`](Item::set_status).
    pub fn trash(&mut self) -> Result<()> {
        self.set_status(Status::Trash)
    }

    /// Opens the content for reading, streaming, and counts the read.
    ///
    /// The format comes from the extension (`gz`, `bz2`, `xz`, `zip`, and `tgz`-style
    /// combinations), or from the first bytes when there is none: gzip, bzip2 and xz are
    /// decompressed (concatenated streams too); a zip with exactly one file yields that file;
    /// anything else is read as it is. A `.tar.gz` yields the tar stream: use
    /// [`open_member`](Item::open_member) for a file inside it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::FileMissing`] if the file is gone; [`ErrorKind::InvalidInput`] for a zip
    /// of several files; I/O and database errors. Reading the stream fails with
    /// `io::ErrorKind::OutOfMemory` when an xz stream needs more decoder memory than
    /// [`RegistryBuilder::xz_memory_limit`](crate::RegistryBuilder::xz_memory_limit).
    pub fn open(&self) -> Result<Reader> {
        let reader = crate::read::open(&self.path(), &self.row.ext, self.registry.read_limits())?;
        self.registry.record_read(self.row.id)?;
        Ok(reader)
    }

    /// Opens the member `name` of a zip or tar (plain, `.gz`, `.bz2` or `.xz`) archive for
    /// reading, streaming, and counts the read. A leading `./` is ignored on both sides.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] if there is no such file member; [`ErrorKind::Corrupt`] if the
    /// file is not an archive; [`ErrorKind::Unsupported`] for an encrypted or exotically
    /// compressed zip member; [`ErrorKind::FileMissing`]; I/O and database errors.
    pub fn open_member(&self, name: &str) -> Result<Reader> {
        let reader = crate::read::open_member(&self.path(), &self.row.ext, name, self.registry.read_limits())?;
        self.registry.record_read(self.row.id)?;
        Ok(reader)
    }

    /// The names of the file members of a zip or tar archive, in archive order. Not counted as a read.
    ///
    /// # Errors
    ///
    /// As [`open_member`](Item::open_member).
    pub fn members(&self) -> Result<Vec<String>> {
        crate::read::members(&self.path(), &self.row.ext, self.registry.read_limits())
    }

    /// Opens the stored bytes as they are, without decoding, and counts the read.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::FileMissing`]; I/O and database errors.
    pub fn open_raw(&self) -> Result<Reader> {
        let reader = crate::read::open_raw(&self.path())?;
        self.registry.record_read(self.row.id)?;
        Ok(reader)
    }
}

/// What [`Registry::best_or_new`] found.
#[derive(Debug)]
pub enum BestOrNew {
    /// The newest Ready version.
    Found(Item),
    /// There was none: a new version, already in [`Status::Write`], for the caller to fill.
    New(Writer),
}

pub(crate) fn attr_from_row(name: String, kind: i64, value: SqlValue, into: &mut Attributes) {
    if let Some(value) = AttrValue::from_sql(kind, value) {
        into.insert_path(&name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_come_from_the_uri_or_are_checked() {
        assert_eq!(ext_of_uri("https://h/a/data.tar.gz?x=1.2#f"), "tar.gz");
        assert_eq!(ext_of_uri("https://h/v1.2/file"), "");
        assert_eq!(ext_of_uri("s3://bucket/.hidden"), "");
        assert_eq!(ext_of_uri("plain"), "");
        assert!(NewItem::new().ext("../etc").resolved_ext("u").is_err());
        assert!(NewItem::new().ext("a/b").resolved_ext("u").is_err());
        assert_eq!(NewItem::new().ext("csv.gz").resolved_ext("u").unwrap(), "csv.gz");
    }

    #[test]
    fn transition_masks_match_the_lifecycle() {
        assert_eq!(Status::Ready.allowed_from_mask(), 1 << Status::Write.code());
        assert_eq!(Status::Uninitialized.allowed_from_mask(), 0);
        for status in Status::ALL {
            assert_eq!(Status::from_code(status.code()), Some(status));
            assert!(!Status::Trash.allowed_from().contains(&Status::Trash));
        }
    }
}
