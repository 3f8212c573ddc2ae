//! The conformance suite: the contract of [`Cache`] as executable checks.
//!
//! One public async function per behaviour; each panics with a message naming what
//! broke. A store's `tests/conformance.rs` implements [`Harness`] and calls
//! [`conformance_tests!`](crate::conformance_tests), which generates one test per
//! behaviour and variant:
//!
//! - `prefixed`: the concrete store with a fresh random prefix;
//! - `unprefixed`: the concrete store with no prefix, on its own isolated store;
//! - `boxed`: the store behind `Box<dyn Cache>` (and `Arc`), with a random prefix.
//!
//! ```text
//! struct MemoryHarness;
//!
//! impl cache_core::testkit::Harness for MemoryHarness { /* ... */ }
//!
//! cache_core::conformance_tests!(MemoryHarness);
//! // A store that needs a server:
//! cache_core::conformance_tests!(RedisHarness, #[ignore = "needs redis: cargo xtask test"]);
//! ```
//!
//! Nothing here skips: a behaviour a store cannot honour must be declared in
//! [`Capabilities`](crate::Capabilities), and the suite then checks that the store
//! answers with the matching error instead.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::Barrier;

use crate::{Cache, CacheExt, Error, ErrorKind, Postcard, Result, Ttl};

pub mod fault;

/// How the suite gets caches from a store.
///
/// ```
/// use cache_core::testkit::{self, Harness};
/// use cache_memory::MemoryCache;
///
/// struct MemoryHarness {
///     store: MemoryCache,
/// }
///
/// impl Harness for MemoryHarness {
///     type Cache = MemoryCache;
///
///     async fn isolated() -> Self {
///         MemoryHarness { store: MemoryCache::new(10_000).expect("a valid capacity") }
///     }
///
///     async fn open(&self, prefix: &str) -> MemoryCache {
///         self.store.with_prefix(prefix)
///     }
/// }
///
/// // `cache_core::conformance_tests!(MemoryHarness);` in `tests/conformance.rs` makes
/// // every behaviour a test; one behaviour can also be run by hand:
/// testkit::block_on(async {
///     let harness = MemoryHarness::isolated().await;
///     let cache = harness.open(&testkit::unique_prefix()).await;
///     testkit::set_get(&cache).await;
///     // Behaviours that need several handles take an opener: prefix -> cache.
///     testkit::prefixes_are_literal(|prefix: String| {
///         let store = harness.store.clone();
///         async move { store.with_prefix(prefix) }
///     })
///     .await;
/// });
/// ```
pub trait Harness: Sized + Send + Sync + 'static {
    /// The store's cache type.
    type Cache: Cache + 'static;

    /// Sets up a store no other test touches: its own directory, database, table or
    /// process-local instance. Dropping the harness may tear it down.
    fn isolated() -> impl Future<Output = Self> + Send;

    /// Opens a cache on this harness's store whose keys live under `prefix`
    /// (`""` = no prefix). Caches opened on one harness share the store, so two
    /// prefixes on one harness are two namespaces of one store.
    fn open(&self, prefix: &str) -> impl Future<Output = Self::Cache> + Send;
}

/// Runs `future` to completion on a fresh two-worker tokio runtime, for the tests
/// [`conformance_tests!`](crate::conformance_tests) generates.
///
/// # Panics
/// When the runtime cannot be built; this is test support, not library code.
///
/// ```
/// let answer = cache_core::testkit::block_on(async { 6 * 7 });
/// assert_eq!(answer, 42);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building the test runtime")
        .block_on(future)
}

/// A prefix no other test in any process uses, such as `t1f3a-18c0e2b1a9-0:`.
///
/// ```
/// let (first, second) = (cache_core::testkit::unique_prefix(), cache_core::testkit::unique_prefix());
/// assert_ne!(first, second);
/// assert!(first.ends_with(':'));
/// ```
pub fn unique_prefix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_nanos());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("t{:x}-{nanos:x}-{count}:", std::process::id())
}

