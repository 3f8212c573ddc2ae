//! The registry's error type, in the style of `cache-core`'s: a kind to act on, the operation,
//! what this layer knows, and the cause through `source()`.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::path::Path;

/// `Result` with this crate's [`Error`].
///
/// ```
/// use cache_registry::{Registry, Result};
///
/// fn newest_size(registry: &Registry, uri: &str) -> Result<Option<u64>> {
///     Ok(registry.best(uri, &())?.and_then(|item| item.size()))
/// }
/// # let _ = newest_size;
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on.
///
/// A lookup that finds nothing is never an error: it is `Ok(None)`.
///
/// ```
/// use cache_registry::{ErrorKind, NewItem, Registry};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let registry = Registry::open(dir.path())?;
/// let item = registry.create("u", &(), &NewItem::new())?;
/// match item.open() {
///     Err(error) if error.kind() == ErrorKind::FileMissing => {} // never written: fetch it again
///     Err(error) if error.is_temporary() => {}                   // busy: retry later
///     other => panic!("unexpected: {other:?}"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The registry's database is locked by another process for longer than the busy timeout.
    /// Usually worth a retry.
    Busy,
    /// A status change that the lifecycle does not allow, or that lost a race with another
    /// process (for example committing a version that was trashed meanwhile).
    InvalidTransition,
    /// The item's record exists but its file is gone (deleted behind the registry's back).
    /// [`Registry::cleanup`](crate::Registry::cleanup) removes such records.
    FileMissing,
    /// The thing asked for inside a file does not exist, such as an archive member.
    NotFound,
    /// An argument the registry cannot use: params that do not serialize, an attribute name
    /// with a `.`, a non-finite float, a query that compares text with `<`.
    InvalidInput,
    /// The file's content is not what its format says (a truncated gzip, a bad tar header, a
    /// zip member whose checksum does not match).
    Corrupt,
    /// A format feature this crate does not read, such as an encrypted zip member.
    Unsupported,
    /// The database was written by a newer version of this crate, or is not a registry.
    IncompatibleSchema,
    /// The registry could not be set up where it was asked to be (no OS cache directory, a bad
    /// application name).
    InvalidConfig,
    /// Reading needed more than a configured limit allows, such as an xz stream declaring a
    /// dictionary larger than [`RegistryBuilder::xz_memory_limit`](crate::RegistryBuilder::xz_memory_limit).
    LimitExceeded,
    /// Reading or writing a file or directory failed.
    Io,
    /// SQLite failed in a way not covered above.
    Database,
}

impl ErrorKind {
    /// Whether the same call may succeed if retried later.
    ///
    /// ```
    /// use cache_registry::ErrorKind;
    ///
    /// assert!(ErrorKind::Busy.is_temporary());
    /// assert!(!ErrorKind::Corrupt.is_temporary());
    /// ```
    pub fn is_temporary(self) -> bool {
        matches!(self, ErrorKind::Busy)
    }

