//! Failures. The cache-core fault suite (latency, resets and a black hole, with 32 tasks
//! at once) runs through its loopback fault proxy in front of the xtask's server. By hand
//! here only what the suite does not do, on `redis-server`s these tests start themselves
//! on free ports (so the shared server is never disturbed) or on no server at all: a
//! restart, building against a black hole, an unreachable address, bad URLs and wrong
//! credentials. Each must be a clear typed error, returned within the configured timeout,
//! and the same cache object must work again once the server is back.
//!
//! The elapsed-time checks are hang detectors with a wide margin, not speed targets.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_core::testkit::fault::FaultHarness;
use cache_core::{Cache, Error, ErrorKind, Ttl};
use cache_redis::RedisCache;
use support::OwnServer;

struct RedisFaults;

impl FaultHarness for RedisFaults {
    type Cache = RedisCache;

    fn upstream() -> std::net::SocketAddr {
        let (host, port) = support::host_port(&support::redis_url());
        format!("{host}:{port}").parse().expect("CACHE_TEST_REDIS_URL names an IP address and port")
    }

    async fn open(addr: std::net::SocketAddr, prefix: &str, timeout: Duration) -> RedisCache {
        RedisCache::builder()
            .url(format!("redis://{addr}"))
            .prefix(prefix)
            .connect_timeout(timeout)
            .operation_timeout(timeout)
            .build()
            .await
            .unwrap_or_else(|error| panic!("connecting through the fault proxy at {addr}: {error}"))
    }
}

cache_core::fault_tests!(RedisFaults, #[ignore = "needs redis: cargo xtask test"]);

const TIMEOUT: Duration = Duration::from_millis(300);
/// Room for a loaded machine (other builds share the two cores); a hang is far longer.
const MARGIN: Duration = Duration::from_secs(2);

async fn cache_on(url: &str) -> RedisCache {
    RedisCache::builder()
        .url(url)
        .prefix("faults:")
        .connect_timeout(TIMEOUT)
        .operation_timeout(TIMEOUT)
        .build()
        .await
        .unwrap_or_else(|error| panic!("connecting to {url}: {error}"))
}

/// Runs `call`, checks it fails with a temporary error within the timeout, and returns it.
async fn fails_fast<T: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = cache_core::Result<T>>,
) -> Error {
    let started = Instant::now();
    let result = call.await;
    let elapsed = started.elapsed();
    assert!(elapsed < TIMEOUT + MARGIN, "{what} took {elapsed:?}: it must give up after {TIMEOUT:?}");
    match result {
        Err(error) if matches!(error.kind(), ErrorKind::Unavailable | ErrorKind::Timeout) => {
            assert!(error.is_temporary());
            error
        }
        other => panic!("{what}: expected Unavailable or Timeout, got {other:?}"),
    }
}

