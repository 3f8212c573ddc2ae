//! Refresh-ahead for [`CacheExt::get_or_refresh_with`](crate::CacheExt::get_or_refresh_with):
//! a value close to the end of its lifetime is reloaded in the background while callers
//! keep getting the current one (stale-while-revalidate), optionally earlier at random
//! (XFetch) so a hot key never expires under load.
//!
//! The contract gives no way to ask a store how old an entry is, so the value is stored
//! in an envelope that says when it was loaded, for how long, and how long the load took:
//! `b"rfh1"`, then three little-endian `u64`s (written at, in Unix milliseconds; lifetime
//! in milliseconds; load time in microseconds), then the value. Every process reading the
//! key agrees on its age, whatever the store.

use std::collections::HashSet;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};

use crate::{BoxError, Cache, CacheExt, Error, ErrorKind, MissSettled, Result, Ttl};

const MAGIC: &[u8; 4] = b"rfh1";
const HEADER: usize = MAGIC.len() + 3 * 8;

/// How [`get_or_refresh_with`](crate::CacheExt::get_or_refresh_with) keeps a value fresh.
///
/// A value is *fresh* for `ttl` after it was loaded. From `refresh_after` of its lifetime
/// on (default 80%), a read starts one background reload and returns the current value;
/// after `ttl`, it may still be served, with a reload under way, for `stale_for` more
/// (default: a quarter of `ttl`). Only after that is it gone, and the next read waits for
/// a load like [`get_or_insert_with`](crate::CacheExt::get_or_insert_with).
///
/// With [`xfetch`](Self::xfetch), a read may also reload earlier, with a probability that
/// grows as expiry nears and with how long loads take (Vattani et al., "Optimal
/// Probabilistic Cache Stampede Prevention", VLDB 2015): a hot key is refreshed before it
/// expires even when no read happens to land in the refresh window.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use cache_core::{BoxError, Bytes, Cache, CacheExt, Refresh};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cache_core::Result<()> {
/// let cache: Arc<dyn Cache> = Arc::new(cache_memory::MemoryCache::new(10_000)?);
/// // Fresh for a minute; reloaded in the background from 45 s on, or earlier at random
/// // (XFetch); servable for 30 s past the minute while a reload runs.
/// let policy = Refresh::new(Duration::from_secs(60)).refresh_after(0.75).stale_for(Duration::from_secs(30)).xfetch(1.0);
/// let rates = cache.get_or_refresh_with("rates", policy, || async { Ok::<_, BoxError>(Bytes::from("EUR=1.08")) }).await?;
/// assert_eq!(rates, "EUR=1.08");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[must_use]
pub struct Refresh {
    ttl: Duration,
    refresh_after: f64,
    stale_for: Option<Duration>,
    xfetch: Option<f64>,
}

impl Refresh {
    /// Values fresh for `ttl` (at least one millisecond).
    pub fn new(ttl: Duration) -> Self {
        Refresh { ttl: ttl.max(Duration::from_millis(1)), refresh_after: 0.8, stale_for: None, xfetch: None }
    }

    /// The share of `ttl` after which a read starts a background reload, from 0 (every
    /// read past loading) to 1 (only once fresh time is over). Out-of-range values are
    /// clamped.
    pub fn refresh_after(mut self, fraction: f64) -> Self {
        self.refresh_after = if fraction.is_nan() { 0.8 } else { fraction.clamp(0.0, 1.0) };
        self
    }

    /// How long past `ttl` a value may still be served while a reload runs.
    pub fn stale_for(mut self, grace: Duration) -> Self {
        self.stale_for = Some(grace);
        self
    }

    /// Probabilistic early refresh with XFetch's `beta` (1.0 is the paper's choice;
    /// larger refreshes earlier). Non-positive or NaN turns it off.
    pub fn xfetch(mut self, beta: f64) -> Self {
        self.xfetch = (beta > 0.0).then_some(beta);
        self
    }

    /// How long a value is fresh.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn grace(&self) -> Duration {
        self.stale_for.unwrap_or(self.ttl / 4)
    }

    /// Whether a read of a value `age` old, whose load took `load_time`, should start a
    /// reload.
    fn due(&self, age: Duration, lifetime: Duration, load_time: Duration) -> bool {
        if age >= lifetime.mul_f64(self.refresh_after) {
            return true;
        }
        match self.xfetch {
            // XFetch: refresh when now - delta * beta * ln(u) >= expiry, u uniform in (0, 1].
            Some(beta) => {
                let early = load_time.as_secs_f64() * beta * -random_unit().ln();
                age.as_secs_f64() + early >= lifetime.as_secs_f64()
            }
            None => false,
        }
    }
}

