//! The lifecycle of a version.

use std::fmt;

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
/// cannot both win: the loser gets [`ErrorKind::InvalidTransition`](crate::ErrorKind::InvalidTransition).
///
/// ```
/// use cache_registry::Status;
///
/// assert_eq!(Status::Ready.allowed_from(), [Status::Write]);
/// assert_eq!(Status::Trash.to_string(), "trash");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// Created; nobody has started writing its file.
    Uninitialized,
    /// A [`Writer`](crate::Writer) is (or was, if its process died) filling the file.
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
    ///
    /// ```
    /// use cache_registry::Status;
    ///
    /// assert_eq!(Status::ALL.len(), 5);
    /// assert!(Status::ALL.contains(&Status::Trash));
    /// ```
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
    ///
    /// ```
    /// use cache_registry::Status;
    ///
    /// assert_eq!(Status::Failed.allowed_from(), [Status::Uninitialized, Status::Write]);
    /// ```
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
    ///
    /// ```
    /// use cache_registry::Status;
    ///
    /// assert_eq!(Status::Uninitialized.as_str(), "uninitialized");
    /// ```
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

#[cfg(test)]
mod tests {
    use super::*;

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
