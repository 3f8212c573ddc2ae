//! Items: one version of one cached file, its status and its attributes.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crate::attr::{self, AttrValue, Attributes};
use crate::db::Row;
use crate::error::{Error, ErrorKind, Result};
use crate::read::Reader;
use crate::status::Status;
use crate::store::Store;

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
    ///
    /// ```
    /// use cache_registry::NewItem;
    ///
    /// let options = NewItem::new(); // extension from the URI, no label, no attributes
    /// # let _ = options;
    /// ```
    pub fn new() -> Self {
        NewItem::default()
    }

    /// The file's extension without the leading dot (`"csv"`, `"tar.gz"`). It names the file and
    /// tells [`Item::open`] how to decode it. Only ASCII letters, digits, `.`, `_` and `-` are
    /// accepted, at most 32 of them; anything else is an error at create time.
    ///
    /// ```
    /// use cache_registry::NewItem;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// let item = registry.create("https://example.org/download?id=7", &(), &NewItem::new().ext("csv.gz"))?;
    /// assert_eq!(item.ext(), "csv.gz");
    /// assert!(registry.create("u", &(), &NewItem::new().ext("../x")).is_err());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn ext(mut self, ext: impl Into<String>) -> Self {
        self.ext = Some(ext.into());
        self
    }

    /// A free-text label, searchable with [`Filter::label`](crate::Filter::label).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// assert_eq!(item.label(), Some("daily"));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets one attribute.
    ///
    /// ```
    /// use cache_registry::{AttrValue, NewItem};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// let body = vec![0u8; 1200];
    /// let item = registry.create("u", &(), &NewItem::new().attr("size", body.len()).attr("source", "survey"))?;
    /// assert_eq!(item.attributes()?.get("size"), Some(&AttrValue::Int(1200)));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn attr(mut self, name: impl Into<String>, value: impl Into<AttrValue>) -> Self {
        self.attributes.insert(name, value);
        self
    }

    /// Sets all of `attributes`, replacing any with the same names.
    ///
    /// ```
    /// use cache_registry::{Attributes, NewItem};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// let attrs = Attributes::new().with("rows", 3).with("model", Attributes::new().with("layers", 2));
    /// let item = registry.create("u", &(), &NewItem::new().attributes(attrs.clone()))?;
    /// assert_eq!(item.attributes()?, attrs);
    /// # Ok(())
    /// # }
    /// ```
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