/// Generates the whole suite as `#[test]`s in a module `conformance`, for a type that
/// implements [`Harness`]. Attributes after the type (such as
/// `#[ignore = "needs redis: cargo xtask test"]`) go on every generated test.
#[macro_export]
macro_rules! conformance_tests {
    ($harness:ty $(, #[$attr:meta])* $(,)?) => {
        /// The cache-core conformance suite on this store.
        mod conformance {
            #[allow(unused_imports)]
            use super::*;

            type Subject = $harness;

            $crate::__conformance_each! { [$(#[$attr])*]
                set_get,
                get_missing_is_none,
                set_many_get_many,
                delete_reports_removal,
                delete_many_ignores_missing,
                add_only_when_absent,
                has_matches_get,
                incr_counts_from_zero,
                incr_after_set,
                incr_rejects_non_integers,
                incr_overflow_is_an_error,
                typed_values_round_trip,
                ttl_expires_entries,
                ttl_rounds_up,
                add_is_atomic_under_race,
                incr_is_atomic_under_race,
                binary_values,
                large_value,
                hostile_keys,
                clear_removes_every_entry,
                get_or_insert_loads_once,
                get_or_insert_shares_failures_and_survives_cancellation,
                get_or_insert_as_is_typed,
                long_ttls_are_kept,
                get_many_answers_in_order,
                stats_count_each_request_once,
            }

            $crate::__conformance_store_each! { [$(#[$attr])*]
                clear_respects_prefix,
                prefixes_are_literal,
                handles_share_the_store,
            }
        }
    };
}

/// One module of three tests (`prefixed`, `unprefixed`, `boxed`) per behaviour.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_each {
    ([$($attr:tt)*]) => {};
    ([$($attr:tt)*] $behaviour:ident $(, $rest:ident)* $(,)?) => {
        mod $behaviour {
            use super::Subject;
            use $crate::testkit::Harness as _;

            #[test]
            $($attr)*
            fn prefixed() {
                $crate::testkit::block_on(async {
                    let harness = Subject::isolated().await;
                    let cache = ::std::sync::Arc::new(harness.open(&$crate::testkit::unique_prefix()).await);
                    $crate::testkit::$behaviour(&cache).await;
                });
            }

            #[test]
            $($attr)*
            fn unprefixed() {
                $crate::testkit::block_on(async {
                    let harness = Subject::isolated().await;
                    let cache = ::std::sync::Arc::new(harness.open("").await);
                    $crate::testkit::$behaviour(&cache).await;
                });
            }

            #[test]
            $($attr)*
            fn boxed() {
                $crate::testkit::block_on(async {
                    let harness = Subject::isolated().await;
                    let cache: Box<dyn $crate::Cache> = Box::new(harness.open(&$crate::testkit::unique_prefix()).await);
                    let cache = ::std::sync::Arc::new(cache);
                    $crate::testkit::$behaviour(&cache).await;
                });
            }
        }
        $crate::__conformance_each! { [$($attr)*] $($rest),* }
    };
}

/// One module of two tests (`concrete`, `boxed`) per behaviour that opens several
/// handles on one store through an opener (`prefix -> cache`).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_store_each {
    ([$($attr:tt)*]) => {};
    ([$($attr:tt)*] $behaviour:ident $(, $rest:ident)* $(,)?) => {
        mod $behaviour {
            use super::Subject;
            use $crate::testkit::Harness as _;

            #[test]
            $($attr)*
            fn concrete() {
                $crate::testkit::block_on(async {
                    let harness = Subject::isolated().await;
                    let open = |prefix: String| {
                        let harness = &harness;
                        async move { harness.open(&prefix).await }
                    };
                    $crate::testkit::$behaviour(open).await;
                });
            }

            #[test]
            $($attr)*
            fn boxed() {
                $crate::testkit::block_on(async {
                    let harness = Subject::isolated().await;
                    let open = |prefix: String| {
                        let harness = &harness;
                        async move {
                            let cache: Box<dyn $crate::Cache> = Box::new(harness.open(&prefix).await);
                            cache
                        }
                    };
                    $crate::testkit::$behaviour(open).await;
                });
            }
        }
        $crate::__conformance_store_each! { [$($attr)*] $($rest),* }
    };
}

fn bytes(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

#[track_caller]
fn expect_kind<T: std::fmt::Debug>(result: Result<T>, kind: ErrorKind, what: &str) -> Error {
    match result {
        Err(error) if error.kind() == kind => error,
        other => panic!("{what}: expected a {kind:?} error, got {other:?}"),
    }
}

/// `set` then `get` returns the value; a second `set` replaces it.
pub async fn set_get<C: Cache + ?Sized>(cache: &C) {
    cache.set("greeting", bytes("hello"), Ttl::Never).await.expect("set");
    assert_eq!(cache.get("greeting").await.expect("get"), Some(bytes("hello")));
    cache.set("greeting", bytes("bonjour"), Ttl::Never).await.expect("set again");
    assert_eq!(cache.get("greeting").await.expect("get"), Some(bytes("bonjour")), "set must overwrite");
}

/// A key never written is a miss, `Ok(None)`, not an error.
pub async fn get_missing_is_none<C: Cache + ?Sized>(cache: &C) {
    assert_eq!(cache.get("never-written").await.expect("get"), None);
    assert!(!cache.has("never-written").await.expect("has"));
}

/// `set_many` stores every pair; `get_many` answers in the order asked, with `None`
/// for misses and repeats answered each time.
pub async fn set_many_get_many<C: Cache + ?Sized>(cache: &C) {
    let entries = [("one", bytes("1")), ("two", bytes("2")), ("three", bytes("3"))];
    cache.set_many(&entries, Ttl::Never).await.expect("set_many");
    let got = cache.get_many(&["three", "missing", "one", "two", "one"]).await.expect("get_many");
    assert_eq!(got, vec![Some(bytes("3")), None, Some(bytes("1")), Some(bytes("2")), Some(bytes("1"))]);
    assert_eq!(cache.get_many(&[]).await.expect("get_many of nothing"), Vec::<Option<Bytes>>::new());
    cache.set_many(&[("one", bytes("uno"))], Ttl::Never).await.expect("set_many overwrite");
    assert_eq!(cache.get("one").await.expect("get"), Some(bytes("uno")), "set_many must overwrite");
    cache.set_many(&[], Ttl::Never).await.expect("set_many of nothing");
}

/// `delete` says whether it removed a live entry.
pub async fn delete_reports_removal<C: Cache + ?Sized>(cache: &C) {
    cache.set("doomed", bytes("x"), Ttl::Never).await.expect("set");
    assert!(cache.delete("doomed").await.expect("delete"), "deleting a present key returns true");
    assert_eq!(cache.get("doomed").await.expect("get"), None);
    assert!(!cache.delete("doomed").await.expect("delete again"), "deleting a missing key returns false");
}

/// `delete_many` removes what exists, ignores what does not, and counts removals.
pub async fn delete_many_ignores_missing<C: Cache + ?Sized>(cache: &C) {
    cache.set_many(&[("a", bytes("1")), ("b", bytes("2")), ("keep", bytes("3"))], Ttl::Never).await.expect("set_many");
    let removed = cache.delete_many(&["a", "not-there", "b"]).await.expect("delete_many");
    assert_eq!(removed, 2);
    assert_eq!(cache.get_many(&["a", "b", "keep"]).await.expect("get_many"), vec![None, None, Some(bytes("3"))]);
    assert_eq!(cache.delete_many(&[]).await.expect("delete_many of nothing"), 0);
}

/// `add` writes only when the key is absent and says whether it did.
pub async fn add_only_when_absent<C: Cache + ?Sized>(cache: &C) {
    assert!(cache.add("slot", bytes("first"), Ttl::Never).await.expect("add"));
    assert!(!cache.add("slot", bytes("second"), Ttl::Never).await.expect("add again"));
    assert_eq!(cache.get("slot").await.expect("get"), Some(bytes("first")), "a losing add must not write");
    cache.delete("slot").await.expect("delete");
    assert!(cache.add("slot", bytes("third"), Ttl::Never).await.expect("add after delete"));
    assert_eq!(cache.get("slot").await.expect("get"), Some(bytes("third")));
}

/// `has` sees exactly what `get` sees.
pub async fn has_matches_get<C: Cache + ?Sized>(cache: &C) {
    assert!(!cache.has("present").await.expect("has"));
    cache.set("present", Bytes::new(), Ttl::Never).await.expect("set");
    assert!(cache.has("present").await.expect("has"), "an empty value is still present");
    cache.delete("present").await.expect("delete");
    assert!(!cache.has("present").await.expect("has"));
}

/// `incr` on a missing key starts from 0; negative deltas decrement; the result is
/// stored as decimal ASCII and reads back through the typed API.
pub async fn incr_counts_from_zero<C: Cache + ?Sized>(cache: &C) {
    assert_eq!(cache.incr("counter", 5).await.expect("incr"), 5);
    assert_eq!(cache.incr("counter", -7).await.expect("decr"), -2);
    assert_eq!(cache.incr("counter", 0).await.expect("incr by 0"), -2);
    assert_eq!(cache.get("counter").await.expect("get"), Some(bytes("-2")), "integers are decimal ASCII");
    assert_eq!(cache.get_as::<i64>("counter").await.expect("get_as"), Some(-2));
    assert_eq!(cache.incr("other-counter", -3).await.expect("decr from nothing"), -3);
}

/// `incr` continues from a value written by `set` or `set_as`, up to 5e12 and beyond.
pub async fn incr_after_set<C: Cache + ?Sized>(cache: &C) {
    cache.set("n", bytes("10"), Ttl::Never).await.expect("set");
    assert_eq!(cache.incr("n", 5).await.expect("incr"), 15);
    let big: i64 = 5_000_000_000_000;
    cache.set_as("big", &big, Ttl::Never).await.expect("set_as");
    assert_eq!(cache.incr("big", 1).await.expect("incr big"), big + 1);
    assert_eq!(cache.get_as::<i64>("big").await.expect("get_as"), Some(big + 1));
    cache.set_as("negative", &-big, Ttl::Never).await.expect("set_as negative");
    assert_eq!(cache.incr("negative", -1).await.expect("decr negative"), -big - 1);
}

/// `incr` on a value that is not the canonical decimal text of an `i64` (see
/// [`parse_integer`](crate::parse_integer): no `+`, no leading zeros, no whitespace) fails
/// with `NotAnInteger` and leaves the value as it was.
pub async fn incr_rejects_non_integers<C: Cache + ?Sized>(cache: &C) {
    let not_integers: [&[u8]; 11] = [
        b"abc",
        b"1.5",
        b"",
        b" 7",
        b"7\n",
        b"\xff\xfe",
        b"99999999999999999999",
        b"+5",
        b"007",
        b"-0",
        b"000000000000000000000000007",
    ];
    for (index, value) in not_integers.into_iter().enumerate() {
        let key = format!("not-a-number-{index}");
        cache.set(&key, Bytes::copy_from_slice(value), Ttl::Never).await.expect("set");
        expect_kind(cache.incr(&key, 1).await, ErrorKind::NotAnInteger, &format!("incr of {value:?}"));
        assert_eq!(
            cache.get(&key).await.expect("get").as_deref(),
            Some(value),
            "a failed incr must not touch the value"
        );
    }
}

/// `incr` past `i64::MAX` or below `i64::MIN` is an `IntegerOverflow` error, never a
/// wrap, and leaves the value as it was.
pub async fn incr_overflow_is_an_error<C: Cache + ?Sized>(cache: &C) {
    cache.set("max", bytes(&i64::MAX.to_string()), Ttl::Never).await.expect("set max");
    expect_kind(cache.incr("max", 1).await, ErrorKind::IntegerOverflow, "incr past i64::MAX");
    assert_eq!(cache.get("max").await.expect("get"), Some(bytes(&i64::MAX.to_string())));
    cache.set("min", bytes(&i64::MIN.to_string()), Ttl::Never).await.expect("set min");
    expect_kind(cache.incr("min", -1).await, ErrorKind::IntegerOverflow, "decr past i64::MIN");
    assert_eq!(cache.get("min").await.expect("get"), Some(bytes(&i64::MIN.to_string())));
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: u64,
    name: String,
    admin: bool,
    scores: Vec<i32>,
    nickname: Option<String>,
}

/// Booleans, integers up to 5e12, strings and structs round-trip through the typed API
/// (JSON and the compact binary codec); a value of the wrong type is a
/// `Serialization` error, not garbage.
pub async fn typed_values_round_trip<C: Cache + ?Sized>(cache: &C) {
    cache.set_as("yes", &true, Ttl::Never).await.expect("set_as bool");
    cache.set_as("no", &false, Ttl::Never).await.expect("set_as bool");
    assert_eq!(cache.get_as::<bool>("yes").await.expect("get_as"), Some(true));
    assert_eq!(cache.get_as::<bool>("no").await.expect("get_as"), Some(false));
    for number in [0_i64, 1, -1, 5_000_000_000_000, -5_000_000_000_000, i64::MAX, i64::MIN] {
        cache.set_as("number", &number, Ttl::Never).await.expect("set_as i64");
        assert_eq!(cache.get_as::<i64>("number").await.expect("get_as"), Some(number));
    }
    cache.set_as("text", "naïve café", Ttl::Never).await.expect("set_as str");
    assert_eq!(cache.get_as::<String>("text").await.expect("get_as").as_deref(), Some("naïve café"));
    let profile = Profile { id: 7, name: "Ada".into(), admin: true, scores: vec![3, -1, 4], nickname: None };
    cache.set_as("profile", &profile, Ttl::Never).await.expect("set_as struct");
    assert_eq!(cache.get_as::<Profile>("profile").await.expect("get_as"), Some(profile.clone()));
    let compact = cache.with_codec(Postcard);
    compact.set("profile-compact", &profile, Ttl::Never).await.expect("postcard set");
    assert_eq!(compact.get::<Profile>("profile-compact").await.expect("postcard get"), Some(profile));
    assert_eq!(cache.get_as::<bool>("missing-typed").await.expect("get_as missing"), None);
    expect_kind(cache.get_as::<Profile>("text").await, ErrorKind::Serialization, "reading a string as a struct");
}

/// An entry with `After(1 s)` is gone once its time and the store's resolution have
/// passed: for `get`, `get_many` and `has` alike. Meanwhile `Ttl::Never` stays, `set`
/// replaces a lifetime, `incr` keeps one, and `add` sees an expired key as absent.
pub async fn ttl_expires_entries<C: Cache + ?Sized>(cache: &C) {
    let lifetime = Duration::from_secs(1);
    let written = Instant::now();
    cache.set("short", bytes("brief"), Ttl::After(lifetime)).await.expect("set short");
    cache.set("forever", bytes("lasting"), Ttl::Never).await.expect("set forever");
    cache.set("renewed", bytes("old"), Ttl::After(lifetime)).await.expect("set renewed");
    cache.set("renewed", bytes("new"), Ttl::Never).await.expect("renew");
    cache.set("counter", bytes("1"), Ttl::After(lifetime)).await.expect("set counter");
    assert_eq!(cache.incr("counter", 1).await.expect("incr"), 2);
    assert_eq!(cache.get("short").await.expect("get"), Some(bytes("brief")), "gone before its time");

    let resolution = cache.capabilities().ttl_resolution;
    tokio::time::sleep_until((written + lifetime + resolution + Duration::from_millis(300)).into()).await;

    assert_eq!(cache.get("short").await.expect("get"), None, "an expired entry must not be returned");
    assert!(!cache.has("short").await.expect("has"), "has must not see an expired entry");
    assert_eq!(cache.get_many(&["short", "forever"]).await.expect("get_many"), vec![None, Some(bytes("lasting"))]);
    assert_eq!(cache.get("renewed").await.expect("get"), Some(bytes("new")), "set must replace the old lifetime");
    assert_eq!(cache.get("counter").await.expect("get"), None, "incr must keep the entry's lifetime");
    assert!(cache.add("short", bytes("again"), Ttl::Never).await.expect("add"), "an expired key counts as absent");
    assert_eq!(cache.get("short").await.expect("get"), Some(bytes("again")));
}

/// `After(1500 ms)` is still there at 1.25 s, even on a store that counts whole seconds
/// (it must round up, never down), and gone after its time plus the resolution.
pub async fn ttl_rounds_up<C: Cache + ?Sized>(cache: &C) {
    let lifetime = Duration::from_millis(1500);
    let before = Instant::now();
    cache.set("rounded", bytes("x"), Ttl::After(lifetime)).await.expect("set");
    let written = Instant::now();
    tokio::time::sleep_until((before + Duration::from_millis(1250)).into()).await;
    assert_eq!(cache.get("rounded").await.expect("get"), Some(bytes("x")), "expired before 1.5 s");
    let resolution = cache.capabilities().ttl_resolution;
    tokio::time::sleep_until((written + lifetime + resolution + Duration::from_millis(300)).into()).await;
    assert_eq!(cache.get("rounded").await.expect("get"), None, "still there after 1.5 s plus the resolution");
}

const RACERS: usize = 50;

/// 50 tasks `add` one key at once: exactly one wins, and its value is the one stored.
pub async fn add_is_atomic_under_race<C: Cache + ?Sized + 'static>(cache: &Arc<C>) {
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut racers = tokio::task::JoinSet::new();
    for racer in 0..RACERS {
        let (cache, barrier) = (Arc::clone(cache), Arc::clone(&barrier));
        racers.spawn(async move {
            barrier.wait().await;
            let won = cache.add("contested", bytes(&racer.to_string()), Ttl::Never).await.expect("add");
            (racer, won)
        });
    }
    let winners: Vec<usize> =
        racers.join_all().await.into_iter().filter_map(|(racer, won)| won.then_some(racer)).collect();
    assert_eq!(winners.len(), 1, "exactly one add must win, winners: {winners:?}");
    assert_eq!(cache.get("contested").await.expect("get"), Some(bytes(&winners[0].to_string())));
}

/// 50 tasks × 100 `incr`s end at exactly 5000, and every task sees distinct values.
pub async fn incr_is_atomic_under_race<C: Cache + ?Sized + 'static>(cache: &Arc<C>) {
    const STEPS: usize = 100;
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..RACERS {
        let (cache, barrier) = (Arc::clone(cache), Arc::clone(&barrier));
        racers.spawn(async move {
            barrier.wait().await;
            let mut seen = Vec::with_capacity(STEPS);
            for _ in 0..STEPS {
                seen.push(cache.incr("hits", 1).await.expect("incr"));
            }
            seen
        });
    }
    let seen: BTreeSet<i64> = racers.join_all().await.into_iter().flatten().collect();
    let total = (RACERS * STEPS) as i64;
    assert_eq!(seen, (1..=total).collect::<BTreeSet<_>>(), "every incr must return a distinct step");
    assert_eq!(cache.get_as::<i64>("hits").await.expect("get_as"), Some(total));
}

/// The empty value and every byte value round-trip exactly.
pub async fn binary_values<C: Cache + ?Sized>(cache: &C) {
    let every_byte: Bytes = (0..=255u8).collect::<Vec<_>>().into();
    cache.set("empty", Bytes::new(), Ttl::Never).await.expect("set empty");
    cache.set("bytes", every_byte.clone(), Ttl::Never).await.expect("set bytes");
    cache.set("nul", Bytes::from_static(b"\0\0\0"), Ttl::Never).await.expect("set NULs");
    assert_eq!(cache.get("empty").await.expect("get"), Some(Bytes::new()), "an empty value is a value, not a miss");
    assert_eq!(cache.get("bytes").await.expect("get"), Some(every_byte));
    assert_eq!(cache.get("nul").await.expect("get"), Some(Bytes::from_static(b"\0\0\0")));
}

/// A 1 MiB value round-trips, or, where `capabilities()` says the store cannot hold it,
/// is refused with `ValueTooLarge` and the old value stays. A store that declares a
/// limit refuses a value one byte over it.
pub async fn large_value<C: Cache + ?Sized>(cache: &C) {
    const MIB: usize = 1 << 20;
    let large: Bytes = (0..MIB).map(|i| (i % 251) as u8).collect::<Vec<_>>().into();
    cache.set("large", bytes("small"), Ttl::Never).await.expect("set small");
    let capabilities = cache.capabilities();
    if capabilities.fits(MIB) {
        cache.set("large", large.clone(), Ttl::Never).await.expect("set 1 MiB");
        assert!(cache.get("large").await.expect("get 1 MiB") == Some(large), "the 1 MiB value came back changed");
    } else {
        expect_kind(cache.set("large", large, Ttl::Never).await, ErrorKind::ValueTooLarge, "set 1 MiB over the limit");
        assert_eq!(
            cache.get("large").await.expect("get"),
            Some(bytes("small")),
            "a refused set must keep the old value"
        );
    }
    if let Some(limit) = capabilities.max_value_len.filter(|&limit| limit < 64 * MIB) {
        let over = Bytes::from(vec![b'x'; limit + 1]);
        cache.set("over", bytes("kept"), Ttl::Never).await.expect("set small");
        expect_kind(cache.set("over", over.clone(), Ttl::Never).await, ErrorKind::ValueTooLarge, "set one byte over");
        assert_eq!(cache.get("over").await.expect("get"), Some(bytes("kept")), "a refused set must keep the old value");
        expect_kind(cache.add("over-added", over, Ttl::Never).await, ErrorKind::ValueTooLarge, "add one byte over");
        assert!(!cache.has("over-added").await.expect("has"), "a refused add must store nothing");
        let at_limit = Bytes::from(vec![b'y'; limit]);
        cache.set("at-limit", at_limit.clone(), Ttl::Never).await.expect("a value of exactly the limit fits");
        assert!(
            cache.get("at-limit").await.expect("get") == Some(at_limit),
            "the value at the limit came back changed"
        );
    }
}

/// Keys that break naive stores are ordinary keys: unicode, spaces, newlines, NUL,
/// path tricks, 1 KiB and 10 KiB long, and the empty key. Each is distinct from the
/// others, including from look-alikes a key mangler could merge.
pub async fn hostile_keys<C: Cache + ?Sized>(cache: &C) {
    let keys: Vec<String> = vec![
        String::new(),
        " ".into(),
        "a b".into(),
        "a_b".into(),
        "a\nb".into(),
        "a\r\nb".into(),
        "a\tb".into(),
        "a\0b".into(),
        "a".into(),
        "../../etc/passwd".into(),
        "..".into(),
        "/".into(),
        "\\..\\".into(),
        "%2e%2e%2f".into(),
        "ünïcødé ключ 鍵 🔑".into(),
        "k".repeat(1024),
        "k".repeat(1025),
        "x".repeat(10 * 1024),
    ];
    for (index, key) in keys.iter().enumerate() {
        cache
            .set(key, bytes(&index.to_string()), Ttl::Never)
            .await
            .unwrap_or_else(|error| panic!("set {key:?}: {error}"));
    }
    for (index, key) in keys.iter().enumerate() {
        let got = cache.get(key).await.unwrap_or_else(|error| panic!("get {key:?}: {error}"));
        assert_eq!(got, Some(bytes(&index.to_string())), "key {key:?} collided or was lost");
    }
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let all = cache.get_many(&refs).await.expect("get_many of hostile keys");
    assert!(all.iter().all(Option::is_some), "get_many lost a hostile key");
    assert_eq!(cache.incr(&keys[7], 0).await.expect("incr with NUL in key"), 7);
    assert_eq!(cache.delete_many(&refs).await.expect("delete_many"), keys.len());
}

/// `clear` removes every entry of this cache, or, where `capabilities().clear` is
/// false, fails with `Unsupported` and removes nothing.
pub async fn clear_removes_every_entry<C: Cache + ?Sized>(cache: &C) {
    cache.set_many(&[("x", bytes("1")), ("y", bytes("2"))], Ttl::Never).await.expect("set_many");
    cache.incr("z", 3).await.expect("incr");
    if cache.capabilities().clear {
        cache.clear().await.expect("clear");
        assert_eq!(cache.get_many(&["x", "y", "z"]).await.expect("get_many"), vec![None, None, None]);
        cache.set("x", bytes("after"), Ttl::Never).await.expect("set after clear");
        assert_eq!(cache.get("x").await.expect("get"), Some(bytes("after")), "the cache must work after clear");
    } else {
        expect_kind(cache.clear().await, ErrorKind::Unsupported, "clear where capabilities say it is not supported");
        assert_eq!(cache.get("x").await.expect("get"), Some(bytes("1")), "an unsupported clear must remove nothing");
    }
}

/// Two prefixes on one store, and the store without a prefix, are three namespaces: the
/// same key holds three values, and `clear` or `delete` on one leaves the others.
pub async fn clear_respects_prefix<C, F, Fut>(open: F)
where
    C: Cache,
    F: Fn(String) -> Fut,
    Fut: Future<Output = C>,
{
    let mine = &open(unique_prefix()).await;
    let sibling = &open(unique_prefix()).await;
    let unprefixed = &open(String::new()).await;
    for (cache, value) in [(mine, "mine"), (sibling, "sibling"), (unprefixed, "unprefixed")] {
        cache.set("shared-name", bytes(value), Ttl::Never).await.expect("set");
        cache.set("only-here", bytes(value), Ttl::Never).await.expect("set");
    }
    assert_eq!(mine.get("shared-name").await.expect("get"), Some(bytes("mine")));
    assert_eq!(sibling.get("shared-name").await.expect("get"), Some(bytes("sibling")));
    assert_eq!(unprefixed.get("shared-name").await.expect("get"), Some(bytes("unprefixed")));

    assert!(sibling.delete("only-here").await.expect("delete"));
    assert_eq!(mine.get("only-here").await.expect("get"), Some(bytes("mine")), "delete crossed a prefix");

    if mine.capabilities().clear {
        mine.clear().await.expect("clear");
        assert_eq!(mine.get_many(&["shared-name", "only-here"]).await.expect("get_many"), vec![None, None]);
        assert_eq!(
            sibling.get("shared-name").await.expect("get"),
            Some(bytes("sibling")),
            "clear crossed into another prefix"
        );
        assert_eq!(
            unprefixed.get("shared-name").await.expect("get"),
            Some(bytes("unprefixed")),
            "clear removed unprefixed keys"
        );
        assert_eq!(unprefixed.get("only-here").await.expect("get"), Some(bytes("unprefixed")));
    } else {
        expect_kind(mine.clear().await, ErrorKind::Unsupported, "clear where capabilities say it is not supported");
    }
}

/// A cache opened on the store for each prefix, in order.
async fn open_each<C, F, Fut>(open: &F, prefixes: &[&str]) -> Vec<C>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = C>,
{
    let mut caches = Vec::with_capacity(prefixes.len());
    for prefix in prefixes {
        caches.push(open((*prefix).to_owned()).await);
    }
    caches
}

/// The prefix rule: a handle with prefix `P` addresses the full key `P + key`, which the
/// unprefixed handle sees under that full key; `clear` on `P` removes every entry whose
/// full key starts with `P`, whoever wrote it (`clear` of `ab` removes `abc` written
/// through `a`, `clear` of `app:` leaves `apq`); an unprefixed `clear` removes everything
/// the store holds, or, where the store gates it, is `Unsupported` and removes nothing.
///
/// A store whose `capabilities().literal_prefix` is false keeps each prefix as a separate
/// namespace instead; the suite then checks that each handle reads its own writes and that
/// `clear` removes only what its own prefix holds.
pub async fn prefixes_are_literal<C, F, Fut>(open: F)
where
    C: Cache,
    F: Fn(String) -> Fut,
    Fut: Future<Output = C>,
{
    let base = unique_prefix();
    let full = |rest: &str| format!("{base}{rest}");
    let [root, app, a, ab, ap] =
        &open_each(&open, &["", &full("app:"), &full("a"), &full("ab"), &full("ap")]).await[..]
    else {
        unreachable!("five prefixes give five caches")
    };

    if !root.capabilities().literal_prefix {
        app.set("config", bytes("in app"), Ttl::Never).await.expect("set through app:");
        root.set(&full("app:config"), bytes("in root"), Ttl::Never).await.expect("set unprefixed");
        assert_eq!(app.get("config").await.expect("get"), Some(bytes("in app")), "a namespace lost its own write");
        assert_eq!(root.get(&full("app:config")).await.expect("get"), Some(bytes("in root")));
        if app.capabilities().clear {
            app.clear().await.expect("clear app:");
            assert_eq!(app.get("config").await.expect("get"), None, "clear left its own entry");
            assert_eq!(
                root.get(&full("app:config")).await.expect("get"),
                Some(bytes("in root")),
                "clear crossed into another namespace"
            );
        }
        return;
    }

    root.set(&full("app:config"), bytes("from root"), Ttl::Never).await.expect("set unprefixed");
    assert_eq!(
        app.get("config").await.expect("get through app:"),
        Some(bytes("from root")),
        "the unprefixed key `P + key` must be what the handle with prefix P reads as `key`"
    );
    app.set("mode", bytes("from app"), Ttl::Never).await.expect("set through app:");
    assert_eq!(root.get(&full("app:mode")).await.expect("get unprefixed"), Some(bytes("from app")));
    assert!(app.delete("config").await.expect("delete through app:"), "the entry written unprefixed is app:'s");
    assert_eq!(root.get(&full("app:config")).await.expect("get"), None, "a prefixed delete must remove `P + key`");
    assert_eq!(app.incr("n", 2).await.expect("incr through app:"), 2);
    assert_eq!(root.incr(&full("app:n"), 3).await.expect("incr unprefixed"), 5, "one counter, two addresses");

    a.set("bc", bytes("abc"), Ttl::Never).await.expect("set abc through a");
    a.set("x", bytes("ax"), Ttl::Never).await.expect("set ax through a");
    root.set(&full("apq"), bytes("apq"), Ttl::Never).await.expect("set apq unprefixed");
    if ab.capabilities().clear {
        ab.clear().await.expect("clear ab");
        assert_eq!(a.get("bc").await.expect("get"), None, "clear of `ab` must remove `abc` written through `a`");
        assert_eq!(a.get("x").await.expect("get"), Some(bytes("ax")), "clear of `ab` removed `ax`");
        app.clear().await.expect("clear app:");
        assert_eq!(root.get(&full("app:mode")).await.expect("get"), None, "clear of `app:` left `app:mode`");
        assert_eq!(ap.get("q").await.expect("get"), Some(bytes("apq")), "clear of `app:` must leave `apq`");
    } else {
        expect_kind(ab.clear().await, ErrorKind::Unsupported, "clear where capabilities say it is not supported");
    }

    if root.capabilities().clear {
        root.clear().await.expect("unprefixed clear");
        assert_eq!(a.get("x").await.expect("get"), None, "an unprefixed clear must remove every prefix's entries");
        assert_eq!(ap.get("q").await.expect("get"), None, "an unprefixed clear must remove every entry");
        assert_eq!(root.get(&full("apq")).await.expect("get"), None);
    } else {
        expect_kind(root.clear().await, ErrorKind::Unsupported, "a gated unprefixed clear");
        assert_eq!(a.get("x").await.expect("get"), Some(bytes("ax")), "an unsupported clear must remove nothing");
    }
}

/// Two handles opened on one store with one prefix are one cache: each sees the other's
/// writes, deletes and counters, and so does a handle opened later; the same holds for
/// unprefixed handles.
pub async fn handles_share_the_store<C, F, Fut>(open: F)
where
    C: Cache,
    F: Fn(String) -> Fut,
    Fut: Future<Output = C>,
{
    let prefix = unique_prefix();
    let first = open(prefix.clone()).await;
    let second = open(prefix.clone()).await;
    first.set("k", bytes("v"), Ttl::Never).await.expect("set through the first handle");
    assert_eq!(second.get("k").await.expect("get"), Some(bytes("v")), "a second handle must see the first's write");
    assert!(!second.add("k", bytes("other"), Ttl::Never).await.expect("add"), "add must see the other handle's key");
    second.set_many(&[("a", bytes("1")), ("b", bytes("2"))], Ttl::Never).await.expect("set_many");
    assert_eq!(first.get_many(&["a", "b"]).await.expect("get_many"), vec![Some(bytes("1")), Some(bytes("2"))]);
    assert_eq!(first.incr("n", 1).await.expect("incr"), 1);
    assert_eq!(second.incr("n", 1).await.expect("incr"), 2, "two handles must share one counter");
    assert!(second.delete("k").await.expect("delete"));
    assert!(!first.has("k").await.expect("has"), "a delete through one handle must show through the other");

    let late = open(prefix.clone()).await;
    assert_eq!(late.get("a").await.expect("get"), Some(bytes("1")), "a handle opened later must see earlier writes");

    let (root, other_root) = (open(String::new()).await, open(String::new()).await);
    let key = format!("{prefix}unprefixed");
    root.set(&key, bytes("shared"), Ttl::Never).await.expect("set unprefixed");
    assert_eq!(other_root.get(&key).await.expect("get"), Some(bytes("shared")));
}

/// Lifetimes of 31 days and 10 years are kept, not mistaken for absolute times or
/// overflowed (memcached reads more than 30 days as a Unix time).
pub async fn long_ttls_are_kept<C: Cache + ?Sized>(cache: &C) {
    const DAY: Duration = Duration::from_secs(24 * 60 * 60);
    let month = Ttl::After(31 * DAY);
    let decade = Ttl::After(3653 * DAY);
    cache.set("month", bytes("31 days"), month).await.expect("set for 31 days");
    cache.set("decade", bytes("10 years"), decade).await.expect("set for 10 years");
    assert!(cache.add("added", bytes("10 years"), decade).await.expect("add for 10 years"));
    cache.set_many(&[("many", bytes("31 days"))], month).await.expect("set_many for 31 days");
    assert_eq!(
        cache.get_many(&["month", "decade", "added", "many"]).await.expect("get_many"),
        vec![Some(bytes("31 days")), Some(bytes("10 years")), Some(bytes("10 years")), Some(bytes("31 days"))],
        "an entry with a long lifetime expired at once"
    );
    assert!(cache.has("decade").await.expect("has"));
    assert_eq!(cache.incr("month", 0).await.ok(), None, "31 days is text, not a number: incr must refuse it");
    cache.set("counter", bytes("1"), decade).await.expect("set a counter for 10 years");
    assert_eq!(cache.incr("counter", 1).await.expect("incr"), 2);
    assert_eq!(cache.get("counter").await.expect("get"), Some(bytes("2")), "incr lost a long lifetime");
}

/// `get_many` answers in the order asked: nothing for an empty list, `None` for each
/// miss (repeated misses too), a repeated key each time, and 250 keys (more than one
/// batch on stores that batch by 100) in order.
pub async fn get_many_answers_in_order<C: Cache + ?Sized>(cache: &C) {
    assert!(cache.get_many(&[]).await.expect("get_many of nothing").is_empty());
    assert_eq!(cache.get_many(&["nope", "nope"]).await.expect("get_many of misses"), vec![None, None]);

    let keys: Vec<String> = (0..250).map(|index| format!("many-{index}")).collect();
    let entries: Vec<(&str, Bytes)> = keys.iter().map(|key| (key.as_str(), bytes(key))).collect();
    cache.set_many(&entries, Ttl::Never).await.expect("set_many of 250");
    let mut asked: Vec<&str> = keys.iter().rev().map(String::as_str).collect();
    asked.insert(100, "missing-in-the-middle");
    asked.extend(["many-7", "many-7", "missing-at-the-end"]);
    let got = cache.get_many(&asked).await.expect("get_many of 254");
    assert_eq!(got.len(), asked.len(), "one answer per key asked");
    for (key, value) in asked.iter().zip(&got) {
        let expected = key.starts_with("many-").then(|| bytes(key));
        assert_eq!(value, &expected, "get_many answered {key:?} out of order");
    }
}

#[derive(Debug)]
struct LoadFailed;

impl std::fmt::Display for LoadFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the origin is down")
    }
}