impl From<Duration> for Refresh {
    fn from(ttl: Duration) -> Self {
        Refresh::new(ttl)
    }
}

/// A stored value and what the envelope says about it.
struct Stored {
    value: Bytes,
    written_at: SystemTime,
    lifetime: Duration,
    load_time: Duration,
}

fn wrap(value: &Bytes, lifetime: Duration, load_time: Duration) -> Bytes {
    let now_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_millis());
    let mut out = BytesMut::with_capacity(HEADER + value.len());
    out.put_slice(MAGIC);
    out.put_u64_le(u64::try_from(now_ms).unwrap_or(u64::MAX));
    out.put_u64_le(u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX));
    out.put_u64_le(u64::try_from(load_time.as_micros()).unwrap_or(u64::MAX));
    out.put_slice(value);
    out.freeze()
}

fn unwrap(stored: &Bytes) -> Option<Stored> {
    if stored.len() < HEADER || &stored[..MAGIC.len()] != MAGIC {
        return None;
    }
    let word = |at: usize| -> Option<u64> {
        let bytes: [u8; 8] = stored.get(at..at + 8)?.try_into().ok()?;
        Some(u64::from_le_bytes(bytes))
    };
    let written_ms = word(4)?;
    Some(Stored {
        value: stored.slice(HEADER..),
        written_at: SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(written_ms))?,
        lifetime: Duration::from_millis(word(12)?),
        load_time: Duration::from_micros(word(20)?),
    })
}

/// One uniform number in (0, 1], from a per-thread xorshift seeded at random.
fn random_unit() -> f64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(std::thread::current().id()) | 1);
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    })
}

/// (storage, namespace, key) of every background reload under way in this process.
type RefreshKey = (usize, Box<str>, Box<str>);
static REFRESHING: LazyLock<Mutex<HashSet<RefreshKey>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// Marks a background reload as running until dropped.
struct Refreshing(RefreshKey);

impl Refreshing {
    fn start(key: RefreshKey) -> Option<Refreshing> {
        let mut running = REFRESHING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Built only when inserted: a guard dropped here would take this lock again.
        if running.insert(key.clone()) { Some(Refreshing(key)) } else { None }
    }
}

impl Drop for Refreshing {
    fn drop(&mut self) {
        REFRESHING.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.0);
    }
}

fn loader_failed<E: Into<BoxError>>(key: &str, error: E) -> Error {
    Error::new(ErrorKind::LoaderFailed, "loader", "get_or_refresh_with").with_key(key).with_source(error.into())
}

/// Runs the loader, timing it, and stores the result for `policy`.
async fn load_and_store<C, F, Fut, E>(cache: &C, key: &str, policy: Refresh, loader: &F) -> Result<Bytes>
where
    C: Cache + ?Sized,
    F: Fn() -> Fut,
    Fut: Future<Output = std::result::Result<Bytes, E>>,
    E: Into<BoxError>,
{
    let started = Instant::now();
    let value = loader().await.map_err(|error| loader_failed(key, error))?;
    let wrapped = wrap(&value, policy.ttl, started.elapsed());
    cache.set(key, wrapped, Ttl::After(policy.ttl.saturating_add(policy.grace()))).await?;
    Ok(value)
}

/// The body of [`CacheExt::get_or_refresh_with`](crate::CacheExt::get_or_refresh_with).
pub(crate) async fn get_or_refresh_with<C, F, Fut, E>(cache: &C, key: &str, policy: Refresh, loader: F) -> Result<Bytes>
where
    C: Cache + Clone + 'static,
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<Bytes, E>> + Send + 'static,
    E: Into<BoxError> + Send + 'static,
{
    let found = cache.get(key).await?;
    if let Some(stored) = found.as_ref().and_then(unwrap) {
        let age = SystemTime::now().duration_since(stored.written_at).unwrap_or(Duration::ZERO);
        if policy.due(age, stored.lifetime, stored.load_time) {
            refresh_in_background(cache, key, policy, loader);
        }
        return Ok(stored.value);
    }
    if found.is_none() {
        // `get_or_insert_with` reads the key again and counts that read: this request's
        // miss is the one it settles.
        cache.settle_miss(MissSettled::Reread);
    }
    // A miss: load once for every concurrent caller, through the single flight of
    // `get_or_insert_with`, which stores and shares the envelope.
    let loader = Arc::new(loader);
    let stored = {
        let loader = Arc::clone(&loader);
        cache
            .get_or_insert_with(key, Ttl::After(policy.ttl.saturating_add(policy.grace())), move || async move {
                let started = Instant::now();
                let value = loader().await?;
                Ok::<_, E>(wrap(&value, policy.ttl, started.elapsed()))
            })
            .await
            .map_err(|error| rename(error, key))?
    };
    match unwrap(&stored) {
        Some(stored) => Ok(stored.value),
        // The key held a value written some other way: replace it with a loaded one.
        None => load_and_store(cache, key, policy, &*loader).await,
    }
}

