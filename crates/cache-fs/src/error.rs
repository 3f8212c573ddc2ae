//! This crate's own failures, converted into [`cache_core::Error`] at the API boundary.

use std::io;
use std::path::{Path, PathBuf};

use cache_core::{Error, ErrorKind};

pub(crate) const BACKEND: &str = "fs";

#[derive(Debug, thiserror::Error)]
pub(crate) enum FsError {
    /// A file system call failed on `path`.
    #[error("{action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The builder's settings cannot work.
    #[error("{0}")]
    Config(String),
    /// The directory given to the builder cannot hold a cache.
    #[error("{what}: {}", path.display())]
    Directory {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: Option<io::Error>,
    },
    /// The entry file would exceed `max_bytes` on its own.
    #[error(
        "a {value_len}-byte value (a {file_len}-byte entry file) does not fit max_bytes {max_bytes}: \
         a value may take half of it, an entry file with its key 90%"
    )]
    TooLarge { value_len: u64, file_len: u64, max_bytes: u64 },
    #[error("the stored value is not a decimal i64")]
    NotAnInteger,
    #[error("the result does not fit an i64")]
    Overflow,
    /// The caller's reader failed while a value was being streamed in.
    #[error("reading the value to store")]
    Source(#[source] io::Error),
    /// The blocking task doing the file work panicked or was cancelled.
    #[error("the file task did not finish")]
    Task(#[source] tokio::task::JoinError),
}

impl FsError {
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> FsError {
        FsError::Io { action, path: path.to_path_buf(), source }
    }

    /// The core error of a keyed operation: names the key (truncated), never the value.
    pub(crate) fn into_keyed(self, operation: &'static str, key: &str) -> Error {
        self.into_core(operation).with_key(key)
    }

    pub(crate) fn into_core(self, operation: &'static str) -> Error {
        let kind = match &self {
            FsError::Io { source, .. } => io_kind(source),
            FsError::Config(_) | FsError::Directory { .. } => ErrorKind::InvalidConfig,
            FsError::NotAnInteger => ErrorKind::NotAnInteger,
            FsError::TooLarge { .. } => ErrorKind::ValueTooLarge,
            FsError::Overflow => ErrorKind::IntegerOverflow,
            FsError::Source(_) | FsError::Task(_) => ErrorKind::Unexpected,
        };
        let error = Error::new(kind, BACKEND, operation).with_context(self.to_string());
        match self {
            FsError::Io { source, .. } | FsError::Source(source) | FsError::Directory { source: Some(source), .. } => {
                error.with_source(source)
            }
            FsError::Task(source) => error.with_source(source),
            FsError::Config(_)
            | FsError::Directory { source: None, .. }
            | FsError::NotAnInteger
            | FsError::TooLarge { .. }
            | FsError::Overflow => error,
        }
    }
}

/// A full disk or quota may clear up (eviction, another process deleting), so it is
/// reported as temporary; everything else the disk says is unexpected.
fn io_kind(error: &io::Error) -> ErrorKind {
    match error.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => ErrorKind::Unavailable,
        io::ErrorKind::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Unexpected,
    }
}
