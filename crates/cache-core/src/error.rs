//! The one error type every store returns.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;

/// `Result` with this crate's [`Error`]: `cache_core::Result<T>` is
/// `std::result::Result<T, cache_core::Error>`.
///
/// ```
/// fn parse_port(text: &str) -> cache_core::Result<u16> {
///     text.parse().map_err(|source| {
///         cache_core::Error::new(cache_core::ErrorKind::InvalidConfig, "redis", "build").with_source(source)
///     })
/// }
/// assert_eq!(parse_port("6379").ok(), Some(6379));
/// assert!(parse_port("http").is_err());
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on.
///
/// A miss is never an error: it is `Ok(None)`.
///
/// ```
/// use cache_core::{Error, ErrorKind};
///
/// /// Whether to retry a failed call, or give up and report it.
/// fn should_retry(error: &Error) -> bool {
///     match error.kind() {
///         ErrorKind::Unavailable | ErrorKind::Timeout => true,
///         // Bad input or configuration: retrying gives the same answer.
///         _ => false,
///     }
/// }
///
/// assert!(should_retry(&Error::new(ErrorKind::Timeout, "redis", "get")));
/// assert!(!should_retry(&Error::new(ErrorKind::ValueTooLarge, "memcached", "set")));
/// assert_eq!(should_retry(&Error::new(ErrorKind::Unavailable, "redis", "get")), ErrorKind::Unavailable.is_temporary());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The store could not be reached or dropped the connection. Usually worth a retry.
    Unavailable,
    /// The store did not answer in time. Usually worth a retry.
    Timeout,
    /// The value is larger than this store accepts
    /// (see [`Capabilities::max_value_len`](crate::Capabilities::max_value_len)).
    ValueTooLarge,
    /// `incr` found a value that is not a decimal integer.
    NotAnInteger,
    /// `incr` would overflow `i64`. The stored value is unchanged.
    IntegerOverflow,
    /// The store was configured with settings it cannot use.
    InvalidConfig,
    /// A typed value could not be encoded or decoded.
    Serialization,
    /// This store cannot do this operation (see [`Capabilities`](crate::Capabilities)).
    Unsupported,
    /// The loader given to `get_or_insert_with` failed; its error is the `source()`.
    LoaderFailed,
    /// Anything else: the store answered in a way we did not expect.
    Unexpected,
}

