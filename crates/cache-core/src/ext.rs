//! Typed access and get-or-compute for every `Cache`.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::single_flight::{self, Role};
use crate::{Cache, Codec, Error, ErrorKind, Json, Refresh, Result, Ttl};

/// Typed values and get-or-compute, for every [`Cache`] (including `dyn Cache`).
///
/// `get_as`/`set_as` use [`Json`], whose integers are decimal ASCII like `incr`'s;
/// [`with_codec`](CacheExt::with_codec) picks another [`Codec`].
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
    async fn set_as<T: Serialize + ?Sized + Sync>(&self, key: &str, value: &T, ttl: Ttl) -> Result<()> {
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
    /// # Errors
    /// [`ErrorKind::LoaderFailed`] with the loader's error as `source()`, or the store's
    /// error from reading or writing the key.
    async fn get_or_insert_with<F, Fut, E>(&self, key: &str, ttl: Ttl, loader: F) -> Result<Bytes>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = std::result::Result<Bytes, E>> + Send,
        E: Into<Box<dyn StdError + Send + Sync>> + Send,
    {
        if let Some(value) = self.get(key).await? {
            return Ok(value);
        }
        let leader = loop {
            match single_flight::join(self.single_flight_scope(), key) {
                Role::Leader(leader) => break leader,
                Role::Follower(follower) => match follower.wait().await {
                    Some(outcome) => return outcome.map_err(|shared| shared_failure(&shared)),
                    // The leader gave up without an outcome: try to lead.
                    None => continue,
                },
            }
        };
        // Another flight may have finished between our miss and our lead.
        if let Some(value) = self.get(key).await? {
            leader.finish(Ok(value.clone()));
            return Ok(value);
        }
        let loaded = match loader().await {
            Ok(value) => self.set(key, value.clone(), ttl).await.map(|()| value),
            Err(error) => Err(Error::new(ErrorKind::LoaderFailed, "loader", "get_or_insert_with").with_source(error)),
        };
        match loaded {
            Ok(value) => {
                leader.finish(Ok(value.clone()));
                Ok(value)
            }
            Err(error) => {
                let shared = Arc::new(error);
                leader.finish(Err(Arc::clone(&shared)));
                Err(Arc::try_unwrap(shared).unwrap_or_else(|shared| shared_failure(&shared)))
            }
        }
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
        E: Into<Box<dyn StdError + Send + Sync>> + Send + 'static,
    {
        crate::refresh::get_or_refresh_with(self, key, policy.into(), loader).await
    }
}

impl<C: Cache + ?Sized> CacheExt for C {}

/// The error a waiting caller gets when the load it waited on failed.
fn shared_failure(error: &Arc<Error>) -> Error {
    Error::new(error.kind(), error.backend(), "get_or_insert_with")
        .with_context("failed in a concurrent call for the same key")
        .with_source(SharedError(Arc::clone(error)))
}

/// One failure seen by many callers.
#[derive(Debug)]
struct SharedError(Arc<Error>);

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for SharedError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.0)
    }
}

/// A typed view of a cache through one [`Codec`]; made by [`CacheExt::with_codec`].
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
            Some(bytes) => self.decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Stores `value` under `key`.
    pub async fn set<T: Serialize + ?Sized>(&self, key: &str, value: &T, ttl: Ttl) -> Result<()> {
        let bytes = self.encode(value)?;
        self.cache.set(key, bytes, ttl).await
    }

    /// Stores `value` under `key` only if it has no live entry; returns whether it did.
    pub async fn add<T: Serialize + ?Sized>(&self, key: &str, value: &T, ttl: Ttl) -> Result<bool> {
        let bytes = self.encode(value)?;
        self.cache.add(key, bytes, ttl).await
    }

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Bytes> {
        self.codec
            .encode(value)
            .map_err(|source| Error::new(ErrorKind::Serialization, self.codec.name(), "encode").with_source(source))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        self.codec.decode(bytes).map_err(|source| {
            Error::new(ErrorKind::Serialization, self.codec.name(), "decode")
                .with_context(format!("the stored value is not a {}", std::any::type_name::<T>()))
                .with_source(source)
        })
    }
}