impl std::error::Error for LoadFailed {}

/// `callers` tasks ask `get_or_insert_with` for `key` at once, with a 50 ms loader of
/// `value`; every caller must get `value`. Returns how many times the loader ran.
async fn load_together<C: Cache + ?Sized + 'static>(cache: &Arc<C>, callers: usize, key: &str, value: &str) -> usize {
    let loads = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(callers));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let (cache, loads, barrier) = (Arc::clone(cache), Arc::clone(&loads), Arc::clone(&barrier));
        let (key, loaded) = (key.to_owned(), bytes(value));
        tasks.spawn(async move {
            barrier.wait().await;
            cache
                .get_or_insert_with(&key, Ttl::Never, || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, LoadFailed>(loaded)
                })
                .await
                .expect("get_or_insert_with")
        });
    }
    for got in tasks.join_all().await {
        assert_eq!(got, bytes(value));
    }
    loads.load(Ordering::SeqCst)
}

/// 100 tasks ask `get_or_insert_with` for one missing key at once: the loader runs
/// exactly once and all get its value. A failing loader stores nothing, and the next
/// call loads again.
pub async fn get_or_insert_loads_once<C: Cache + ?Sized + 'static>(cache: &Arc<C>) {
    let loads = load_together(cache, 100, "computed", "expensive").await;
    assert_eq!(loads, 1, "the loader must run exactly once");
    assert_eq!(cache.get("computed").await.expect("get"), Some(bytes("expensive")));

    let failed = cache.get_or_insert_with("flaky", Ttl::Never, || async { Err::<Bytes, _>(LoadFailed) }).await;
    let error = expect_kind(failed, ErrorKind::LoaderFailed, "a failing loader");
    assert!(std::error::Error::source(&error).is_some(), "the loader's error must be the source");
    assert_eq!(cache.get("flaky").await.expect("get"), None, "a failed load must not be stored");
    let value = cache
        .get_or_insert_with("flaky", Ttl::Never, || async { Ok::<_, LoadFailed>(bytes("recovered")) })
        .await
        .expect("second load");
    assert_eq!(value, bytes("recovered"));
}

