//! The `Cache` trait and its forwarding impls.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{CacheStats, Capabilities, MissSettled, Result, Ttl};

/// One async key-value cache contract, whatever the store.
///
/// Object safe: `Arc<dyn Cache>` is the normal way to hold one. Typed values and
/// get-or-compute live on [`CacheExt`](crate::CacheExt), implemented for every `Cache`.
///
/// # Contract
///
/// - Keys are any UTF-8 string of any length, the empty string included. A store with
///   key limits maps keys to a safe, collision-resistant form inside; a caller never
///   sees a key error.
/// - An expired entry is never returned by `get`, `get_many` or `has`.
/// - Prefixes are literal: a handle with prefix `P` addresses the full key `P + key`, so
///   an unprefixed `set("app:config")` is what the `app:` handle's `get("config")` returns.
///   `clear` with prefix `P` removes every entry whose full key starts with `P`, whoever
///   wrote it; an unprefixed `clear` removes everything the store holds. (A store that
///   cannot do this says so in [`Capabilities::literal_prefix`].)
/// - Integers written by `incr` are stored as decimal ASCII (`b"42"`), so values set as
///   decimal text can be incremented and typed reads (`get_as::<i64>`) agree.
/// - A miss is `Ok(None)`; errors carry an [`ErrorKind`](crate::ErrorKind) to act on.
///
/// `docs/semantics.md` has the full table; the `testkit` feature's conformance suite is
/// its executable form, and every store passes it against the real thing.
///
/// # Example
///
/// Code written against `dyn Cache` runs on any store; here, an in-process one:
///
/// ```
/// use std::sync::Arc;
/// use cache_core::{Bytes, Cache, ErrorKind, Ttl};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cache_core::Result<()> {
/// let cache: Arc<dyn Cache> = Arc::new(cache_memory::MemoryCache::new(1_000)?);
///
/// cache.set("user:7", Bytes::from("Ada"), Ttl::secs(60)).await?;
/// assert_eq!(cache.get("user:7").await?, Some(Bytes::from("Ada")));
/// assert!(!cache.add("user:7", Bytes::from("Grace"), Ttl::Never).await?, "add never overwrites");
///
/// assert_eq!(cache.incr("visits", 1).await?, 1);
/// assert_eq!(cache.incr("visits", 41).await?, 42);
/// assert_eq!(cache.get("visits").await?, Some(Bytes::from("42")), "integers are decimal text");
/// let error = cache.incr("user:7", 1).await.unwrap_err();
/// assert_eq!(error.kind(), ErrorKind::NotAnInteger);
///
/// cache.set_many(&[("a", Bytes::from("1")), ("b", Bytes::from("2"))], Ttl::Default).await?;
/// assert_eq!(cache.get_many(&["a", "nope", "b"]).await?, [Some(Bytes::from("1")), None, Some(Bytes::from("2"))]);
/// assert_eq!(cache.delete_many(&["a", "b", "nope"]).await?, 2);
///
/// if cache.capabilities().clear {
///     cache.clear().await?;
/// }
/// assert!(!cache.has("user:7").await?);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait Cache: Debug + Send + Sync {
    /// The value under `key`, or `None` if it is missing or expired.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;

    /// Stores `value` under `key`, replacing any existing entry and its lifetime.
    ///
    /// # Errors
    /// [`ErrorKind::ValueTooLarge`](crate::ErrorKind::ValueTooLarge) when the store cannot
    /// hold a value this large; the previous value is then left as it was.
    async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()>;

    /// Stores `value` only if `key` has no live entry; returns whether it did.
    /// Atomic on every store: of many concurrent `add`s of one key, exactly one wins.
    async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool>;

    /// Removes `key`; returns whether a live entry was removed.
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Whether `key` has a live entry; the same visibility as [`get`](Cache::get).
    async fn has(&self, key: &str) -> Result<bool> {
        Ok(self.get(key).await?.is_some())
    }

    /// Atomically adds `delta` (negative to decrement) to the integer under `key` and
    /// returns the new value. A missing key counts as 0 and is created with
    /// [`Ttl::Default`]; an existing entry keeps its lifetime.
    ///
    /// # Errors
    /// [`ErrorKind::NotAnInteger`](crate::ErrorKind::NotAnInteger) when the value is not
    /// decimal ASCII of an `i64`, and
    /// [`ErrorKind::IntegerOverflow`](crate::ErrorKind::IntegerOverflow) when the result
    /// does not fit an `i64`; in both cases the stored value is unchanged.
    async fn incr(&self, key: &str, delta: i64) -> Result<i64>;

    /// The values of `keys`, in the same order, `None` for each miss.
    /// Network stores answer in one round trip.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.get(key).await?);
        }
        Ok(values)
    }

    /// Stores every `(key, value)` pair with one lifetime. Not atomic as a whole: on an
    /// error some pairs may have been stored.
    async fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
        for (key, value) in entries {
            self.set(key, value.clone(), ttl).await?;
        }
        Ok(())
    }

    /// Removes every key in `keys`, ignoring missing ones; returns how many live entries
    /// were removed.
    async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
        let mut removed = 0;
        for key in keys {
            removed += usize::from(self.delete(key).await?);
        }
        Ok(removed)
    }

    /// Removes every entry of this cache: with a prefix, only the entries under it.
    ///
    /// # Errors
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) when
    /// [`Capabilities::clear`] is false.
    async fn clear(&self) -> Result<()>;

    /// What this store can do.
    fn capabilities(&self) -> Capabilities;

    /// Which `get_or_insert_with` loads may be shared: two handles with equal scopes see
    /// the same entries under the same key. The first part identifies the storage, the
    /// second is the namespace (prefix) within it.
    ///
    /// The default (this handle's address, no namespace) suits a store that owns its
    /// state. A store whose clones share storage returns the shared storage's address and
    /// its prefix, so every clone joins the same loads and two prefixes never do.
    /// Wrappers and forwarding impls forward it.
    fn single_flight_scope(&self) -> (usize, &str) {
        (std::ptr::from_ref(self).cast::<()>() as usize, "")
    }

    /// What this store has counted since it was built, summed over every handle to its
    /// storage; `None` (the default) for a store that keeps no counters, such as a
    /// network store whose server other clients share. See [`CacheStats`].
    fn stats(&self) -> Option<CacheStats> {
        None
    }

    /// Called by get-or-compute ([`CacheExt::get_or_insert_with`](crate::CacheExt::get_or_insert_with)
    /// and its typed forms) after a `get` on this handle reported a miss, to say how that
    /// miss was settled, so a store that counts reads counts the request once. The
    /// default does nothing; a store that implements [`stats`](Self::stats) passes it
    /// to its [`ReadCounters::settle`](crate::ReadCounters::settle). Wrappers forward it.
    fn settle_miss(&self, settled: MissSettled) {
        let _ = settled;
    }
}

