//! Typed access and get-or-compute for every `Cache`.

use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::single_flight::{self, Role};
use crate::{Cache, Codec, Error, ErrorKind, Json, MissSettled, Refresh, Result, Ttl};

/// The error type a loader may return when it has no error type of its own:
/// `Ok::<_, BoxError>(value)` or `Err(BoxError::from("why"))`. Any error that converts
/// into it (every `std::error::Error + Send + Sync`, `anyhow::Error`, a `String`) works too.
///
/// ```
/// use cache_core::{BoxError, Bytes};
///
/// async fn load(id: u32) -> Result<Bytes, BoxError> {
///     if id == 0 {
///         return Err("id 0 does not exist".into());
///     }
///     let parsed: u64 = "42".parse()?; // any std error converts with `?`
///     Ok(Bytes::from(format!("{id}:{parsed}")))
/// }
/// # let _ = load(1);
/// ```
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Typed values and get-or-compute, for every [`Cache`] (including `dyn Cache`).
///
/// `get_as`/`set_as` use [`Json`], whose integers are decimal ASCII like `incr`'s;
/// [`with_codec`](CacheExt::with_codec) picks another [`Codec`].
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use cache_core::{BoxError, Cache, CacheExt, Result, Ttl};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// struct Weather {
///     city: String,
///     celsius: f32,
/// }
///
/// async fn fetch_weather(city: &str) -> std::result::Result<Weather, std::io::Error> {
///     Ok(Weather { city: city.to_owned(), celsius: 21.5 })
/// }
///
/// async fn weather(cache: &dyn Cache, city: &str) -> Result<Weather> {
///     // Loaded once per key however many tasks ask at the same moment; the value is
///     // encoded once, stored for 10 minutes, and decoded by every waiting caller.
///     cache.get_or_insert_as(&format!("weather:{city}"), Ttl::secs(600), || fetch_weather(city)).await
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<()> {
/// let cache: Arc<dyn Cache> = Arc::new(cache_memory::MemoryCache::new(10_000)?);
/// assert_eq!(weather(&*cache, "Paris").await?.celsius, 21.5);
/// assert!(cache.get_as::<Weather>("weather:Paris").await?.is_some());
///
/// // A loader with no error type of its own names `BoxError`; a `Duration` is a `Ttl`.
/// let motd: String =
///     cache.get_or_insert_as("motd", Duration::from_secs(60), || async { Ok::<_, BoxError>("welcome".into()) }).await?;
/// assert_eq!(motd, "welcome");
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait CacheExt: Cache {
    /// The value under `key` decoded as JSON into `T`.
    ///
    /// # Errors
    /// [`ErrorKind::Serialization`] when the stored bytes are not a `T`.
    async fn get_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.with_codec(Json).get(key).await
    }

    /// Stores `value` under `key` encoded as JSON.
    async fn set_as<T: Serialize + ?Sized + Sync>(
        &self,
        key: &str,
        value: &T,
        ttl: impl Into<Ttl> + Send,
    ) -> Result<()> {
        self.with_codec(Json).set(key, value, ttl).await
    }

    /// A typed view of this cache through `codec`.
    fn with_codec<K: Codec>(&self, codec: K) -> Typed<'_, Self, K> {
        Typed { cache: self, codec }
    }

    /// The value under `key`; on a miss, runs `loader`, stores what it returns with
    /// `ttl`, and returns it.
    ///
    /// Single flight: while one call loads a key, other calls for the same key on the
    /// same store (through any handle) wait for it instead of loading again, and share
    /// its value. A failed load is not stored; the callers waiting on it get an error
    /// of the same kind, and the next call loads again. If the loading call is
    /// cancelled, one of the waiting calls takes over.
    ///
    /// The cache never stands between a caller and a value the loader produced: a read
    /// that fails with a temporary error (the store is unavailable or timed out) counts as
    /// a miss, and when storing the loaded value fails (unavailable, timed out, too large)
    /// the value is still returned, just not cached. While a store is down each call then
    /// costs up to one read and one write timeout around the load.
    ///
    /// # Errors
    /// For the caller whose loader failed: [`ErrorKind::LoaderFailed`] naming the key,
    /// with the loader's error as `source()`. For callers that waited on a failed load:
    /// an error of the same kind that says another caller's load failed and carries its
    /// message once. A read that fails permanently (not [`Error::is_temporary`]) is
    /// returned as it is.
    async fn get_or_insert_with<F, Fut, E>(&self, key: &str, ttl: impl Into<Ttl> + Send, loader: F) -> Result<Bytes>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = std::result::Result<Bytes, E>> + Send,
        E: Into<BoxError> + Send,
    {
        let produce = || async move {
            let value = loader().await.map_err(Into::into)?;
            Ok((value.clone(), value))
        };
        load_once(self, key, ttl.into(), produce, |bytes| Ok(bytes.clone())).await
    }

    /// [`get_or_insert_with`](CacheExt::get_or_insert_with) for typed values, through
    /// JSON: the loader returns a `T`, which is encoded once, stored, and decoded by the
    /// callers that waited on it (the loading caller gets its own `T` back as it was).
    ///
    /// # Errors
    /// As [`get_or_insert_with`](CacheExt::get_or_insert_with), plus
    /// [`ErrorKind::Serialization`] when the stored value is not a `T`.
    async fn get_or_insert_as<T, F, Fut, E>(&self, key: &str, ttl: impl Into<Ttl> + Send, loader: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Send,
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = std::result::Result<T, E>> + Send,
        E: Into<BoxError> + Send,
    {
        self.with_codec(Json).get_or_insert_with(key, ttl, loader).await
    }

    /// The value under `key`, kept fresh ahead of its expiry: see [`Refresh`]. A read
    /// late in the value's lifetime starts one background reload (per key, in this
    /// process) and returns the current value at once; only a miss waits, for one
    /// single-flight load. Values are stored in a small envelope that records their age;
    /// read such keys only through this method. Called on an `Arc<dyn Cache>` or a
    /// cloneable store; the reload runs on the current tokio runtime.
    ///
    /// # Errors
    /// As [`get_or_insert_with`](CacheExt::get_or_insert_with), on a miss only; a failed
    /// background reload keeps the current value.
    async fn get_or_refresh_with<P, F, Fut, E>(&self, key: &str, policy: P, loader: F) -> Result<Bytes>
    where
        Self: Clone + Sized + 'static,
        P: Into<Refresh> + Send,
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError> + Send + 'static,
    {
        crate::refresh::get_or_refresh_with(self, key, policy.into(), loader).await
    }
}