/// When a load fails while others wait, the loading caller gets `LoaderFailed` with its
/// loader's error as `source()`, each waiter gets `LoaderFailed` saying another caller's
/// load failed with that message once, and every error names the key. When the loading
/// caller is cancelled, a waiter takes over and loads; nothing waits forever.
pub async fn get_or_insert_shares_failures_and_survives_cancellation<C: Cache + ?Sized + 'static>(cache: &Arc<C>) {
    const WAITERS: usize = 4;
    let started = Arc::new(tokio::sync::Notify::new());
    let leader = {
        let (cache, started) = (Arc::clone(cache), Arc::clone(&started));
        tokio::spawn(async move {
            cache
                .get_or_insert_with("failing", Ttl::Never, || async move {
                    started.notify_one();
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Err::<Bytes, _>(LoadFailed)
                })
                .await
        })
    };
    started.notified().await;
    let mut waiters = tokio::task::JoinSet::new();
    for _ in 0..WAITERS {
        let cache = Arc::clone(cache);
        waiters.spawn(async move {
            cache.get_or_insert_with("failing", Ttl::Never, || async { Ok::<_, LoadFailed>(bytes("not me")) }).await
        });
    }
    let own = leader.await.expect("the loading task");
    let own = expect_kind(own, ErrorKind::LoaderFailed, "the caller whose loader failed");
    assert_eq!(own.key(), Some("\"failing\""), "the loader's error must name the key: {own}");
    assert_eq!(std::error::Error::source(&own).map(ToString::to_string).as_deref(), Some("the origin is down"));
    for waited in waiters.join_all().await {
        // A waiter that arrived after the flight ended loads on its own and succeeds.
        match waited {
            Ok(value) => assert_eq!(value, bytes("not me")),
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::LoaderFailed, "a waiter's error: {error}");
                let message = error.to_string();
                assert!(message.contains("\"failing\""), "a waiter's error must name the key: {message}");
                assert!(message.contains("another caller"), "a waiter's error must say whose load failed: {message}");
                assert_eq!(message.matches("the origin is down").count(), 1, "the cause once: {message}");
            }
        }
    }

    let started = Arc::new(tokio::sync::Notify::new());
    let stuck = {
        let (cache, started) = (Arc::clone(cache), Arc::clone(&started));
        tokio::spawn(async move {
            cache
                .get_or_insert_with("abandoned", Ttl::Never, || async move {
                    started.notify_one();
                    std::future::pending::<Result<Bytes, LoadFailed>>().await
                })
                .await
        })
    };
    started.notified().await;
    let waiter = {
        let cache = Arc::clone(cache);
        tokio::spawn(async move {
            cache
                .get_or_insert_with("abandoned", Ttl::Never, || async { Ok::<_, LoadFailed>(bytes("taken over")) })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    stuck.abort();
    let value = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("a waiter must take over a cancelled load, not wait forever")
        .expect("the waiting task")
        .expect("the waiter's own load");
    assert_eq!(value, bytes("taken over"));
    assert_eq!(cache.get("abandoned").await.expect("get"), Some(bytes("taken over")));
}

/// Typed get-or-compute: 20 callers of `get_or_insert_as` for one struct share one load
/// and all get the struct; the stored bytes are its JSON, and a stored value of another
/// shape is a `Serialization` error naming the key, not a reload.
pub async fn get_or_insert_as_is_typed<C: Cache + ?Sized + 'static>(cache: &Arc<C>) {
    const CALLERS: usize = 20;
    let profile = Profile { id: 9, name: "Grace".into(), admin: false, scores: vec![1, 2], nickname: Some("G".into()) };
    let loads = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(CALLERS));
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..CALLERS {
        let (cache, loads, barrier, profile) =
            (Arc::clone(cache), Arc::clone(&loads), Arc::clone(&barrier), profile.clone());
        callers.spawn(async move {
            barrier.wait().await;
            cache
                .get_or_insert_as("typed", Ttl::Never, || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, LoadFailed>(profile)
                })
                .await
                .expect("get_or_insert_as")
        });
    }
    for got in callers.join_all().await {
        assert_eq!(got, profile);
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "the loader must run exactly once");
    assert_eq!(cache.get_as::<Profile>("typed").await.expect("get_as"), Some(profile));

    cache.set("not-a-profile", bytes("[1, 2]"), Ttl::Never).await.expect("set");
    let wrong = cache.get_or_insert_as("not-a-profile", Ttl::Never, || async { Err::<Profile, _>(LoadFailed) }).await;
    let error = expect_kind(wrong, ErrorKind::Serialization, "a stored value of another shape");
    assert!(error.to_string().contains("not-a-profile"), "the error must name the key: {error}");
    assert!(error.to_string().contains("Profile"), "the error must name the type readably: {error}");
}