/// Forwards every method, the provided ones included, so a store's own `get_many`
/// (one round trip) is used through a pointer too.
macro_rules! forward_cache {
    ($($pointer:ident),+) => {$(
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<C: Cache + ?Sized> Cache for $pointer<C> {
            async fn get(&self, key: &str) -> Result<Option<Bytes>> {
                (**self).get(key).await
            }
            async fn set(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<()> {
                (**self).set(key, value, ttl).await
            }
            async fn add(&self, key: &str, value: Bytes, ttl: Ttl) -> Result<bool> {
                (**self).add(key, value, ttl).await
            }
            async fn delete(&self, key: &str) -> Result<bool> {
                (**self).delete(key).await
            }
            async fn has(&self, key: &str) -> Result<bool> {
                (**self).has(key).await
            }
            async fn incr(&self, key: &str, delta: i64) -> Result<i64> {
                (**self).incr(key, delta).await
            }
            async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
                (**self).get_many(keys).await
            }
            async fn set_many(&self, entries: &[(&str, Bytes)], ttl: Ttl) -> Result<()> {
                (**self).set_many(entries, ttl).await
            }
            async fn delete_many(&self, keys: &[&str]) -> Result<usize> {
                (**self).delete_many(keys).await
            }
            async fn clear(&self) -> Result<()> {
                (**self).clear().await
            }
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            fn single_flight_scope(&self) -> (usize, &str) {
                (**self).single_flight_scope()
            }
            fn stats(&self) -> Option<CacheStats> {
                (**self).stats()
            }
            fn settle_miss(&self, settled: MissSettled) {
                (**self).settle_miss(settled)
            }
        }
    )+};
}

