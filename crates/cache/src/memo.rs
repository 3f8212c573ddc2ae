//! Memoized async functions over any [`Cache`]: the runtime of
//! [`#[cache::memoize]`](crate::memoize) and its plain form for closures, [`Memoized`].
//!
//! A call's key is `memo:<name>:v<version>:<arguments as JSON>`, so a new `version`
//! leaves every old result behind. Results are stored as JSON.
//!
//! - **Single flight**: concurrent calls with the same arguments on one store run the
//!   function once and share its `Ok` value (through
//!   [`get_or_insert_with`](crate::CacheExt::get_or_insert_with)).
//! - **Errors are returned, not cached**: an `Err` goes back to the caller that ran the
//!   function; a caller that waited on it runs the function itself. With
//!   `#[memoize(cache_errors = true)]` the whole `Result` is stored, errors included (`E`
//!   must then be serde too); [`Memoized`] never stores errors.
//! - **The cache is an optimization, never a new failure**: the function's signature has
//!   no room for a store error, so when the store fails (unreachable, a stored value that
//!   no longer decodes, arguments that do not serialize) the function runs uncached
//!   and its result is returned.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::{Bytes, Cache, CacheExt, Ttl};

/// The key of one call: `memo:<name>:v<version>:<arguments as JSON>`; `None` when the
/// arguments do not serialize.
pub fn key<A: Serialize + ?Sized>(name: &str, version: u32, arguments: &A) -> Option<String> {
    let arguments = serde_json::to_string(arguments).ok()?;
    Some(format!("memo:{name}:v{version}:{arguments}"))
}

/// Why the shared load ended without a value to store.
#[derive(Debug)]
struct NotStored;

impl fmt::Display for NotStored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the memoized function's result is not stored")
    }
}

impl std::error::Error for NotStored {}

/// Where the function stands within one call.
enum Run<F, R> {
    /// Not run yet: the load may run it, or, when this call did not lead the load, the
    /// call itself.
    Ready(F),
    /// Run inside the load, which this call led; its own result, not a decoded copy.
    Done(R),
    Taken,
}

/// What is stored for one call: the `Ok` value, or with `cache_errors` the error.
#[derive(serde::Serialize, serde::Deserialize)]
enum Stored<T, E> {
    Ok(T),
    Err(E),
}

/// The one implementation behind every form: `R` is what the function returns, `encode`
/// says what of it is stored (`None`: nothing), `decode` reads a stored result back.
async fn call_with<C, R, F, Fut>(
    cache: &C,
    key: Option<String>,
    ttl: Ttl,
    run: F,
    encode: fn(&R) -> Option<Vec<u8>>,
    decode: fn(&[u8]) -> Option<R>,
) -> R
where
    C: Cache + ?Sized,
    R: Send,
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = R> + Send,
{
    let Some(key) = key else { return run().await };
    let state = Mutex::new(Run::Ready(run));
    let lock = || state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let loaded = cache
        .get_or_insert_with(&key, ttl, || async {
            let Run::Ready(run) = std::mem::replace(&mut *lock(), Run::Taken) else { return Err(NotStored) };
            let result = run().await;
            let stored = encode(&result).map(Bytes::from).ok_or(NotStored);
            *lock() = Run::Done(result);
            stored
        })
        .await;
    let run = match std::mem::replace(&mut *lock(), Run::Taken) {
        Run::Done(result) => return result,
        Run::Ready(run) => run,
        // `Taken` stays only while the function runs inside the load, and the load runs
        // within this very future: once the load returned, the state is `Done`.
        Run::Taken => unreachable!("a memoized call's state is Done once its own load returned"),
    };
    if let Some(result) = loaded.ok().as_deref().and_then(decode) {
        return result;
    }
    // The store failed, the stored value no longer decodes, or the load this call waited
    // on stored nothing (an error): run the function here, uncached.
    run().await
}

