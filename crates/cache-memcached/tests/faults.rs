//! Failures. cache-core's fault suite (latency, resets and a black hole, with 32 tasks at
//! once) runs through its fault proxy in front of the real server in
//! `CACHE_TEST_MEMCACHED_ADDR`. By hand here only what is memcached's own, on memcached
//! processes of the test's own: a dead server in a ring fails only its keys with a
//! temporary error within the deadline, the other servers keep working, and a server that
//! is back is used again by the same cache; and `flush_all`.
//!
//! The elapsed-time checks below are the contract's "never hangs past its timeout", with a
//! generous margin; they do not measure speed.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cache_core::testkit::fault::FaultHarness;
use cache_core::{Bytes, Cache, ErrorKind, Ttl};
use cache_memcached::MemcachedCache;
use support::{OwnMemcached, Raw, SINGLE, addresses};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
const TIMEOUT: Duration = Duration::from_millis(300);

/// The longest a call may take: pool wait and dial (connect timeout each), the generation
/// read and the command (timeout each), and a second of scheduling slack on a busy machine.
fn limit() -> Duration {
    CONNECT_TIMEOUT * 2 + TIMEOUT * 2 + Duration::from_secs(1)
}

async fn cache_on(addresses: &[String]) -> MemcachedCache {
    MemcachedCache::builder()
        .servers(addresses.iter().map(String::as_str))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TIMEOUT)
        .build()
        .await
        .expect("building the cache")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs memcached installed: cargo xtask test"]
async fn a_dead_server_fails_only_its_keys_and_is_used_again_once_back() {
    let mut servers: Vec<OwnMemcached> = (0..3).map(|_| OwnMemcached::start()).collect();
    let addresses: Vec<String> = servers.iter().map(OwnMemcached::address).collect();
    let cache = cache_on(&addresses).await.with_prefix("faults:");
    let keys: Vec<String> = (0..300).map(|index| format!("k{index}")).collect();
    let mut on_server = vec![Vec::new(); 3];
    for key in &keys {
        cache.set(key, Bytes::from(key.clone()), Ttl::Never).await.expect("set");
        let server = cache.locate(key).await.expect("locate").server;
        let index = addresses.iter().position(|address| *address == server).expect("one of ours");
        on_server[index].push(key.clone());
    }
    assert!(on_server.iter().all(|keys| !keys.is_empty()), "every server holds keys");

    let port = servers.remove(1).kill();
    let mut worst = Duration::ZERO;
    for key in &on_server[1] {
        let started = Instant::now();
        let error = cache.get(key).await.expect_err("its server is dead");
        worst = worst.max(started.elapsed());
        assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
        assert!(error.is_temporary());
        let error = cache.set(key, Bytes::new(), Ttl::Never).await.expect_err("its server is dead");
        assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    }
    println!("worst failed get on a dead server: {worst:?}");
    assert!(worst < limit(), "a call on a dead server took {worst:?}");
    for key in on_server[0].iter().chain(&on_server[2]) {
        assert_eq!(cache.get(key).await.expect("the other servers keep working"), Some(Bytes::from(key.clone())));
    }
    let alive: Vec<&str> = on_server[0].iter().map(String::as_str).collect();
    assert_eq!(cache.get_many(&alive).await.expect("get_many on a live server").len(), alive.len());
    let mixed = [on_server[0][0].as_str(), on_server[1][0].as_str()];
    assert_eq!(cache.get_many(&mixed).await.expect_err("one server is dead").kind(), ErrorKind::Unavailable);
    assert_eq!(cache.clear().await.expect_err("a server cannot be cleared").kind(), ErrorKind::Unavailable);

    // Back, empty (memcached keeps nothing on disk): the same cache object uses it again.
    let _back = OwnMemcached::start_on(port);
    let key = &on_server[1][0];
    cache.set(key, Bytes::from_static(b"again"), Ttl::Never).await.expect("the server is back");
    assert_eq!(cache.get(key).await.expect("get").as_deref(), Some(&b"again"[..]));
    assert_eq!(cache.incr(&on_server[1][1], 2).await.expect("incr"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs memcached installed: cargo xtask test"]
async fn flush_all_removes_everything_and_only_when_asked_by_name() {
    let server = OwnMemcached::start();
    let cache = cache_on(&[server.address()]).await;
    let mut raw = Raw::connect(&server.address());
    assert_eq!(raw.command("set outsider 0 0 1\r\nx\r\n"), "STORED");
    cache.set("mine", Bytes::from_static(b"m"), Ttl::Never).await.expect("set");
    cache.clear().await.expect("clear");
    assert_eq!(raw.get("outsider").as_deref(), Some(&b"x"[..]), "clear must never flush");

    cache.set("mine", Bytes::from_static(b"m"), Ttl::Never).await.expect("set");
    cache.flush_all().await.expect("flush_all");
    assert_eq!(raw.get("outsider"), None, "flush_all removes every program's keys");
    assert_eq!(cache.get("mine").await.expect("get"), None);
    cache.set("mine", Bytes::from_static(b"after"), Ttl::Never).await.expect("the cache works after a flush");
    assert_eq!(cache.get("mine").await.expect("get").as_deref(), Some(&b"after"[..]));
}

struct MemcachedFaults;

impl FaultHarness for MemcachedFaults {
    type Cache = MemcachedCache;

    fn upstream() -> SocketAddr {
        let address = addresses(SINGLE).remove(0);
        address.parse().unwrap_or_else(|error| panic!("{SINGLE}={address}: {error}"))
    }

    /// The suite bounds a whole call by `timeout` (plus its margin). A single-key call here
    /// waits for a pooled connection and dials (the connect timeout each), then reads the
    /// generation and sends its command (the I/O timeout each): a quarter and a half of
    /// `timeout` keep that at 1.5 of it in the worst case, within the margin, and one
    /// stalled exchange ends a call at half of it. Each exchange still gets five times the
    /// latency the suite calls harmless.
    async fn open(addr: SocketAddr, prefix: &str, timeout: Duration) -> MemcachedCache {
        MemcachedCache::builder()
            .server(&addr.to_string())
            .prefix(prefix)
            .connect_timeout(timeout / 4)
            .timeout(timeout / 2)
            .build()
            .await
            .expect("building the cache behind the fault proxy")
    }
}

cache_core::fault_tests!(MemcachedFaults, #[ignore = "needs memcached: cargo xtask test"]);