/// A store that keeps counters ([`Cache::stats`]) counts each request once: a set is
/// one insert, a found key one hit, a missing key one miss, and 40 concurrent
/// get-or-compute requests for one missing key that run the loader once are one miss,
/// the other 39 hits or coalesced. A store without counters reports none, every time.
pub async fn stats_count_each_request_once<C: Cache + ?Sized + 'static>(cache: &Arc<C>) {
    const CALLERS: usize = 40;
    let before = cache.stats();
    cache.set("counted", bytes("v"), Ttl::Never).await.expect("set");
    assert_eq!(cache.get("counted").await.expect("get"), Some(bytes("v")));
    assert_eq!(cache.get("not-counted").await.expect("get"), None);
    let Some(before) = before else {
        assert_eq!(cache.stats(), None, "a store that reported no counters must not start to");
        return;
    };
    let after = cache.stats().expect("a store that reported counters keeps reporting them");
    assert_eq!(
        (after.inserts - before.inserts, after.hits - before.hits, after.misses - before.misses),
        (1, 1, 1),
        "one set, one hit, one miss: {before:?} then {after:?}"
    );

    let loads = load_together(cache, CALLERS, "computed once", "loaded").await as u64;
    assert_eq!(loads, 1, "the loader must run exactly once");
    let settled = cache.stats().expect("stats");
    let served = (settled.hits - after.hits) + (settled.coalesced - after.coalesced);
    assert_eq!(
        (settled.misses - after.misses, served),
        (loads, CALLERS as u64 - loads),
        "{CALLERS} requests, {loads} load: one miss per load, every other request a hit or coalesced: \
         {after:?} then {settled:?}"
    );
    assert!(settled.hit_ratio() > after.hit_ratio(), "{after:?} then {settled:?}");
}
