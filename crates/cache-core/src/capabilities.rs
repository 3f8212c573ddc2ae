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
///
/// ```
/// use std::time::Duration;
/// use cache_core::Capabilities;
///
/// // How a store with memcached's limits describes itself.
/// let mut capabilities = Capabilities::default();
/// capabilities.max_value_len = Some(1024 * 1024);
/// capabilities.ttl_resolution = Duration::from_secs(1);
/// capabilities.shared_between_processes = true;
///
/// // How a caller consults it before writing a large value.
/// assert!(capabilities.fits(1000));
/// assert!(!capabilities.fits(2 * 1024 * 1024));
/// assert!(Capabilities::default().fits(usize::MAX), "no limit by default");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The largest value, in bytes, the store accepts; `None` = no limit but memory.
    pub max_value_len: Option<usize>,
    /// The smallest step in which the store measures lifetimes: `Duration::ZERO` for
    /// exact expiry, one second for stores that round TTLs up to whole seconds.
    pub ttl_resolution: Duration,
    /// Whether `clear()` is supported on this handle. With a prefix `P` it removes every
    /// entry whose full key starts with `P`; without one, everything the store holds. A
    /// store that gates the unprefixed `clear` for safety (Redis without
    /// `clear_flushes_db`) reports `false` on its unprefixed handles.
    pub clear: bool,
    /// Whether prefixes are literal: a handle with prefix `P` addresses the full key
    /// `P + key`, which every other handle (and other clients of the same server) see under
    /// that full key, and `clear` reaches every entry under `P` whoever wrote it.
    ///
    /// `false` only where a store cannot list or address keys that way (memcached clears by
    /// bumping a per-prefix generation folded into its keys): its prefixes are then separate
    /// namespaces, each handle's `clear` removes what was written under its own prefix, and
    /// the store documents its full key form.
    pub literal_prefix: bool,
    /// Whether other processes using the same location see the same entries.
    pub shared_between_processes: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            max_value_len: None,
            ttl_resolution: Duration::ZERO,
            clear: true,
            literal_prefix: true,
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
