//! What a store can and cannot do.

use std::time::Duration;

/// What a store can do, as plain fields that callers and the conformance suite consult.
///
/// Anything a store cannot do is reported here *and* answered with an
/// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) (or, for sizes,
/// [`ErrorKind::ValueTooLarge`](crate::ErrorKind::ValueTooLarge)) error: never a silent no-op.
///
/// The struct is `#[non_exhaustive]`: stores start from [`Capabilities::default()`]
/// (everything possible, no limits) and change the fields that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The largest value, in bytes, the store accepts; `None` = no limit but memory.
    pub max_value_len: Option<usize>,
    /// The smallest step in which the store measures lifetimes: `Duration::ZERO` for
    /// exact expiry, one second for stores that round TTLs up to whole seconds.
    pub ttl_resolution: Duration,
    /// Whether `clear()` is supported (with a prefix: removing only this cache's entries).
    pub clear: bool,
    /// Whether other processes using the same location see the same entries.
    pub shared_between_processes: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            max_value_len: None,
            ttl_resolution: Duration::ZERO,
            clear: true,
            shared_between_processes: false,
        }
    }
}

impl Capabilities {
    /// Whether a value of `len` bytes fits this store.
    pub fn fits(&self, len: usize) -> bool {
        self.max_value_len.is_none_or(|limit| len <= limit)
    }
}