impl<C: Cache + ?Sized> CacheExt for C {}

/// The single-flight read-through behind every get-or-compute: a hit is `decode`d; on a
/// miss one caller per key and store runs `produce` (its value and that value's bytes),
/// stores the bytes and keeps its value; the callers that waited `decode` the bytes.
async fn load_once<C, T, P, Fut, D>(cache: &C, key: &str, ttl: Ttl, produce: P, decode: D) -> Result<T>
where
    C: Cache + ?Sized,
    P: FnOnce() -> Fut,
    Fut: Future<Output = std::result::Result<(T, Bytes), LoadError>>,
    D: Fn(&Bytes) -> Result<T>,
{
    let (cached, store_down) = read_through_faults(cache, key).await?;
    if let Some(bytes) = cached {
        return decode(&bytes);
    }
    // The store counted a miss unless it failed to answer; what settles it is told to
    // the store, so a request counts once (`CacheStats`).
    let settle = |settled| {
        if !store_down {
            cache.settle_miss(settled);
        }
    };
    let leader = loop {
        match single_flight::join(cache.single_flight_scope(), key) {
            Role::Leader(leader) => break leader,
            Role::Follower(follower) => match follower.wait().await {
                Some(Ok(bytes)) => {
                    settle(MissSettled::Coalesced);
                    return decode(&bytes);
                }
                Some(Err(failure)) => return Err(copy_for_waiter(&failure, key)),
                // The leader gave up without an outcome: try to lead.
                None => continue,
            },
        }
    };
    // Another flight may have finished between our miss and our lead. Not worth asking
    // a store that has just failed to answer: that would cost a second timeout.
    if !store_down {
        let (cached, reread_failed) = read_through_faults(cache, key).await?;
        if !reread_failed {
            settle(MissSettled::Reread);
        }
        if let Some(bytes) = cached {
            leader.finish(Ok(bytes.clone()));
            return decode(&bytes);
        }
    }
    let loaded = match produce().await {
        // The value is the caller's whether or not the store keeps it: a cache that is
        // down, slow or full must not fail a load that worked.
        Ok((value, bytes)) => {
            let _stored = cache.set(key, bytes.clone(), ttl).await;
            Ok((value, bytes))
        }
        Err(LoadError::Loader(error)) => {
            Err(Error::new(ErrorKind::LoaderFailed, "loader", "get_or_insert_with").with_key(key).with_source(error))
        }
        Err(LoadError::Cache(error)) => Err(error),
    };
    match loaded {
        Ok((value, bytes)) => {
            leader.finish(Ok(bytes));
            Ok(value)
        }
        Err(error) => {
            leader.finish(Err(Arc::new(waiter_error(&error, key))));
            Err(error)
        }
    }
}