    fn describe(self) -> &'static str {
        match self {
            ErrorKind::Busy => "database busy",
            ErrorKind::InvalidTransition => "invalid status transition",
            ErrorKind::FileMissing => "the item's file is missing",
            ErrorKind::NotFound => "not found",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Corrupt => "corrupt data",
            ErrorKind::Unsupported => "not supported",
            ErrorKind::IncompatibleSchema => "incompatible database schema",
            ErrorKind::InvalidConfig => "invalid configuration",
            ErrorKind::LimitExceeded => "over a configured limit",
            ErrorKind::Io => "i/o error",
            ErrorKind::Database => "database error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// An error from a registry operation: its [`ErrorKind`], the operation, what this layer knows,
/// and the underlying cause as [`source()`](StdError::source).
///
/// `Display` reads like `registry commit "https://example.org/a.csv" v3: invalid status
/// transition: trash -> ready`: the operation, the item (its URI cut short, and version) where
/// there is one, the kind, and what this layer knows; the driver's own message is reached
/// through `source()`, never pasted in twice.
///
/// ```
/// use cache_registry::{ErrorKind, NewItem, Registry};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let registry = Registry::open(dir.path())?;
/// let bad = registry.create("u", &(), &NewItem::new().attr("a.b", 1)).unwrap_err();
/// assert_eq!(bad.kind(), ErrorKind::InvalidInput);
/// assert_eq!(bad.operation(), "create");
/// assert!(bad.to_string().starts_with(r#"registry create "u": invalid input"#));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    operation: &'static str,
    /// The item the operation was about: its URI, cut short, and its version if known.
    item: Option<Box<str>>,
    context: Option<Cow<'static, str>>,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` from `operation` (`"create"`, `"open"`, ...).
    ///
    /// ```
    /// use cache_registry::{Error, ErrorKind};
    ///
    /// let error = Error::new(ErrorKind::NotFound, "open member");
    /// assert_eq!(error.to_string(), "registry open member: not found");
    /// ```
    pub fn new(kind: ErrorKind, operation: &'static str) -> Self {
        Error { kind, operation, item: None, context: None, source: None }
    }

    /// How many bytes of a URI [`with_item`](Error::with_item) keeps.
    ///
    /// ```
    /// use cache_registry::{Error, ErrorKind};
    ///
    /// let error = Error::new(ErrorKind::Io, "open").with_item(&"x".repeat(500), None);
    /// assert!(error.item().unwrap().len() < Error::URI_SHOWN + 30);
    /// ```
    pub const URI_SHOWN: usize = 64;

    /// Names the item the failed operation was about: its URI (cut to
    /// [`URI_SHOWN`](Error::URI_SHOWN) bytes at a character boundary, control characters
    /// escaped) and its version when there is one. Params and file contents never go into
    /// errors. The first item named stays.
    ///
    /// ```
    /// use cache_registry::{Error, ErrorKind};
    ///
    /// let error = Error::new(ErrorKind::Io, "commit").with_item("https://example.org/a.csv", Some(2));
    /// assert_eq!(error.to_string(), r#"registry commit "https://example.org/a.csv" v2: i/o error"#);
    /// ```
    #[must_use]
    pub fn with_item(mut self, uri: &str, version: Option<u64>) -> Self {
        if self.item.is_none() {
            let mut end = uri.len().min(Self::URI_SHOWN);
            while !uri.is_char_boundary(end) {
                end -= 1;
            }
            let mut shown = format!("{:?}", &uri[..end]);
            if end < uri.len() {
                shown.insert_str(shown.len() - 1, &format!("...({} bytes)", uri.len()));
            }
            if let Some(version) = version {
                shown.push_str(&format!(" v{version}"));
            }
            self.item = Some(shown.into_boxed_str());
        }
        self
    }

    /// The item named by [`with_item`](Error::with_item), as shown in `Display`.
    ///
    /// ```
    /// use cache_registry::{Error, ErrorKind};
    ///
    /// let error = Error::new(ErrorKind::Io, "open").with_item("u", Some(1));
    /// assert_eq!(error.item(), Some(r#""u" v1"#));
    /// ```
    pub fn item(&self) -> Option<&str> {
        self.item.as_deref()
    }

    /// Adds what this layer knows that the kind does not say (a key, a path, a name).
    ///
    /// ```
    /// use cache_registry::{Error, ErrorKind};
    ///
    /// let error = Error::new(ErrorKind::NotFound, "open member").with_context("no file member \"a.txt\"");
    /// assert_eq!(error.context(), Some("no file member \"a.txt\""));
    /// ```
    #[must_use]
    pub fn with_context(mut self, context: impl Into<Cow<'static, str>>) -> Self {
        self.context = Some(context.into());
        self
    }

    /// Sets the underlying cause, reachable through `source()`.
    ///
    /// ```
    /// use std::error::Error as _;
    /// use cache_registry::{Error, ErrorKind};
    ///
    /// let cause = std::io::Error::other("disk on fire");
    /// let error = Error::new(ErrorKind::Io, "commit").with_source(cause);
    /// assert_eq!(error.source().map(ToString::to_string).as_deref(), Some("disk on fire"));
    /// ```
    #[must_use]
    pub fn with_source(mut self, source: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What went wrong.
    ///
    /// ```
    /// use cache_registry::{Error, ErrorKind};
    ///
    /// assert_eq!(Error::new(ErrorKind::Busy, "create").kind(), ErrorKind::Busy);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The operation that failed, such as `"create"` or `"search"`.
    ///
    /// ```
    /// use cache_registry::{Error, ErrorKind};
    ///
    /// assert_eq!(Error::new(ErrorKind::Busy, "create").operation(), "create");
    /// ```
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// What the failing layer added about the circumstances, if anything.
    ///
    /// ```
    /// use cache_registry::{Error, ErrorKind};
    ///
    /// assert_eq!(Error::new(ErrorKind::Busy, "create").context(), None);
    /// ```
    pub fn context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    /// Whether the same call may succeed if retried later (the database was busy).
    ///
    /// ```
    /// use cache_registry::{Error, ErrorKind};
    ///
    /// assert!(Error::new(ErrorKind::Busy, "create").is_temporary());
    /// ```
    pub fn is_temporary(&self) -> bool {
        self.kind.is_temporary()
    }

    pub(crate) fn invalid_input(operation: &'static str, why: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::InvalidInput, operation).with_context(why)
    }

    pub(crate) fn db(operation: &'static str, error: rusqlite::Error) -> Self {
        let kind = match error.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => ErrorKind::Busy,
            Some(rusqlite::ErrorCode::NotADatabase) => ErrorKind::IncompatibleSchema,
            _ => ErrorKind::Database,
        };
        Error::new(kind, operation).with_source(error)
    }

    pub(crate) fn io(operation: &'static str, path: &Path, error: std::io::Error) -> Self {
        let kind = match error.kind() {
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => ErrorKind::Corrupt,
            std::io::ErrorKind::OutOfMemory => ErrorKind::LimitExceeded,
            _ => ErrorKind::Io,
        };
        Error::new(kind, operation).with_context(path.display().to_string()).with_source(error)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "registry {}", self.operation)?;
        if let Some(item) = &self.item {
            write!(f, " {item}")?;
        }
        write!(f, ": {}", self.kind)?;
        if let Some(context) = &self.context {
            write!(f, ": {context}")?;
        }
        Ok(())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|source| source as &(dyn StdError + 'static))
    }
}

impl From<Error> for std::io::Error {
    fn from(error: Error) -> Self {
        let kind = match error.kind {
            ErrorKind::FileMissing | ErrorKind::NotFound => std::io::ErrorKind::NotFound,
            ErrorKind::Corrupt => std::io::ErrorKind::InvalidData,
            ErrorKind::InvalidInput => std::io::ErrorKind::InvalidInput,
            ErrorKind::Unsupported => std::io::ErrorKind::Unsupported,
            ErrorKind::LimitExceeded => std::io::ErrorKind::OutOfMemory,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_says_this_layer_and_source_holds_the_cause() {
        let cause = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let error = Error::io("open", Path::new("/x/y"), cause);
        assert_eq!(error.kind(), ErrorKind::Io);
        assert_eq!(error.to_string(), "registry open: i/o error: /x/y");
        assert_eq!(error.source().map(ToString::to_string).as_deref(), Some("denied"));
        assert!(!error.is_temporary());
    }

    #[test]
    fn the_item_is_named_cut_short_and_escaped() {
        let error = Error::new(ErrorKind::InvalidTransition, "commit").with_item("https://h/a.csv", Some(3));
        assert_eq!(error.to_string(), "registry commit \"https://h/a.csv\" v3: invalid status transition");
        let long = format!("https://h/{}\n", "é".repeat(100));
        let error = Error::new(ErrorKind::Io, "open").with_item(&long, None).with_item("other", None);
        let shown = error.item().unwrap();
        assert!(shown.ends_with(&format!("...({} bytes)\"", long.len())), "{shown}");
        assert!(shown.len() < 90 && !shown.contains('\n'), "{shown}");
    }

    #[test]
    fn busy_is_temporary_and_truncation_is_corrupt() {
        assert!(ErrorKind::Busy.is_temporary());
        let eof = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "eof");
        assert_eq!(Error::io("read", Path::new("f"), eof).kind(), ErrorKind::Corrupt);
    }
}
