//! `RedisCache` and other clients of the same server agree: keys are stored literally,
//! values byte for byte, integers as decimal text. `redis-cli` is the other client.

mod support;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use bytes::Bytes;
use cache_core::testkit::unique_prefix;
use cache_core::{Cache, Ttl};
use cache_redis::RedisCache;
use support::{OwnServer, redis_cli, redis_cli_bytes};

async fn cache(url: &str, prefix: &str) -> RedisCache {
    RedisCache::builder().url(url).prefix(prefix).build().await.unwrap_or_else(|error| panic!("{url}: {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis: cargo xtask test"]
async fn redis_cli_reads_what_we_write_and_we_read_what_it_writes() {
    let url = support::redis_url();
    let prefix = unique_prefix();
    let cache = cache(&url, &prefix).await;
    let full = |key: &str| format!("{prefix}{key}");

    let text = "héllo wörld\twith tab";
    cache.set("text", Bytes::from(text), Ttl::Never).await.expect("set text");
    assert_eq!(redis_cli(&url, &["GET", &full("text")]), text, "the key is prefix + key, the value exact");

    let binary = Bytes::from_static(b"\x00\x01\xfe\xff bytes \r\n");
    cache.set("binary", binary.clone(), Ttl::Never).await.expect("set binary");
    assert_eq!(redis_cli_bytes(&url, &["GET", &full("binary")]), binary.to_vec());
    assert_eq!(redis_cli(&url, &["STRLEN", &full("binary")]), binary.len().to_string());

    // A key a shell would mangle (space, newline, DEL), passed as raw bytes. (A NUL cannot
    // be a process argument; the conformance suite covers NUL keys.)
    let odd_key = "a b\nc\u{7f}";
    cache.set(odd_key, Bytes::from_static(b"odd"), Ttl::Never).await.expect("set odd key");
    let raw_key = [prefix.as_bytes(), odd_key.as_bytes()].concat();
    assert_eq!(redis_cli(&url, &[OsStr::new("GET"), OsStr::from_bytes(&raw_key)]), "odd");

    assert_eq!(cache.incr("counter", 41).await.expect("incr"), 41);
    assert_eq!(redis_cli(&url, &["GET", &full("counter")]), "41", "incr stores decimal text");

    assert_eq!(redis_cli(&url, &["SET", &full("from-cli"), "written by redis-cli"]), "OK");
    assert_eq!(cache.get("from-cli").await.expect("get"), Some(Bytes::from("written by redis-cli")));

    // INCRBY from redis-cli and incr from us, interleaved, count on one integer.
    let mut expected = 41;
    for step in 1..=10 {
        if step % 2 == 0 {
            expected += step;
            assert_eq!(cache.incr("counter", step).await.expect("incr"), expected);
        } else {
            expected -= step;
            assert_eq!(redis_cli(&url, &["INCRBY", &full("counter"), &(-step).to_string()]), expected.to_string());
        }
    }
    assert_eq!(cache.get("counter").await.expect("get"), Some(Bytes::from(expected.to_string())));

    cache.set("short", Bytes::from_static(b"x"), Ttl::After(Duration::from_millis(1500))).await.expect("set");
    let pttl: i64 = redis_cli(&url, &["PTTL", &full("short")]).parse().expect("PTTL is a number");
    assert!((1..=1500).contains(&pttl), "set sends PX in milliseconds: PTTL {pttl}");
    cache.clear().await.expect("clear");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis: cargo xtask test"]
async fn incr_creates_with_the_default_ttl_and_keeps_an_existing_one() {
    let url = support::redis_url();
    let prefix = unique_prefix();
    let cache = RedisCache::builder()
        .url(&url)
        .prefix(&prefix)
        .default_ttl(Duration::from_secs(60))
        .build()
        .await
        .expect("connecting");
    assert_eq!(cache.incr("fresh", 3).await.expect("incr"), 3);
    let pttl: i64 = redis_cli(&url, &["PTTL", &format!("{prefix}fresh")]).parse().expect("a number");
    assert!((1..=60_000).contains(&pttl), "a counter created by incr gets the default TTL: PTTL {pttl}");

    cache.set("kept", Bytes::from_static(b"5"), Ttl::Never).await.expect("set without expiry");
    assert_eq!(cache.incr("kept", 1).await.expect("incr"), 6);
    assert_eq!(redis_cli(&url, &["PTTL", &format!("{prefix}kept")]), "-1", "an existing entry keeps no expiry");
    cache.clear().await.expect("clear");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis: cargo xtask test"]
async fn clear_with_glob_characters_removes_exactly_its_keys_without_keys() {
    // A server of our own: its command statistics count only this test's commands.
    let server = OwnServer::start(&[]);
    let url = server.url();
    let prefix = "c*[ab]?\\:";
    let mine = cache(&url, prefix).await;
    let root = cache(&url, "").await;

    // 10 000 other keys, among them keys the *unescaped* pattern `c*[ab]?\:*` would match.
    let mut others: Vec<String> = (0..9_985).map(|i| format!("other:{i}")).collect();
    others.extend((0..5).map(|i| format!("cZZa1:{i}")));
    others.extend(
        ["c*[ab]", "c*[ab]?", "c*[ab]?:", "c*[ab]?\\", "c*[ab]x\\:", "C*[ab]?\\:", "c[ab]?\\:"].map(String::from),
    );
    others.extend((0..3).map(|i| format!("xc*[ab]?\\:{i}")));
    assert_eq!(others.len(), 10_000);
    let entries: Vec<(&str, Bytes)> = others.iter().map(|key| (key.as_str(), Bytes::from_static(b"keep"))).collect();
    root.set_many(&entries, Ttl::Never).await.expect("writing 10 000 other keys");

    let keys: Vec<String> = (0..2_500).map(|i| format!("mine:{i}")).chain([String::new()]).collect();
    let entries: Vec<(&str, Bytes)> = keys.iter().map(|key| (key.as_str(), Bytes::from_static(b"go"))).collect();
    mine.set_many(&entries, Ttl::Never).await.expect("writing our keys");
    assert_eq!(redis_cli(&url, &["DBSIZE"]), "12501");

    redis_cli(&url, &["CONFIG", "RESETSTAT"]);
    mine.clear().await.expect("clear");

    let left = redis_cli(&url, &["DBSIZE"]);
    if left != "10000" {
        let survivors = redis_cli(&url, &["--scan", "--pattern", "*mine*"]);
        panic!("clear removed other keys or left its own: {left} keys, ours left: {survivors:?}");
    }
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert!(mine.get_many(&refs).await.expect("get_many").iter().all(Option::is_none), "a key of ours survived");
    let refs: Vec<&str> = others.iter().map(String::as_str).collect();
    assert!(root.get_many(&refs).await.expect("get_many").iter().all(Option::is_some), "clear removed another key");

    let stats = redis_cli(&url, &["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_scan:"), "clear walks SCAN: {stats}");
    for forbidden in ["cmdstat_keys:", "cmdstat_flushdb:", "cmdstat_flushall:"] {
        assert!(!stats.contains(forbidden), "clear must not send {forbidden}: {stats}");
    }
}

/// The crate docs' example (compiled there, not run, since it needs a server), run here
/// against the test server with a prefix of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis: cargo xtask test"]
async fn the_crate_docs_example_runs() {
    use cache_core::CacheExt;

    let prefix = unique_prefix();
    let cache = RedisCache::builder()
        .url(support::redis_url())
        .prefix(format!("{prefix}app:"))
        .default_ttl(Duration::from_secs(600))
        .build()
        .await
        .expect("connecting");
    cache.set("user:7:name", "Ada".into(), Ttl::secs(60)).await.expect("set");
    assert_eq!(cache.get("user:7:name").await.expect("get").as_deref(), Some(&b"Ada"[..]));
    let visits = cache.incr("visits", 1).await.expect("incr");
    cache.set_as("last-visit", &visits, Ttl::Default).await.expect("set_as");
    let sessions = cache.with_prefix(format!("{prefix}sessions:"));
    sessions.set("s1", "x".into(), Ttl::Default).await.expect("set session");
    sessions.clear().await.expect("clear sessions");
    assert_eq!(sessions.get("s1").await.expect("get"), None);
    assert_eq!(cache.get_as::<i64>("last-visit").await.expect("get_as"), Some(visits), "another prefix's clear");
    assert_eq!(cache.single_flight_scope().0, sessions.single_flight_scope().0, "one connection, two namespaces");
    cache.clear().await.expect("clear");
}