forward_cache!(Arc, Box);

/// Parses a stored value the way `incr` does, with the rule of Redis's `INCRBY`, so every
/// store agrees on which text is an integer without an extra round trip:
///
/// - ASCII decimal digits, optionally preceded by `-` (never `+`);
/// - no leading zeros (`"0"` is the only number that starts with `0`, and `"-0"` is not one);
/// - no whitespace, no other characters, and the value fits an `i64`.
///
/// ```
/// use cache_core::parse_integer;
///
/// assert_eq!(parse_integer(b"-42"), Some(-42));
/// assert_eq!(parse_integer(b"0"), Some(0));
/// for text in [&b"+5"[..], b"007", b"-0", b" 7", b"7 ", b"", b"1.0", b"9223372036854775808"] {
///     assert_eq!(parse_integer(text), None, "{text:?}");
/// }
/// ```
pub fn parse_integer(value: &[u8]) -> Option<i64> {
    let (negative, digits) = match value {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, value),
    };
    match digits {
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', rest @ ..] if rest.iter().all(u8::is_ascii_digit) => {}
        _ => return None,
    }
    // Accumulated as a negative number, whose range reaches `i64::MIN`.
    let mut negated: i64 = 0;
    for digit in digits {
        negated = negated.checked_mul(10)?.checked_sub(i64::from(digit - b'0'))?;
    }
    if negative { Some(negated) } else { negated.checked_neg() }
}

/// Encodes an integer the way `incr` stores it: its canonical decimal text, which
/// [`parse_integer`] reads back.
///
/// ```
/// assert_eq!(&cache_core::format_integer(-42)[..], b"-42");
/// ```
pub fn format_integer(value: i64) -> Bytes {
    Bytes::from(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    // `dyn Cache` futures must be `Send`, or `Arc<dyn Cache>` could not be used from
    // spawned tasks. This fails to compile, not to run, if that ever changes.
    #[allow(dead_code)]
    fn dyn_cache_futures_are_send(cache: &dyn Cache) {
        fn assert_send<T: Send>(_: &T) {}
        assert_send(&cache.get("k"));
        assert_send(&cache.set("k", Bytes::new(), Ttl::Never));
        assert_send(&cache.get_many(&["k"]));
        assert_send(&cache.clear());
    }

    #[test]
    fn integers_round_trip_as_decimal_ascii() {
        for value in [0, -1, 42, i64::MAX, i64::MIN] {
            assert_eq!(parse_integer(&format_integer(value)), Some(value));
        }
        assert_eq!(&format_integer(-17)[..], b"-17");
    }

    #[test]
    fn only_plain_decimal_is_an_integer() {
        let padded = format!("{}7", "0".repeat(26));
        for bad in [
            &b""[..],
            b"-",
            b" 1",
            b"1 ",
            b"1\n",
            b"1.0",
            b"0x10",
            b"abc",
            b"\xff",
            b"+5",
            b"007",
            b"00",
            b"-0",
            b"-01",
            b"--1",
            b"1-",
            b"99999999999999999999",
            b"9223372036854775808",
            b"-9223372036854775809",
            padded.as_bytes(),
        ] {
            assert_eq!(parse_integer(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_integer(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_integer(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_integer(b"10"), Some(10));
    }

    proptest::proptest! {
        #[test]
        fn every_i64_round_trips(value: i64) {
            proptest::prop_assert_eq!(parse_integer(&format_integer(value)), Some(value));
        }

        #[test]
        fn only_the_canonical_text_of_an_i64_parses(text in "[-+0-9 ]{0,21}") {
            let canonical = text.parse::<i64>().ok().filter(|value| value.to_string() == text);
            proptest::prop_assert_eq!(parse_integer(text.as_bytes()), canonical);
        }
    }
}
