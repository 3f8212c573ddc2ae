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

    pub(crate) fn into_core(self, operation: &'static str) -> Error {
        let kind = match &self {
            FsError::Io { source, .. } => io_kind(source),
            FsError::Config(_) | FsError::Directory { .. } => ErrorKind::InvalidConfig,
            FsError::NotAnInteger => ErrorKind::NotAnInteger,
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