/// One version of one cached file, as the registry saw it when this value was read.
///
/// The fields are a snapshot: another process may change the status meanwhile;
/// [`refresh`](Item::refresh) reads it again. Status changes made through this value update it.
///
/// ```
/// use std::io::{Read, Write};
/// use cache_registry::{NewItem, Registry, Status};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let registry = Registry::open(dir.path())?;
/// # let mut writer = registry.create("https://example.org/a.csv", &serde_json::json!({"day": 1}), &NewItem::new().attr("rows", 2))?.write()?;
/// # writer.write_all(b"a,b\n1,2\n")?;
/// # let item = writer.commit()?;
/// // A snapshot of the record: cheap to clone, no I/O to read its fields.
/// assert_eq!((item.version(), item.status(), item.size()), (1, Status::Ready, Some(8)));
/// assert_eq!(item.ext(), "csv");
/// let mut text = String::new();
/// item.open()?.read_to_string(&mut text)?;
/// assert_eq!(text, "a,b\n1,2\n");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Item {
    pub(crate) store: Arc<Store>,
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
    /// Names this item in an error of one of its operations.
    pub(crate) fn named(&self) -> impl Fn(Error) -> Error + '_ {
        move |error| error.with_item(&self.row.uri, Some(self.version()))
    }

    /// The stable key shared by every version of this URI and params (see [`item_key`](crate::item_key)).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// assert_eq!(item.key(), cache_registry::item_key(item.uri(), &serde_json::json!({"year": 2024}))?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn key(&self) -> &str {
        &self.row.key
    }

    /// The version, counting from 1 per key.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// assert_eq!(item.version(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn version(&self) -> u64 {
        u64::try_from(self.row.version).unwrap_or(0)
    }

    /// The URI given at create time.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// assert_eq!(item.uri(), "https://example.org/data/sales.csv");
    /// # Ok(())
    /// # }
    /// ```
    pub fn uri(&self) -> &str {
        &self.row.uri
    }

    /// The params in canonical JSON form (see [`canonical_params`](crate::canonical_params)).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// assert_eq!(item.params(), r#"{"year":2024}"#);
    /// # Ok(())
    /// # }
    /// ```
    pub fn params(&self) -> &str {
        &self.row.params
    }

    /// The params parsed back into a JSON value.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Corrupt`] if the stored text is not JSON (someone edited the database).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// assert_eq!(item.params_json()?["year"], 2024);
    /// # Ok(())
    /// # }
    /// ```
    pub fn params_json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.row.params)
            .map_err(|error| Error::new(ErrorKind::Corrupt, "params").with_source(error))
    }

    /// The status when this value was read or last changed through it.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// assert_eq!(item.status(), cache_registry::Status::Uninitialized);
    /// # Ok(())
    /// # }
    /// ```
    pub fn status(&self) -> Status {
        self.row.status
    }

    /// The file's name inside the registry's `files` directory.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// assert!(item.file_name().ends_with("-1.csv"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn file_name(&self) -> &str {
        &self.row.file_name
    }

    /// The file's extension without the dot; empty when it has none.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// assert_eq!(item.ext(), "csv", "from the URI when not given");
    /// # Ok(())
    /// # }
    /// ```
    pub fn ext(&self) -> &str {
        &self.row.ext
    }

    /// The label given at create time.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// assert_eq!(item.label(), Some("daily"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn label(&self) -> Option<&str> {
        self.row.label.as_deref()
    }

    /// When this version was created.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// assert!(item.created() <= std::time::SystemTime::now());
    /// # Ok(())
    /// # }
    /// ```
    pub fn created(&self) -> SystemTime {
        attr::from_micros(self.row.created)
    }

    /// When this version was last opened for reading, if ever.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// assert!(item.last_read().is_none(), "never opened");
    /// # Ok(())
    /// # }
    /// ```
    pub fn last_read(&self) -> Option<SystemTime> {
        self.row.last_read.map(attr::from_micros)
    }

    /// How many times this version was opened for reading.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// assert_eq!(item.read_count(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn read_count(&self) -> u64 {
        u64::try_from(self.row.read_count).unwrap_or(0)
    }

    /// The file's size in bytes, known once the version is [`Ready`](Status::Ready).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// assert_eq!(item.size(), None, "known once Ready");
    /// # Ok(())
    /// # }
    /// ```
    pub fn size(&self) -> Option<u64> {
        self.row.size.and_then(|size| u64::try_from(size).ok())
    }

    /// Where the file lives (or will, once written).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # let options = cache_registry::NewItem::new().label("daily");
    /// # let item = registry.create("https://example.org/data/sales.csv", &serde_json::json!({"year": 2024}), &options)?;
    /// # let _ = &item;
    /// assert!(item.path().starts_with(registry.dir()));
    /// assert!(!item.path().exists(), "written only on commit");
    /// # Ok(())
    /// # }
    /// ```
    pub fn path(&self) -> PathBuf {
        self.store.file_path(&self.row.file_name)
    }

    /// Reads this item's record again.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] if cleanup removed it; database errors.
    ///
    /// ```
    /// use std::io::Write;
    /// use cache_registry::{NewItem, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = Registry::open(dir.path())?;
    /// # let mut writer = registry.create("https://example.org/a.csv", &serde_json::json!({"day": 1}), &NewItem::new().attr("rows", 2))?.write()?;
    /// # writer.write_all(b"a,b\n1,2\n")?;
    /// # let item = writer.commit()?;
    /// let mut snapshot = item.clone();
    /// item.open()?;
    /// assert_eq!(snapshot.read_count(), 0);
    /// snapshot.refresh()?;
    /// assert_eq!(snapshot.read_count(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn refresh(&mut self) -> Result<()> {
        let row = self.store.db.row_by_id(self.row.id, "refresh").map_err(self.named())?;
        self.row = row.ok_or_else(|| {
            self.named()(Error::new(ErrorKind::NotFound, "refresh").with_context("the item was removed"))
        })?;
        Ok(())
    }

    /// The attributes, namespaces nested again.
    ///
    /// # Errors
    ///
    /// Database errors.
    ///
    /// ```
    /// use std::io::Write;
    /// use cache_registry::{AttrValue, Attributes, NewItem, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = Registry::open(dir.path())?;
    /// # let mut writer = registry.create("https://example.org/a.csv", &serde_json::json!({"day": 1}), &NewItem::new().attr("rows", 2))?.write()?;
    /// # writer.write_all(b"a,b\n1,2\n")?;
    /// # let item = writer.commit()?;
    /// item.set_attributes(&Attributes::new().with("model", Attributes::new().with("layers", 3)))?;
    /// let attributes = item.attributes()?;
    /// assert_eq!(attributes.get("rows"), Some(&AttrValue::Int(2)));
    /// assert_eq!(attributes.get("model.layers"), Some(&AttrValue::Int(3)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn attributes(&self) -> Result<Attributes> {
        self.store.db.attributes(self.row.id).map_err(self.named())
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
    ///
    /// ```
    /// use std::io::Write;
    /// use cache_registry::{AttrValue, Attributes, ErrorKind, NewItem, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = Registry::open(dir.path())?;
    /// # let mut writer = registry.create("https://example.org/a.csv", &serde_json::json!({"day": 1}), &NewItem::new().attr("rows", 2))?.write()?;
    /// # writer.write_all(b"a,b\n1,2\n")?;
    /// # let item = writer.commit()?;
    /// item.set_attributes(&Attributes::new().with("rows", 3).with("checked", true))?;
    /// assert_eq!(item.attributes()?.get("rows"), Some(&AttrValue::Int(3)));
    /// // A path is a value or a namespace, never both.
    /// let clash = item.set_attributes(&Attributes::new().with("rows", Attributes::new().with("n", 1)));
    /// assert_eq!(clash.unwrap_err().kind(), ErrorKind::InvalidInput);
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_attributes(&self, attributes: &Attributes) -> Result<()> {
        let flat = attributes.flatten("set attributes").map_err(self.named())?;
        self.store.db.set_attributes(self.row.id, &flat).map_err(self.named())
    }

    /// Removes the attribute at `path` and, if it is a namespace, everything under it.
    /// Returns how many stored values went.
    ///
    /// # Errors
    ///
    /// Database errors.
    ///
    /// ```
    /// use std::io::Write;
    /// use cache_registry::{NewItem, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = Registry::open(dir.path())?;
    /// # let mut writer = registry.create("https://example.org/a.csv", &serde_json::json!({"day": 1}), &NewItem::new().attr("rows", 2))?.write()?;
    /// # writer.write_all(b"a,b\n1,2\n")?;
    /// # let item = writer.commit()?;
    /// assert_eq!(item.remove_attribute("rows")?, 1);
    /// assert!(item.attributes()?.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn remove_attribute(&self, path: &str) -> Result<usize> {
        self.store.db.remove_attribute(self.row.id, path).map_err(self.named())
    }

    /// Moves this version to `status`, atomically checking the current status.
    ///
    /// Use [`write`](Item::write) rather than this to start writing and [`Writer::commit`](crate::Writer::commit) to
    /// mark Ready: those also manage the file.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidTransition`] when the stored status does not allow it (the context
    /// names both); [`ErrorKind::NotFound`] if the item was removed.
    ///
    /// ```
    /// use std::io::Write;
    /// use cache_registry::{ErrorKind, NewItem, Registry, Status};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = Registry::open(dir.path())?;
    /// # let mut writer = registry.create("https://example.org/a.csv", &serde_json::json!({"day": 1}), &NewItem::new().attr("rows", 2))?.write()?;
    /// # writer.write_all(b"a,b\n1,2\n")?;
    /// # let item = writer.commit()?;
    /// let mut item = item;
    /// assert_eq!(item.set_status(Status::Write).unwrap_err().kind(), ErrorKind::InvalidTransition);
    /// item.set_status(Status::Trash)?;
    /// assert_eq!(item.status(), Status::Trash);
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_status(&mut self, status: Status) -> Result<()> {
        self.store.db.transition(self.row.id, status, None, "set status").map_err(self.named())?;
        self.row.status = status;
        Ok(())
    }

    /// Marks this version for removal by the next [`cleanup`](crate::Registry::cleanup).
    ///
    /// # Errors
    ///
    /// As [`set_status`](Item::set_status).
    ///
    /// ```
    /// use std::io::Write;
    /// use cache_registry::{NewItem, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = Registry::open(dir.path())?;
    /// # let mut writer = registry.create("https://example.org/a.csv", &serde_json::json!({"day": 1}), &NewItem::new().attr("rows", 2))?.write()?;
    /// # writer.write_all(b"a,b\n1,2\n")?;
    /// # let item = writer.commit()?;
    /// let mut item = item;
    /// item.trash()?;
    /// assert!(registry.best("https://example.org/a.csv", &serde_json::json!({"day": 1}))?.is_none());
    /// # Ok(())
    /// # }
    /// ```
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
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use cache_registry::{NewItem, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    /// gzip.write_all(b"decoded on the fly")?;
    /// let mut writer = registry.create("https://example.org/notes.txt.gz", &(), &NewItem::new())?.write()?;
    /// writer.write_all(&gzip.finish()?)?;
    /// let item = writer.commit()?;
    /// let mut text = String::new();
    /// item.open()?.read_to_string(&mut text)?;
    /// assert_eq!(text, "decoded on the fly");
    /// # Ok(())
    /// # }
    /// ```
    pub fn open(&self) -> Result<Reader> {
        let reader = crate::read::open(&self.path(), &self.row.ext, self.store.read_limits).map_err(self.named())?;
        self.store.db.record_read(self.row.id).map_err(self.named())?;
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
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use cache_registry::{NewItem, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// let mut archive = tar::Builder::new(Vec::new());
    /// let mut header = tar::Header::new_gnu();
    /// header.set_size(5);
    /// archive.append_data(&mut header, "data/a.txt", &b"alpha"[..])?;
    /// let mut writer = registry.create("https://example.org/bundle.tar", &(), &NewItem::new())?.write()?;
    /// writer.write_all(&archive.into_inner()?)?;
    /// let item = writer.commit()?;
    /// assert_eq!(item.members()?, ["data/a.txt"]);
    /// let mut text = String::new();
    /// item.open_member("./data/a.txt")?.read_to_string(&mut text)?;
    /// assert_eq!(text, "alpha");
    /// # Ok(())
    /// # }
    /// ```
    pub fn open_member(&self, name: &str) -> Result<Reader> {
        let reader = crate::read::open_member(&self.path(), &self.row.ext, name, self.store.read_limits)
            .map_err(self.named())?;
        self.store.db.record_read(self.row.id).map_err(self.named())?;
        Ok(reader)
    }

    /// The names of the file members of a zip or tar archive, in archive order. Not counted as a read.
    ///
    /// # Errors
    ///
    /// As [`open_member`](Item::open_member).
    ///
    /// ```
    /// use std::io::Write;
    /// use cache_registry::{NewItem, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    /// archive.start_file("a.txt", zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored))?;
    /// archive.write_all(b"alpha")?;
    /// let mut writer = registry.create("https://example.org/bundle.zip", &(), &NewItem::new())?.write()?;
    /// writer.write_all(&archive.finish()?.into_inner())?;
    /// assert_eq!(writer.commit()?.members()?, ["a.txt"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn members(&self) -> Result<Vec<String>> {
        crate::read::members(&self.path(), &self.row.ext, self.store.read_limits).map_err(self.named())
    }

    /// Opens the stored bytes as they are, without decoding, and counts the read.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::FileMissing`]; I/O and database errors.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use cache_registry::{NewItem, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// let mut writer = registry.create("https://example.org/a.gz", &(), &NewItem::new())?.write()?;
    /// writer.write_all(&[0x1f, 0x8b, 1, 2])?;
    /// let item = writer.commit()?;
    /// let mut bytes = Vec::new();
    /// item.open_raw()?.read_to_end(&mut bytes)?;
    /// assert_eq!(bytes, [0x1f, 0x8b, 1, 2]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn open_raw(&self) -> Result<Reader> {
        let reader = crate::read::open_raw(&self.path()).map_err(self.named())?;
        self.store.db.record_read(self.row.id).map_err(self.named())?;
        Ok(reader)
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
}
