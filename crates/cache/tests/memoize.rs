//! `#[cache::memoize]` and `Memoized` under concurrency: one run per arguments, errors
//! returned and not cached (unless asked), a failing store never failing the call.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use cache::memory::MemoryCache;
use cache::{Bytes, Cache, Capabilities, Error, ErrorKind, Memoized, Ttl};

static STORE: LazyLock<Arc<dyn Cache>> =
    LazyLock::new(|| Arc::new(MemoryCache::builder().max_capacity(10_000).build().expect("a memory store")));

static SLOW_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache::memoize(store = STORE, ttl = "60s")]
async fn slow_square(n: u64) -> Result<u64, String> {
    SLOW_CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(n * n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_with_equal_arguments_run_once() {
    let mut calls = tokio::task::JoinSet::new();
    for index in 0..100u64 {
        calls.spawn(slow_square(7 + index % 2));
    }
    let results = calls.join_all().await;
    assert_eq!(results.iter().filter(|result| **result == Ok(49)).count(), 50);
    assert_eq!(results.iter().filter(|result| **result == Ok(64)).count(), 50);
    assert_eq!(SLOW_CALLS.load(Ordering::SeqCst), 2, "one run per distinct argument");
    assert_eq!(slow_square(7).await, Ok(49));
    assert_eq!(SLOW_CALLS.load(Ordering::SeqCst), 2, "later calls come from the cache");
}

static FLAKY_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Fails on its first call, succeeds afterwards.
#[cache::memoize(store = STORE)]
async fn flaky(name: &str) -> Result<String, std::io::Error> {
    if FLAKY_CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(std::io::Error::other("first call fails"));
    }
    Ok(format!("hello {name}"))
}

#[tokio::test]
async fn errors_are_returned_not_cached() {
    let first = flaky("ada").await;
    assert_eq!(first.expect_err("the first call fails").to_string(), "first call fails");
    assert_eq!(flaky("ada").await.expect("the error was not cached"), "hello ada");
    assert_eq!(flaky("ada").await.expect("cached"), "hello ada");
    assert_eq!(FLAKY_CALLS.load(Ordering::SeqCst), 2);
}

static CACHED_ERROR_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache::memoize(store = STORE, cache_errors = true, version = 3)]
async fn lookup(id: u32) -> Result<String, String> {
    CACHED_ERROR_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(format!("no user {id}"))
}

#[tokio::test]
async fn errors_are_cached_when_asked() {
    assert_eq!(lookup(9).await, Err("no user 9".to_owned()));
    assert_eq!(lookup(9).await, Err("no user 9".to_owned()));
    assert_eq!(CACHED_ERROR_CALLS.load(Ordering::SeqCst), 1, "the stored error is returned");
    let key = cache::memo::key(concat!(module_path!(), "::lookup"), 3, &(&9u32,)).expect("a key");
    assert!(key.starts_with("memo:memoize::lookup:v3:"), "{key}");
    assert!(STORE.has(&key).await.expect("has"), "the error is stored under its key");
}

static PLAIN_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache::memoize(store = STORE, ttl = "200ms")]
async fn plain(a: u8, b: String) -> Vec<String> {
    PLAIN_CALLS.fetch_add(1, Ordering::SeqCst);
    vec![a.to_string(), b]
}

#[tokio::test]
async fn functions_without_result_and_ttl_expiry() {
    assert_eq!(plain(1, "x".into()).await, ["1", "x"]);
    assert_eq!(plain(1, "x".into()).await, ["1", "x"]);
    assert_eq!(plain(2, "x".into()).await, ["2", "x"], "other arguments, another key");
    assert_eq!(PLAIN_CALLS.load(Ordering::SeqCst), 2);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(plain(1, "x".into()).await, ["1", "x"]);
    assert_eq!(PLAIN_CALLS.load(Ordering::SeqCst), 3, "an expired result runs the function again");
}

/// A store that is down: every operation fails.
#[derive(Debug)]
struct Down;

#[cache::async_trait]
impl Cache for Down {
    async fn get(&self, _: &str) -> cache::Result<Option<Bytes>> {
        Err(Error::new(ErrorKind::Unavailable, "down", "get"))
    }
    async fn set(&self, _: &str, _: Bytes, _: Ttl) -> cache::Result<()> {
        Err(Error::new(ErrorKind::Unavailable, "down", "set"))
    }
    async fn add(&self, _: &str, _: Bytes, _: Ttl) -> cache::Result<bool> {
        Err(Error::new(ErrorKind::Unavailable, "down", "add"))
    }
    async fn delete(&self, _: &str) -> cache::Result<bool> {
        Err(Error::new(ErrorKind::Unavailable, "down", "delete"))
    }
    async fn incr(&self, _: &str, _: i64) -> cache::Result<i64> {
        Err(Error::new(ErrorKind::Unavailable, "down", "incr"))
    }
    async fn clear(&self) -> cache::Result<()> {
        Err(Error::new(ErrorKind::Unavailable, "down", "clear"))
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
}

fn down() -> Arc<dyn Cache> {
    Arc::new(Down)
}

static DOWN_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cache::memoize(store = down(), ttl = "1m")]
async fn through_a_dead_store(n: i32) -> Result<i32, String> {
    DOWN_CALLS.fetch_add(1, Ordering::SeqCst);
    Ok(-n)
}

#[tokio::test]
async fn a_failing_store_never_fails_the_call() {
    assert_eq!(through_a_dead_store(4).await, Ok(-4));
    assert_eq!(through_a_dead_store(4).await, Ok(-4));
    assert_eq!(DOWN_CALLS.load(Ordering::SeqCst), 2, "uncached: the function runs every time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn closures_are_memoized_once_under_concurrency() {
    let runs = Arc::new(AtomicUsize::new(0));
    let store: Arc<dyn Cache> = Arc::new(MemoryCache::builder().build().expect("store"));
    let fetch = {
        let runs = Arc::clone(&runs);
        Arc::new(Memoized::new(store, "fetch", Ttl::secs(60), move |(user, page): (u32, u32)| {
            let runs = Arc::clone(&runs);
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                if page == 0 { Err(format!("user {user} has no page 0")) } else { Ok(format!("{user}/{page}")) }
            }
        }))
    };
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let fetch = Arc::clone(&fetch);
        calls.spawn(async move { fetch.call((1, 2)).await });
    }
    assert!(calls.join_all().await.iter().all(|result| result.as_deref() == Ok("1/2")));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(fetch.call((1, 0)).await.is_err());
    assert!(fetch.call((1, 0)).await.is_err());
    assert_eq!(runs.load(Ordering::SeqCst), 3, "errors are not cached");
    let bumped =
        Memoized::new(MemoryCache::builder().build().expect("store"), "fetch", Ttl::secs(60), |n: u8| async move {
            Ok::<_, String>(n)
        })
        .version(2);
    assert_eq!(bumped.call(5).await, Ok(5));
}