/// Errors of the shared load name this operation, not `get_or_insert_with`.
fn rename(error: Error, key: &str) -> Error {
    if error.operation() == "get_or_insert_with" {
        let kind = error.kind();
        Error::new(kind, error.backend(), "get_or_refresh_with").with_key(key).with_source(error)
    } else {
        error
    }
}

/// Starts one reload of `key` unless one is under way in this process. Its failure is
/// not any reader's: the current value is served until it is gone, and the next read
/// in the window tries again.
fn refresh_in_background<C, F, Fut, E>(cache: &C, key: &str, policy: Refresh, loader: F)
where
    C: Cache + Clone + 'static,
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<Bytes, E>> + Send + 'static,
    E: Into<BoxError> + Send + 'static,
{
    let (storage, namespace) = cache.single_flight_scope();
    let Some(running) = Refreshing::start((storage, namespace.into(), key.into())) else { return };
    let (cache, key) = (cache.clone(), key.to_owned());
    let reload = async move {
        let _running = running;
        let _ = load_and_store(&cache, &key, policy, &loader).await;
    };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(reload);
        }
        // No runtime to run it on: nothing reloads in the background; the value is
        // served until it is gone, then loaded by the reader that misses.
        Err(_) => drop(reload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_foreign_values_are_not_envelopes() {
        let value = Bytes::from_static(b"payload");
        let wrapped = wrap(&value, Duration::from_secs(60), Duration::from_micros(1500));
        let stored = unwrap(&wrapped).expect("an envelope");
        assert_eq!(stored.value, value);
        assert_eq!(stored.lifetime, Duration::from_secs(60));
        assert_eq!(stored.load_time, Duration::from_micros(1500));
        assert!(
            SystemTime::now().duration_since(stored.written_at).expect("written in the past") < Duration::from_secs(5)
        );
        for foreign in [&b""[..], b"payload", b"rfh1short", b"rfh0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"] {
            assert!(unwrap(&Bytes::copy_from_slice(foreign)).is_none(), "{foreign:?}");
        }
    }

    #[test]
    fn due_after_the_refresh_point_and_never_before_without_xfetch() {
        let policy = Refresh::new(Duration::from_secs(10)).refresh_after(0.5);
        let lifetime = Duration::from_secs(10);
        assert!(!policy.due(Duration::from_secs(4), lifetime, Duration::from_secs(1)));
        assert!(policy.due(Duration::from_secs(5), lifetime, Duration::from_secs(1)));
        assert!(policy.due(Duration::from_secs(11), lifetime, Duration::from_secs(1)));
    }

    #[test]
    fn xfetch_refreshes_earlier_the_longer_loads_take() {
        let lifetime = Duration::from_secs(10);
        let policy = Refresh::new(lifetime).refresh_after(1.0).xfetch(1.0);
        let early = |load_time: Duration| {
            (0..10_000).filter(|_| policy.due(Duration::from_secs(8), lifetime, load_time)).count()
        };
        // 2 s before expiry: -ln(u) * load >= 2 s has probability exp(-2 s / load).
        let (instant, quick, slow) =
            (early(Duration::ZERO), early(Duration::from_millis(500)), early(Duration::from_secs(4)));
        assert_eq!(instant, 0, "a load that takes no time is never refreshed early");
        assert!((100..400).contains(&quick), "exp(-4) of 10 000 is about 183: {quick}");
        assert!((5_500..6_600).contains(&slow), "exp(-0.5) of 10 000 is about 6 065: {slow}");
    }

    #[test]
    fn random_units_are_in_range() {
        for _ in 0..100_000 {
            let unit = random_unit();
            assert!(unit > 0.0 && unit <= 1.0, "{unit}");
        }
    }
}