/// A read for get-or-compute: a store that is unavailable or timed out counts as a miss,
/// so the caller still gets a value (from the loader) while the cache is down. Also says
/// whether the store just failed that way.
async fn read_through_faults<C: Cache + ?Sized>(cache: &C, key: &str) -> Result<(Option<Bytes>, bool)> {
    match cache.get(key).await {
        Err(error) if error.is_temporary() => Ok((None, true)),
        other => other.map(|value| (value, false)),
    }
}

/// Why `produce` gave no value: the user's loader failed, or encoding its value did.
enum LoadError {
    Loader(BoxError),
    Cache(Error),
}

impl From<BoxError> for LoadError {
    fn from(error: BoxError) -> Self {
        LoadError::Loader(error)
    }
}

/// One waiter's own copy of the error the leader shared for its waiters (an `Error` has
/// one owner, as its `source()` is not `Clone`).
fn copy_for_waiter(shared: &Error, key: &str) -> Error {
    let copy = Error::new(shared.kind(), shared.backend(), shared.operation()).with_key(key);
    match shared.context() {
        Some(context) => copy.with_context(context.to_owned()),
        None => copy,
    }
}

/// The error a caller gets when the load it waited on failed in another caller: the same
/// kind, the key, and the other caller's message once (its root cause where the loader
/// failed), without repeating the chain.
fn waiter_error(failure: &Error, key: &str) -> Error {
    let cause = match (failure.kind(), StdError::source(failure)) {
        (ErrorKind::LoaderFailed, Some(source)) => source.to_string(),
        _ => failure.to_string(),
    };
    Error::new(failure.kind(), failure.backend(), "get_or_insert_with")
        .with_key(key)
        .with_context(format!("another caller's load of this key failed: {cause}"))
}

/// A typed view of a cache through one [`Codec`]; made by [`CacheExt::with_codec`].
///
/// ```
/// use cache_core::{CacheExt, Postcard, Ttl};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct Session {
///     user: u64,
///     roles: Vec<String>,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cache_core::Result<()> {
/// let cache = cache_memory::MemoryCache::new(1_000)?;
/// let sessions = cache.with_codec(Postcard);
/// let session = Session { user: 7, roles: vec!["admin".into()] };
/// sessions.set("session:abc", &session, Ttl::secs(1800)).await?;
/// assert_eq!(sessions.get::<Session>("session:abc").await?, Some(session));
/// assert!(!sessions.add("session:abc", &Session { user: 8, roles: vec![] }, Ttl::Never).await?);
///
/// let loaded: Session = sessions
///     .get_or_insert_with("session:new", Ttl::secs(60), || async {
///         Ok::<_, cache_core::BoxError>(Session { user: 9, roles: vec![] })
///     })
///     .await?;
/// assert_eq!(loaded.user, 9);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Typed<'a, C: ?Sized, K> {
    cache: &'a C,
    codec: K,
}

