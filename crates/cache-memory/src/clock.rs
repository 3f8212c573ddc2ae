//! Time as nanoseconds since the store was built: an 8-byte deadline per entry instead
//! of a 16-byte `Option<Instant>`, and one comparison to test it.

use std::time::{Duration, Instant};

use cache_core::Ttl;

use crate::slab::NEVER;

#[derive(Debug)]
pub(crate) struct Clock {
    epoch: Instant,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock { epoch: Instant::now() }
    }

    fn since_epoch(&self, instant: Instant) -> u64 {
        // 584 years of nanoseconds: past that, a deadline is as good as never.
        u64::try_from(instant.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(NEVER - 1).min(NEVER - 1)
    }

    /// The deadline of an entry written now with `ttl`: [`NEVER`] when it does not expire.
    /// Reads the clock only when the entry has a lifetime.
    pub(crate) fn deadline(&self, ttl: Ttl, default: Option<Duration>) -> u64 {
        if ttl.lifetime(default).is_none() {
            return NEVER;
        }
        ttl.deadline(Instant::now(), default).map_or(NEVER, |deadline| self.since_epoch(deadline))
    }

    /// A reading of the clock taken on first use only, so operations on entries without
    /// a deadline never pay for it.
    pub(crate) fn now(&self) -> Now<'_> {
        Now { clock: self, reading: None }
    }
}

/// The current time, read lazily once per operation.
#[derive(Debug)]
pub(crate) struct Now<'a> {
    clock: &'a Clock,
    reading: Option<u64>,
}

impl Now<'_> {
    #[inline]
    pub(crate) fn get(&mut self) -> u64 {
        *self.reading.get_or_insert_with(|| self.clock.since_epoch(Instant::now()))
    }
}