impl ErrorKind {
    /// Whether the same call may succeed if retried later.
    pub fn is_temporary(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Timeout)
    }

    fn describe(self) -> &'static str {
        match self {
            ErrorKind::Unavailable => "store unavailable",
            ErrorKind::Timeout => "timed out",
            ErrorKind::ValueTooLarge => "value too large for this store",
            ErrorKind::NotAnInteger => "value is not an integer",
            ErrorKind::IntegerOverflow => "integer overflow",
            ErrorKind::InvalidConfig => "invalid configuration",
            ErrorKind::Serialization => "serialization failed",
            ErrorKind::Unsupported => "not supported by this store",
            ErrorKind::LoaderFailed => "loader failed",
            ErrorKind::Unexpected => "unexpected error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// An error from a cache operation: its [`ErrorKind`], the backend and operation it
/// came from, what that layer knows, and the underlying cause as [`source()`](StdError::source).
///
/// `Display` says only what this layer knows, for example
/// `redis get "user:7": store unavailable: connecting to 127.0.0.1:6379`; the driver's own
/// message is reached through `source()`, never pasted in twice.
///
/// Stores build one like this (callers read it through the accessors):
///
/// ```
/// use std::error::Error as _;
/// use cache_core::{Error, ErrorKind};
///
/// let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
/// let error = Error::new(ErrorKind::Unavailable, "redis", "get")
///     .with_key("user:7")
///     .with_context("connecting to 127.0.0.1:6379")
///     .with_source(refused);
///
/// assert_eq!(error.to_string(), r#"redis get "user:7": store unavailable: connecting to 127.0.0.1:6379"#);
/// assert_eq!(error.source().map(ToString::to_string).as_deref(), Some("connection refused"));
/// assert!(error.is_temporary());
/// assert_eq!((error.backend(), error.operation(), error.key()), ("redis", "get", Some(r#""user:7""#)));
/// ```
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    backend: &'static str,
    operation: &'static str,
    key: Option<Box<str>>,
    context: Option<Cow<'static, str>>,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` from `operation` (`"get"`, `"build"`, ...) on `backend`
    /// (`"memory"`, `"redis"`, ...).
    pub fn new(kind: ErrorKind, backend: &'static str, operation: &'static str) -> Self {
        Error { kind, backend, operation, key: None, context: None, source: None }
    }

    /// Names the key the failed operation was about. Long keys are cut to
    /// [`Error::KEY_SHOWN`] bytes (at a character boundary) with their full length noted,
    /// and control characters are escaped, so a message stays one readable line.
    /// Values never go into errors.
    #[must_use]
    pub fn with_key(mut self, key: &str) -> Self {
        self.key = Some(describe_key(key).into_boxed_str());
        self
    }

    /// How many bytes of a key [`with_key`](Error::with_key) keeps.
    pub const KEY_SHOWN: usize = 64;

    /// Adds what this layer knows that the kind does not say (a key, a size, a path).
    #[must_use]
    pub fn with_context(mut self, context: impl Into<Cow<'static, str>>) -> Self {
        self.context = Some(context.into());
        self
    }

    /// Sets the underlying cause, reachable through `source()`.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The backend that failed, such as `"memory"` or `"redis"`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The operation that failed, such as `"get"` or `"build"`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The key the operation was about, as shown in messages (quoted, escaped, and
    /// shortened when long), if the error names one.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// What the failing layer added about the circumstances, if anything.
    pub fn context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    /// Whether the same call may succeed if retried later (unavailable, timed out).
    pub fn is_temporary(&self) -> bool {
        self.kind.is_temporary()
    }

    /// Whether the store did not answer in time.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    /// Shorthand for an [`ErrorKind::Unsupported`] error.
    pub fn unsupported(backend: &'static str, operation: &'static str, why: &'static str) -> Self {
        Error::new(ErrorKind::Unsupported, backend, operation).with_context(why)
    }

    /// Shorthand for an [`ErrorKind::ValueTooLarge`] error that names both sizes.
    pub fn value_too_large(backend: &'static str, operation: &'static str, len: usize, limit: usize) -> Self {
        Error::new(ErrorKind::ValueTooLarge, backend, operation)
            .with_context(format!("{len} bytes, the limit is {limit}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.backend, self.operation)?;
        if let Some(key) = &self.key {
            write!(f, " {key}")?;
        }
        write!(f, ": {}", self.kind)?;
        if let Some(context) = &self.context {
            write!(f, ": {context}")?;
        }
        Ok(())
    }
}

/// `"user:7"`, or `"kkkk…" (10240 bytes)` for a key longer than [`Error::KEY_SHOWN`].
fn describe_key(key: &str) -> String {
    let mut end = key.len().min(Error::KEY_SHOWN);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    let shown = key[..end].escape_debug();
    if end == key.len() { format!("\"{shown}\"") } else { format!("\"{shown}…\" ({} bytes)", key.len()) }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|source| source as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_says_this_layer_and_source_holds_the_cause() {
        let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = Error::new(ErrorKind::Unavailable, "redis", "get")
            .with_context("connecting to 127.0.0.1:6379")
            .with_source(cause);
        assert_eq!(error.to_string(), "redis get: store unavailable: connecting to 127.0.0.1:6379");
        assert_eq!(error.source().map(ToString::to_string).as_deref(), Some("refused"));
        assert!(error.is_temporary());
        assert!(!error.is_timeout());
    }

    #[test]
    fn the_key_is_named_escaped_and_shortened() {
        let error = Error::new(ErrorKind::NotAnInteger, "memory", "incr").with_key("visits:\n7");
        assert_eq!(error.to_string(), "memory incr \"visits:\\n7\": value is not an integer");
        assert_eq!(error.key(), Some("\"visits:\\n7\""));

        let long = format!("{}é{}", "k".repeat(63), "x".repeat(10_000));
        let error = Error::new(ErrorKind::Timeout, "redis", "get").with_key(&long).with_context("after 1 s");
        let shown = format!("\"{}…\" ({} bytes)", "k".repeat(63), long.len());
        assert_eq!(error.to_string(), format!("redis get {shown}: timed out: after 1 s"));
    }

    #[test]
    fn only_unavailable_and_timeout_are_temporary() {
        assert!(ErrorKind::Timeout.is_temporary());
        assert!(!ErrorKind::NotAnInteger.is_temporary());
        assert!(!ErrorKind::ValueTooLarge.is_temporary());
    }

    #[test]
    fn value_too_large_names_both_sizes() {
        let error = Error::value_too_large("memcached", "set", 2_000_000, 1_048_576);
        assert_eq!(error.kind(), ErrorKind::ValueTooLarge);
        assert_eq!(
            error.to_string(),
            "memcached set: value too large for this store: 2000000 bytes, the limit is 1048576"
        );
    }
}
