//! This crate's own failures, and the one place they become a [`cache_core::Error`].

use std::fmt;
use std::time::Duration;

use cache_core::{Error, ErrorKind};
use mongodb::error::{ErrorKind as DriverKind, WriteFailure};

pub(crate) const BACKEND: &str = "mongo";

/// What went wrong inside an operation, before it is given a [`ErrorKind`].
#[derive(Debug)]
pub(crate) enum Failure {
    /// The driver or the server reported an error.
    Driver(mongodb::error::Error),
    /// The whole call did not finish within the operation timeout.
    Elapsed(Duration),
    /// The document would exceed what MongoDB stores in one document.
    TooLarge { len: usize, limit: usize },
    /// `incr` found a value that is not a decimal `i64`.
    NotAnInteger,
    /// `incr` would leave the `i64` range.
    Overflow,
    /// A stored document is not shaped the way this crate writes them.
    Shape(String),
    /// `incr` lost every compare-and-swap round to other writers of the key.
    Contended,
    /// A builder setting that cannot work.
    Config(String),
    /// The task running the driver's work panicked or was cancelled.
    Task(tokio::task::JoinError),
    /// The server refused `refused` of the `of` writes of a batch; the first said this.
    Refused { code: i32, message: String, refused: usize, of: usize },
}

impl From<mongodb::error::Error> for Failure {
    fn from(error: mongodb::error::Error) -> Self {
        Failure::Driver(error)
    }
}

/// Strings that must never appear in an error (passwords from the connection URI).
#[derive(Clone, Default)]
pub(crate) struct Secrets(Vec<String>);

impl Secrets {
    pub(crate) fn new(secrets: Vec<String>) -> Self {
        Secrets(secrets.into_iter().filter(|secret| !secret.is_empty()).collect())
    }

    fn scrub(&self, text: &str) -> Option<String> {
        if !self.0.iter().any(|secret| text.contains(secret.as_str())) {
            return None;
        }
        let mut text = text.to_owned();
        for secret in &self.0 {
            text = text.replace(secret.as_str(), "<redacted>");
        }
        Some(text)
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} redacted)", self.0.len())
    }
}

/// A driver error's text with the secrets taken out, for when the driver's own error
/// cannot be kept as the source because it quotes one of them.
#[derive(Debug)]
struct Scrubbed(String);

impl fmt::Display for Scrubbed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Scrubbed {}

impl Failure {
    /// The core error for this failure of `operation`, naming `key` (truncated) when the
    /// operation has one. Every error this crate returns is made here.
    pub(crate) fn into_core(self, operation: &'static str, key: Option<&str>, secrets: &Secrets) -> Error {
        let (kind, what) = match &self {
            Failure::Driver(error) => (driver_kind(error), None),
            Failure::Elapsed(limit) => (ErrorKind::Timeout, Some(format!("no answer within {limit:?}"))),
            Failure::TooLarge { len, limit } => (
                ErrorKind::ValueTooLarge,
                Some(format!("the document would be {len} bytes, MongoDB's limit is {limit}")),
            ),
            Failure::NotAnInteger => (ErrorKind::NotAnInteger, None),
            Failure::Overflow => (ErrorKind::IntegerOverflow, None),
            Failure::Shape(what) => (ErrorKind::Unexpected, Some(what.clone())),
            Failure::Contended => {
                (ErrorKind::Unexpected, Some("other writers changed the value on every attempt".to_owned()))
            }
            Failure::Config(what) => (ErrorKind::InvalidConfig, Some(what.clone())),
            Failure::Task(_) => (ErrorKind::Unexpected, Some("the driver's task did not finish".to_owned())),
            Failure::Refused { code, message, refused, of } => (
                code_kind(*code),
                Some(format!("the server refused {refused} of {of} writes, the first with code {code}: {message}")),
            ),
        };
        let mut error = Error::new(kind, BACKEND, operation);
        if let Some(key) = key {
            error = error.with_key(key);
        }
        if let Some(what) = what {
            error = error.with_context(what);
        }
        match self {
            Failure::Driver(source) => {
                // The driver's messages quote the server; a URI parse error can quote the URI.
                match secrets.scrub(&format!("{source} {source:?}")) {
                    None => error.with_source(source),
                    Some(_) => error.with_source(Scrubbed(secrets.scrub(&source.to_string()).unwrap_or_default())),
                }
            }
            Failure::Task(source) => error.with_source(source),
            _ => error,
        }
    }
}

/// MongoDB server error codes this crate acts on (`src/mongo/base/error_codes.yml`).
mod code {
    pub(super) const HOST_UNREACHABLE: i32 = 6;
    pub(super) const HOST_NOT_FOUND: i32 = 7;
    pub(super) const UNAUTHORIZED: i32 = 13;
    pub(super) const AUTHENTICATION_FAILED: i32 = 18;
    pub(super) const MAX_TIME_MS_EXPIRED: i32 = 50;
    pub(super) const WRITE_CONCERN_FAILED: i32 = 64;
    pub(super) const INVALID_NAMESPACE: i32 = 73;
    pub(super) const INDEX_OPTIONS_CONFLICT: i32 = 85;
    pub(super) const INDEX_KEY_SPECS_CONFLICT: i32 = 86;
    pub(super) const NETWORK_TIMEOUT: i32 = 89;
    pub(super) const SHUTDOWN_IN_PROGRESS: i32 = 91;
    pub(super) const PRIMARY_STEPPED_DOWN: i32 = 189;
    pub(super) const EXCEEDED_TIME_LIMIT: i32 = 262;
    pub(super) const ATLAS_ERROR: i32 = 8000;
    pub(super) const SOCKET_EXCEPTION: i32 = 9001;
    pub(super) const NOT_WRITABLE_PRIMARY: i32 = 10107;
    pub(super) const BSON_OBJECT_TOO_LARGE: i32 = 10334;
    pub(super) const DUPLICATE_KEY: i32 = 11000;
    pub(super) const INTERRUPTED_AT_SHUTDOWN: i32 = 11600;
    pub(super) const INTERRUPTED_DUE_TO_REPL_STATE_CHANGE: i32 = 11602;
    pub(super) const NOT_PRIMARY_NO_SECONDARY_OK: i32 = 13435;
    pub(super) const NOT_PRIMARY_OR_SECONDARY: i32 = 13436;
}