impl<C: Cache + ?Sized, K: Codec> Typed<'_, C, K> {
    /// The value under `key` decoded into `T`.
    ///
    /// # Errors
    /// [`ErrorKind::Serialization`] when the stored bytes are not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.cache.get(key).await? {
            Some(bytes) => self.decode(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Stores `value` under `key`.
    pub async fn set<T: Serialize + ?Sized>(&self, key: &str, value: &T, ttl: impl Into<Ttl>) -> Result<()> {
        let bytes = self.encode(key, value)?;
        self.cache.set(key, bytes, ttl.into()).await
    }

    /// Stores `value` under `key` only if it has no live entry; returns whether it did.
    pub async fn add<T: Serialize + ?Sized>(&self, key: &str, value: &T, ttl: impl Into<Ttl>) -> Result<bool> {
        let bytes = self.encode(key, value)?;
        self.cache.add(key, bytes, ttl.into()).await
    }

    /// Typed [`get_or_insert_with`](CacheExt::get_or_insert_with): on a miss the loader's
    /// `T` is encoded once, stored, and decoded by the callers that waited on it; the
    /// loading caller gets its own `T` back.
    ///
    /// # Errors
    /// As [`CacheExt::get_or_insert_with`], plus [`ErrorKind::Serialization`] when the
    /// stored value is not a `T` or the loaded one cannot be encoded.
    pub async fn get_or_insert_with<T, F, Fut, E>(&self, key: &str, ttl: impl Into<Ttl>, loader: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: Into<BoxError>,
    {
        let produce = || async move {
            let value = loader().await.map_err(Into::into)?;
            let bytes = self.encode(key, &value).map_err(LoadError::Cache)?;
            Ok((value, bytes))
        };
        load_once(self.cache, key, ttl.into(), produce, |bytes| self.decode(key, bytes)).await
    }

    fn encode<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<Bytes> {
        self.codec.encode(value).map_err(|source| {
            Error::new(ErrorKind::Serialization, self.codec.name(), "encode")
                .with_key(key)
                .with_context(format!("cannot encode a {}", readable_type_name::<T>()))
                .with_source(source)
        })
    }

    fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Result<T> {
        self.codec.decode(bytes).map_err(|source| {
            Error::new(ErrorKind::Serialization, self.codec.name(), "decode")
                .with_key(key)
                .with_context(format!("the stored value is not a {}", readable_type_name::<T>()))
                .with_source(source)
        })
    }
}

/// `T`'s name as a reader writes it: `Vec<Weather>`, not `alloc::vec::Vec<app::Weather>`.
fn readable_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let mut readable = String::with_capacity(full.len());
    let mut segment = String::new();
    for character in full.chars() {
        if character.is_alphanumeric() || character == '_' || character == ':' {
            segment.push(character);
        } else {
            readable.push_str(segment.rsplit("::").next().unwrap_or_default());
            segment.clear();
            readable.push(character);
        }
    }
    readable.push_str(segment.rsplit("::").next().unwrap_or_default());
    readable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_drop_their_module_paths() {
        assert_eq!(readable_type_name::<String>(), "String");
        assert_eq!(readable_type_name::<Vec<Option<std::time::Duration>>>(), "Vec<Option<Duration>>");
        assert_eq!(readable_type_name::<(i64, &str)>(), "(i64, &str)");
        assert_eq!(readable_type_name::<std::collections::HashMap<String, [u8; 4]>>(), "HashMap<String, [u8; 4]>");
    }
}