/// Runs a function that cannot fail, through the cache: see the module docs.
pub async fn call_plain<C, T, F, Fut>(cache: &C, key: Option<String>, ttl: Ttl, run: F) -> T
where
    C: Cache + ?Sized,
    T: Serialize + DeserializeOwned + Send,
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = T> + Send,
{
    call_with(
        cache,
        key,
        ttl,
        run,
        |value| serde_json::to_vec(&Stored::<&T, ()>::Ok(value)).ok(),
        |bytes| match serde_json::from_slice::<Stored<T, IgnoredAny>>(bytes) {
            Ok(Stored::Ok(value)) => Some(value),
            _ => None,
        },
    )
    .await
}

/// Runs a function returning `Result<T, E>` through the cache; its errors are returned,
/// not cached: see the module docs.
pub async fn call_result<C, T, E, F, Fut>(cache: &C, key: Option<String>, ttl: Ttl, run: F) -> Result<T, E>
where
    C: Cache + ?Sized,
    T: Serialize + DeserializeOwned + Send,
    E: Send,
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = Result<T, E>> + Send,
{
    call_with(
        cache,
        key,
        ttl,
        run,
        |result| result.as_ref().ok().and_then(|value| serde_json::to_vec(&Stored::<&T, ()>::Ok(value)).ok()),
        |bytes| match serde_json::from_slice::<Stored<T, IgnoredAny>>(bytes) {
            Ok(Stored::Ok(value)) => Some(Ok(value)),
            _ => None,
        },
    )
    .await
}

/// As [`call_result`], storing errors too (`#[memoize(cache_errors = true)]`).
pub async fn call_result_caching_errors<C, T, E, F, Fut>(
    cache: &C,
    key: Option<String>,
    ttl: Ttl,
    run: F,
) -> Result<T, E>
where
    C: Cache + ?Sized,
    T: Serialize + DeserializeOwned + Send,
    E: Serialize + DeserializeOwned + Send,
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = Result<T, E>> + Send,
{
    call_with(
        cache,
        key,
        ttl,
        run,
        |result| {
            let stored = match result {
                Ok(value) => Stored::Ok(value),
                Err(error) => Stored::Err(error),
            };
            serde_json::to_vec(&stored).ok()
        },
        |bytes| match serde_json::from_slice::<Stored<T, E>>(bytes) {
            Ok(Stored::Ok(value)) => Some(Ok(value)),
            Ok(Stored::Err(error)) => Some(Err(error)),
            Err(_) => None,
        },
    )
    .await
}

/// The plain form of [`#[memoize]`](crate::memoize), for closures: a function of one
/// argument (use a tuple for more) whose results live in `cache`.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(async {
/// use std::sync::Arc;
/// use cache::{Cache, Memoized, Ttl, memory::MemoryCache};
///
/// let store: Arc<dyn Cache> = Arc::new(MemoryCache::builder().build()?);
/// let square = Memoized::new(store, "square", Ttl::secs(60), |n: u64| async move { Ok::<_, String>(n * n) });
/// assert_eq!(square.call(12).await, Ok(144));
/// assert_eq!(square.call(12).await, Ok(144)); // from the cache
/// # Ok::<(), cache::Error>(())
/// # }).expect("example");
/// ```
#[derive(Debug, Clone)]
pub struct Memoized<C, F> {
    cache: C,
    name: Arc<str>,
    version: u32,
    ttl: Ttl,
    function: F,
}

impl<C: Cache, F> Memoized<C, F> {
    /// `function` memoized in `cache` under `name` (which must differ between functions
    /// sharing a store), version 1.
    pub fn new(cache: C, name: &str, ttl: Ttl, function: F) -> Self {
        Memoized { cache, name: name.into(), version: 1, ttl, function }
    }

    /// A new version leaves every result of the old one behind.
    #[must_use]
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Calls the function through the cache; its errors are returned, not cached.
    pub async fn call<A, T, E, Fut>(&self, argument: A) -> Result<T, E>
    where
        F: Fn(A) -> Fut + Sync,
        A: Serialize + Send,
        T: Serialize + DeserializeOwned + Send,
        E: Send,
        Fut: Future<Output = Result<T, E>> + Send,
    {
        let key = key(&self.name, self.version, &argument);
        call_result(&self.cache, key, self.ttl, move || (self.function)(argument)).await
    }
}