/// The server's error code, wherever the driver put it.
fn server_code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        DriverKind::Command(command) => Some(command.code),
        DriverKind::Write(WriteFailure::WriteError(write)) => Some(write.code),
        DriverKind::Write(WriteFailure::WriteConcernError(concern)) => Some(concern.code),
        _ => None,
    }
}

/// Whether the server refused a write because the `_id` is taken.
pub(crate) fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    server_code(error).is_some_and(is_duplicate_code)
}

/// Whether a server error code means the `_id` is taken.
pub(crate) fn is_duplicate_code(code: i32) -> bool {
    code == code::DUPLICATE_KEY
}

/// Whether `build` failed because an index of that name exists with other options.
pub(crate) fn is_index_conflict(error: &mongodb::error::Error) -> bool {
    matches!(server_code(error), Some(code::INDEX_OPTIONS_CONFLICT | code::INDEX_KEY_SPECS_CONFLICT))
}

/// The kind a caller can act on for a driver error: unreachable or restarting servers
/// are temporary, credentials and names are configuration, the rest is unexpected.
fn driver_kind(error: &mongodb::error::Error) -> ErrorKind {
    match error.kind.as_ref() {
        DriverKind::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
        DriverKind::Io(_)
        | DriverKind::ServerSelection { .. }
        | DriverKind::ConnectionPoolCleared { .. }
        | DriverKind::DnsResolve { .. }
        | DriverKind::Shutdown => ErrorKind::Unavailable,
        DriverKind::Authentication { .. }
        | DriverKind::InvalidArgument { .. }
        | DriverKind::InvalidTlsConfig { .. }
        | DriverKind::IncompatibleServer { .. } => ErrorKind::InvalidConfig,
        DriverKind::Command(_) | DriverKind::Write(_) => server_code(error).map_or(ErrorKind::Unexpected, code_kind),
        _ => ErrorKind::Unexpected,
    }
}

fn code_kind(code: i32) -> ErrorKind {
    match code {
        code::MAX_TIME_MS_EXPIRED | code::NETWORK_TIMEOUT | code::EXCEEDED_TIME_LIMIT | code::WRITE_CONCERN_FAILED => {
            ErrorKind::Timeout
        }
        code::HOST_UNREACHABLE
        | code::HOST_NOT_FOUND
        | code::SHUTDOWN_IN_PROGRESS
        | code::PRIMARY_STEPPED_DOWN
        | code::SOCKET_EXCEPTION
        | code::NOT_WRITABLE_PRIMARY
        | code::INTERRUPTED_AT_SHUTDOWN
        | code::INTERRUPTED_DUE_TO_REPL_STATE_CHANGE
        | code::NOT_PRIMARY_NO_SECONDARY_OK
        | code::NOT_PRIMARY_OR_SECONDARY => ErrorKind::Unavailable,
        code::UNAUTHORIZED
        | code::AUTHENTICATION_FAILED
        | code::ATLAS_ERROR
        | code::INVALID_NAMESPACE
        | code::INDEX_OPTIONS_CONFLICT
        | code::INDEX_KEY_SPECS_CONFLICT => ErrorKind::InvalidConfig,
        code::BSON_OBJECT_TOO_LARGE => ErrorKind::ValueTooLarge,
        _ => ErrorKind::Unexpected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_operation_and_key() {
        let error = Failure::NotAnInteger.into_core("incr", Some("hits"), &Secrets::default());
        assert_eq!(error.kind(), ErrorKind::NotAnInteger);
        assert_eq!(error.to_string(), "mongo incr \"hits\": value is not an integer");
        let error = Failure::Elapsed(Duration::from_secs(3)).into_core("clear", None, &Secrets::default());
        assert_eq!(error.to_string(), "mongo clear: timed out: no answer within 3s");
        assert!(error.is_temporary());
    }

    #[test]
    fn secrets_are_scrubbed_from_sources() {
        let secrets = Secrets::new(vec!["hunter2".into()]);
        let driver = mongodb::error::Error::custom("x".to_owned());
        let error = Failure::Driver(driver).into_core("build", None, &secrets);
        assert!(std::error::Error::source(&error).is_some(), "an innocent source is kept");
        assert_eq!(secrets.scrub("user:hunter2@host").as_deref(), Some("user:<redacted>@host"));
        assert_eq!(secrets.scrub("nothing here"), None);
    }

    #[test]
    fn server_codes_map_to_kinds_a_caller_can_act_on() {
        assert_eq!(code_kind(code::AUTHENTICATION_FAILED), ErrorKind::InvalidConfig);
        assert_eq!(code_kind(code::NOT_WRITABLE_PRIMARY), ErrorKind::Unavailable);
        assert_eq!(code_kind(code::MAX_TIME_MS_EXPIRED), ErrorKind::Timeout);
        assert_eq!(code_kind(code::BSON_OBJECT_TOO_LARGE), ErrorKind::ValueTooLarge);
        assert_eq!(code_kind(2), ErrorKind::Unexpected);
    }
}
