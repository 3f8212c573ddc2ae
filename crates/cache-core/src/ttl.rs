//! How long an entry lives.

use std::time::{Duration, Instant, SystemTime};

/// How long an entry lives after it is written.
///
/// # Contract
///
/// - An entry is never returned after it expires.
/// - An entry is never gone before its time: stores with whole-second resolution round
///   up ([`Ttl::whole_seconds`]), so `After(1500ms)` lives at least 1.5 s, and
///   `After(Duration::ZERO)` lives for the shortest time the store can express, never
///   forever.
/// - A duration too large to represent as a point in time means "never expires".
///
/// ```
/// use std::time::Duration;
/// use cache_core::Ttl;
///
/// assert_eq!(Ttl::secs(90), Ttl::After(Duration::from_secs(90)));
/// assert_eq!(Ttl::from(Duration::from_millis(1500)), Ttl::millis(1500));
/// assert_eq!(Ttl::from(None::<Duration>), Ttl::Never);
///
/// // What a store does with each: `Default` takes the store's configured lifetime.
/// let store_default = Some(Duration::from_secs(300));
/// assert_eq!(Ttl::Default.lifetime(store_default), store_default);
/// assert_eq!(Ttl::Never.lifetime(store_default), None);
/// // Whole-second stores round up, never down to zero.
/// assert_eq!(Ttl::whole_seconds(Duration::from_millis(1500)), 2);
/// assert_eq!(Ttl::whole_seconds(Duration::ZERO), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Ttl {
    /// The store's configured default (no expiry when the store has none).
    #[default]
    Default,
    /// The entry never expires; it may still be evicted by a bounded store.
    Never,
    /// The entry expires this long after it is written.
    After(Duration),
}

impl Ttl {
    /// Shorthand for `Ttl::After(Duration::from_secs(secs))`.
    pub const fn secs(secs: u64) -> Ttl {
        Ttl::After(Duration::from_secs(secs))
    }

    /// Shorthand for `Ttl::After(Duration::from_millis(millis))`.
    pub const fn millis(millis: u64) -> Ttl {
        Ttl::After(Duration::from_millis(millis))
    }

    /// The lifetime this TTL asks for, with `Default` replaced by the store's
    /// `default` (`None` = never expires).
    pub fn lifetime(self, default: Option<Duration>) -> Option<Duration> {
        match self {
            Ttl::Default => default,
            Ttl::Never => None,
            Ttl::After(lifetime) => Some(lifetime),
        }
    }

    /// The instant this entry expires when written at `now`; `None` = never.
    /// A lifetime that overflows `Instant` counts as never.
    pub fn deadline(self, now: Instant, default: Option<Duration>) -> Option<Instant> {
        self.lifetime(default).and_then(|lifetime| now.checked_add(lifetime))
    }

    /// The wall-clock time this entry expires when written at `now`; `None` = never.
    /// For stores that persist an expiry across processes.
    pub fn expires_at(self, now: SystemTime, default: Option<Duration>) -> Option<SystemTime> {
        self.lifetime(default).and_then(|lifetime| now.checked_add(lifetime))
    }

    /// `lifetime` in whole seconds for stores with one-second resolution: rounded up,
    /// and at least 1, so an entry never expires early.
    pub fn whole_seconds(lifetime: Duration) -> u64 {
        let secs = lifetime.as_secs();
        let secs = if lifetime.subsec_nanos() > 0 { secs.saturating_add(1) } else { secs };
        secs.max(1)
    }
}

impl From<Duration> for Ttl {
    fn from(lifetime: Duration) -> Ttl {
        Ttl::After(lifetime)
    }
}

impl From<Option<Duration>> for Ttl {
    /// `None` means never expires.
    fn from(lifetime: Option<Duration>) -> Ttl {
        lifetime.map_or(Ttl::Never, Ttl::After)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_takes_the_store_default() {
        let default = Some(Duration::from_secs(30));
        assert_eq!(Ttl::Default.lifetime(default), default);
        assert_eq!(Ttl::Default.lifetime(None), None);
        assert_eq!(Ttl::Never.lifetime(default), None);
        assert_eq!(Ttl::secs(5).lifetime(default), Some(Duration::from_secs(5)));
    }

    #[test]
    fn whole_seconds_round_up_and_never_reach_zero() {
        assert_eq!(Ttl::whole_seconds(Duration::ZERO), 1);
        assert_eq!(Ttl::whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(Ttl::whole_seconds(Duration::from_millis(1000)), 1);
        assert_eq!(Ttl::whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(Ttl::whole_seconds(Duration::MAX), u64::MAX);
    }

    #[test]
    fn huge_lifetimes_never_expire_instead_of_panicking() {
        let now = Instant::now();
        assert_eq!(Ttl::After(Duration::MAX).deadline(now, None), None);
        assert_eq!(Ttl::After(Duration::MAX).expires_at(SystemTime::now(), None), None);
    }

    proptest! {
        #[test]
        fn whole_seconds_are_never_shorter_than_asked(nanos in any::<u64>()) {
            let lifetime = Duration::from_nanos(nanos);
            let rounded = Duration::from_secs(Ttl::whole_seconds(lifetime));
            prop_assert!(rounded >= lifetime);
            prop_assert!(rounded < lifetime + Duration::from_secs(1) || lifetime < Duration::from_secs(1));
        }

        #[test]
        fn deadline_is_now_plus_lifetime(millis in 0u64..10_000_000_000) {
            let now = Instant::now();
            let lifetime = Duration::from_millis(millis);
            prop_assert_eq!(Ttl::After(lifetime).deadline(now, None), now.checked_add(lifetime));
        }
    }
}