/// Retries `get` until it succeeds, for at most ten seconds.
async fn until_back(cache: &RedisCache, key: &str) -> Option<Bytes> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match cache.get(key).await {
            Ok(value) => return value,
            Err(error) if Instant::now() < deadline && error.is_temporary() => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("the cache did not come back: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis: cargo xtask test"]
async fn a_restarted_server_is_reconnected_without_rebuilding_the_cache() {
    let server = OwnServer::start(&[]);
    let cache = cache_on(&server.url()).await;
    let clone = cache.clone();
    cache.set("before", Bytes::from_static(b"1"), Ttl::Never).await.expect("set while up");

    server.kill();
    for round in 0..5 {
        fails_fast(&format!("get #{round} while down"), cache.get("before")).await;
        fails_fast(&format!("set #{round} while down"), cache.set("k", Bytes::from_static(b"v"), Ttl::Never)).await;
        fails_fast(&format!("get_many #{round} while down"), clone.get_many(&["a", "b"])).await;
        fails_fast(&format!("incr #{round} while down"), clone.incr("n", 1)).await;
    }

    server.launch();
    // The server kept nothing (no persistence): the old key is gone, the cache works.
    assert_eq!(until_back(&cache, "before").await, None);
    cache.set("after", Bytes::from_static(b"2"), Ttl::Never).await.expect("set after the restart");
    assert_eq!(clone.get("after").await.expect("get through a clone"), Some(Bytes::from_static(b"2")));
    assert_eq!(clone.incr("n", 5).await.expect("incr after the restart"), 5);
}

#[tokio::test]
async fn a_black_hole_fails_build_with_a_timeout() {
    // Accepts connections and never answers, like a firewall that drops replies.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding");
    let port = listener.local_addr().expect("local address").port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let built = RedisCache::builder()
        .url(format!("redis://127.0.0.1:{port}"))
        .connect_timeout(TIMEOUT)
        .operation_timeout(TIMEOUT)
        .build()
        .await;
    assert!(started.elapsed() < 2 * TIMEOUT + MARGIN, "build took {:?}", started.elapsed());
    let error = built.expect_err("nothing answers");
    assert!(error.is_temporary(), "{error}");
    assert!(error.to_string().contains(&format!("127.0.0.1:{port}")), "the error names the address: {error}");
    holder.abort();
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let port = support::free_port();
    let started = Instant::now();
    let error =
        RedisCache::builder().port(port).connect_timeout(TIMEOUT).build().await.expect_err("nothing listens there");
    assert!(started.elapsed() < TIMEOUT + MARGIN, "refused connections fail fast: {:?}", started.elapsed());
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert_eq!(error.operation(), "build");
}

#[tokio::test]
async fn bad_urls_are_invalid_config() {
    for url in [
        "http://127.0.0.1:6379",
        "redis://",
        "redis://127.0.0.1:6379/not-a-db",
        "redis://127.0.0.1:99999",
        "rediss+cluster://",
        "redis+cluster://",
        "127.0.0.1:6379",
    ] {
        let error = RedisCache::builder().url(url).build().await.expect_err(url);
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{url}: {error}");
    }
    let error = RedisCache::builder().operation_timeout(Duration::ZERO).build().await.expect_err("zero timeout");
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
}

#[tokio::test]
async fn from_env_names_its_variable() {
    // Only the failure is checked here: the variable is unset in the test environment
    // unless a person set it, and then `from_env` must accept it.
    match cache_redis::RedisCacheBuilder::from_env() {
        Err(error) => {
            assert_eq!(error.kind(), ErrorKind::InvalidConfig);
            assert!(error.to_string().contains(cache_redis::ENV_URL), "{error}");
        }
        Ok(builder) => assert!(format!("{builder:?}").contains("url: Some")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis: cargo xtask test"]
async fn wrong_credentials_are_invalid_config_and_never_shown() {
    const SECRET: &str = "right-horse-battery";
    const WRONG: &str = "wrong-staple-7";
    let server = OwnServer::start(&["--requirepass", SECRET]);
    for (url, what) in [
        (format!("redis://:{WRONG}@127.0.0.1:{}", server.port), "a wrong password"),
        (format!("redis://127.0.0.1:{}", server.port), "no password"),
    ] {
        let error = RedisCache::builder().url(&url).connect_timeout(TIMEOUT).build().await.expect_err(what);
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{what}: {error}");
        let mut shown = format!("{error} {error:?}");
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            shown.push_str(&cause.to_string());
            source = cause.source();
        }
        assert!(!shown.contains(WRONG) && !shown.contains(SECRET), "{what}: the password leaked: {shown}");
    }
    let cache = RedisCache::builder()
        .port(server.port)
        .password(SECRET)
        .prefix("auth:")
        .build()
        .await
        .expect("the right password");
    assert!(!format!("{cache:?}").contains(SECRET));
    cache.set("k", Bytes::from_static(b"v"), Ttl::Never).await.expect("set");
    assert_eq!(cache.get("k").await.expect("get"), Some(Bytes::from_static(b"v")));
}
