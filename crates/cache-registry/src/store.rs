//! What every handle shares: the database, the files directory, and the settings for both.
//!
//! [`Item`](crate::Item), [`Writer`](crate::Writer), cleanup and
//! [`Registry`](crate::Registry) each hold an `Arc<Store>`; none of them calls another's
//! private helpers.

use std::path::{Path, PathBuf};

use crate::db::Db;
use crate::read::Limits;

pub(crate) struct Store {
    pub(crate) db: Db,
    /// The registry directory.
    pub(crate) dir: PathBuf,
    /// Its `files` directory.
    pub(crate) files: PathBuf,
    /// Whether a commit fsyncs the file and the directory.
    pub(crate) sync_files: bool,
    pub(crate) read_limits: Limits,
}

impl Store {
    /// The path of the file named `file_name`.
    pub(crate) fn file_path(&self, file_name: &str) -> PathBuf {
        self.files.join(file_name)
    }

    pub(crate) fn files_dir(&self) -> &Path {
        &self.files
    }
}

/// The partial file beside `final_name`, which a [`Writer`](crate::Writer) fills before
/// renaming it into place.
pub(crate) fn temp_name(final_name: &str) -> String {
    format!("{final_name}.part")
}
