//! `cache::open(url)` on the network schemes: every query key and every error they add,
//! table-driven with the exact messages (no server needed), then each scheme against the
//! xtask's real servers (ignored unless run with `--include-ignored`, as `cargo xtask
//! test` does): a set/get/incr/clear round trip, with every setting checked against a
//! handle built from the store's own builder.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use cache::{Bytes, Cache, CacheExt, ErrorKind, Ttl};

/// Every error the network schemes give before a connection is tried, with its exact
/// `Display`. None may show the password `secret`.
const ERRORS: &[(&str, &str)] = &[
    // redis://, rediss://, redis+unix://, redis+cluster://
    (
        "redis://127.0.0.1:6379/0?colour=blue",
        "redis open: invalid configuration: unknown query key \"colour\"; valid keys for redis:// are prefix, ttl, \
         connect_timeout, timeout, clear_flushes_db, tls_ca_file",
    ),
    (
        "redis://127.0.0.1:6379/0?db=2",
        "redis open: invalid configuration: unknown query key \"db\"; valid keys for redis:// are prefix, ttl, \
         connect_timeout, timeout, clear_flushes_db, tls_ca_file",
    ),
    (
        "redis://127.0.0.1:6379/0?timeout=fast",
        "redis open: invalid configuration: query key timeout=\"fast\": expected a duration longer than zero, such as \
         500ms, 2s or 1m",
    ),
    (
        "redis://127.0.0.1:6379/0?connect_timeout=0s",
        "redis open: invalid configuration: query key connect_timeout=\"0s\": expected a duration longer than zero, \
         such as 500ms, 2s or 1m",
    ),
    (
        "redis://127.0.0.1:6379/0?clear_flushes_db=yes",
        "redis open: invalid configuration: query key clear_flushes_db=\"yes\": expected true or false",
    ),
    (
        "redis://:secret@127.0.0.1:6379/zero",
        "redis open: invalid configuration: the path of a redis:// URL is the database number, as in \
         redis://127.0.0.1:6379/2; \"zero\" is not one",
    ),
    ("redis://", "redis open: invalid configuration: redis:// needs a host, as in redis://127.0.0.1:6379/0"),
    (
        "redis://:secret@h1:6379,h2:6379",
        "redis open: invalid configuration: redis:// takes one host; for a Redis Cluster write \
         redis+cluster://h1:p1,h2:p2",
    ),
    (
        "redis+unix://cache-host/run/redis.sock",
        "redis+unix open: invalid configuration: redis+unix:// takes the socket's path after three slashes, as in \
         redis+unix:///run/redis.sock",
    ),
    (
        "redis+unix:///",
        "redis+unix open: invalid configuration: redis+unix:// needs the socket's path, as in \
         redis+unix:///run/redis.sock",
    ),
    (
        "redis+unix:///run/redis.sock?db=first",
        "redis+unix open: invalid configuration: query key db=\"first\": expected a database number (0, 1, ...)",
    ),
    (
        "redis+cluster://",
        "redis+cluster open: invalid configuration: redis+cluster:// needs a host, as in \
         redis+cluster://h1:7000,h2:7001",
    ),
    (
        "redis+cluster://:secret@h1:7000,h2:7001/3",
        "redis build: invalid configuration: a Redis Cluster has only database 0",
    ),
    (
        "redis+cluster://h1:7000,h2:7001?timeout=1",
        "redis+cluster open: invalid configuration: query key timeout=\"1\": expected a duration longer than zero, \
         such as 500ms, 2s or 1m",
    ),
    // memcache://
    (
        "memcache://h1:11211?colour=blue",
        "memcache open: invalid configuration: unknown query key \"colour\"; valid keys for memcache:// are prefix, \
         ttl, connect_timeout, timeout, pool_size, item_size, generation_refresh",
    ),
    (
        "memcache://admin:secret@h1:11211",
        "memcache open: invalid configuration: memcached has no authentication: remove the user name and password \
         from the URL",
    ),
    (
        "memcache://h1:11211/0",
        "memcache open: invalid configuration: memcache:// takes servers only, no path, as in \
         memcache://h1:11211,h2:11211",
    ),
    (
        "memcache://?timeout=1s",
        "memcache open: invalid configuration: memcache:// needs at least one server, as in \
         memcache://127.0.0.1:11211",
    ),
    (
        "memcache://h1:11211?pool_size=many",
        "memcache open: invalid configuration: query key pool_size=\"many\": expected a positive integer",
    ),
    ("memcache://h1:11211?pool_size=0", "memcached build: invalid configuration: pool_size must be at least 1"),
    (
        "memcache://h1:11211?item_size=1MiB",
        "memcache open: invalid configuration: query key item_size=\"1MiB\": expected a number of bytes",
    ),
    (
        "memcache://h1:11211?item_size=100",
        "memcached build: invalid configuration: item_size must be larger than 512 bytes",
    ),
    (
        "memcache://h1:11211?generation_refresh=often",
        "memcache open: invalid configuration: query key generation_refresh=\"often\": expected a duration such as \
         0s, 500ms, 2s or 1m",
    ),
    (
        "memcache://h1:11211?connect_timeout=0ms",
        "memcache open: invalid configuration: query key connect_timeout=\"0ms\": expected a duration longer than \
         zero, such as 500ms, 2s or 1m",
    ),
    ("memcache://h1:11211,h1:11211", "memcached build: invalid configuration: server h1:11211 is given twice"),
    // dynamodb://
    (
        "dynamodb://cache?colour=blue",
        "dynamodb open: invalid configuration: unknown query key \"colour\"; valid keys for dynamodb:// are prefix, \
         ttl, region, endpoint, create_table, namespace, consistent_reads, connect_timeout, attempt_timeout, timeout, \
         max_attempts, batch_deadline, max_value_len, key_attribute, value_attribute, expiry_attribute",
    ),
    (
        "dynamodb://?region=us-east-1",
        "dynamodb open: invalid configuration: dynamodb:// needs a table name, as in dynamodb://cache?region=us-east-1",
    ),
    (
        "dynamodb://cache/sessions?region=us-east-1",
        "dynamodb open: invalid configuration: dynamodb:// takes one table name and nothing more before the query, \
         as in dynamodb://cache?region=us-east-1",
    ),
    (
        "dynamodb://cache:8000?region=us-east-1",
        "dynamodb open: invalid configuration: dynamodb:// takes one table name and nothing more before the query, \
         as in dynamodb://cache?region=us-east-1",
    ),
    (
        "dynamodb://:secret@cache?region=us-east-1",
        "dynamodb open: invalid configuration: credentials in a dynamodb:// URL need both parts: \
         dynamodb://ACCESS_KEY_ID:SECRET_ACCESS_KEY@table",
    ),
    (
        "dynamodb://cache?create_table=maybe",
        "dynamodb open: invalid configuration: query key create_table=\"maybe\": expected true or false",
    ),
    (
        "dynamodb://cache?consistent_reads=1",
        "dynamodb open: invalid configuration: query key consistent_reads=\"1\": expected true or false",
    ),
    (
        "dynamodb://cache?attempt_timeout=0s",
        "dynamodb open: invalid configuration: query key attempt_timeout=\"0s\": expected a duration longer than \
         zero, such as 500ms, 2s or 1m",
    ),
    (
        "dynamodb://cache?batch_deadline=later",
        "dynamodb open: invalid configuration: query key batch_deadline=\"later\": expected a duration longer than \
         zero, such as 500ms, 2s or 1m",
    ),
    (
        "dynamodb://cache?max_attempts=-1",
        "dynamodb open: invalid configuration: query key max_attempts=\"-1\": expected a positive integer",
    ),
    (
        "dynamodb://cache?max_value_len=big",
        "dynamodb open: invalid configuration: query key max_value_len=\"big\": expected a number of bytes",
    ),
    (
        "dynamodb://AKID:secret@ab?region=us-east-1",
        "dynamo build: invalid configuration: table name \"ab\" (namespace + table): DynamoDB needs 3 to 255 of a-z, \
         A-Z, 0-9, _, -, .",
    ),
    (
        "dynamodb://cache?region=us-east-1&key_attribute=k&value_attribute=k",
        "dynamo build: invalid configuration: attribute names must differ: key \"k\", value \"k\", expiry \
         \"expires_at\"",
    ),
    // mongodb://, mongodb+srv://
    (
        "mongodb://127.0.0.1:27017/app?connectTimeoutMS=100",
        "mongodb open: invalid configuration: unknown query key \"connectTimeoutMS\"; valid keys for mongodb:// are \
         prefix, ttl, collection, connect_timeout, server_selection_timeout, timeout, max_pool_size, authSource, \
         authMechanism, replicaSet, tls, tlsCAFile, tlsCertificateKeyFile, directConnection, readPreference, appName",
    ),
    (
        "mongodb://?collection=c",
        "mongodb open: invalid configuration: mongodb:// needs a host, as in mongodb://127.0.0.1:27017/app",
    ),
    (
        "mongodb://u:secret@127.0.0.1:27017/app/sessions",
        "mongodb open: invalid configuration: the path of a mongodb:// URL is one database name, as in \
         mongodb://127.0.0.1:27017/app",
    ),
    (
        "mongodb://127.0.0.1:27017/app?max_pool_size=0",
        "mongodb open: invalid configuration: query key max_pool_size=\"0\": expected a positive integer",
    ),
    (
        "mongodb://127.0.0.1:27017/app?server_selection_timeout=1",
        "mongodb open: invalid configuration: query key server_selection_timeout=\"1\": expected a duration longer \
         than zero, such as 500ms, 2s or 1m",
    ),
    (
        "mongodb+srv://u:secret@cluster0.example.net/app?tlsCertificateKeyFilePassword=secret",
        "mongodb+srv open: invalid configuration: unknown query key \"tlsCertificateKeyFilePassword\"; valid keys for \
         mongodb+srv:// are prefix, ttl, collection, connect_timeout, server_selection_timeout, timeout, \
         max_pool_size, authSource, authMechanism, replicaSet, tls, tlsCAFile, tlsCertificateKeyFile, \
         directConnection, readPreference, appName",
    ),
];

#[tokio::test]
async fn every_network_error_names_the_bad_part() {
    let mut wrong = Vec::new();
    for (url, expected) in ERRORS {
        match cache::open(url).await {
            Ok(store) => wrong.push(format!("{url}: opened {store:?}, expected an error")),
            Err(error) => {
                if error.kind() != ErrorKind::InvalidConfig {
                    wrong.push(format!("{url}: {:?}, not InvalidConfig: {error}", error.kind()));
                }
                if error.to_string() != *expected {
                    wrong.push(format!("{url}:\n   got: {error}\n  want: {expected}"));
                }
                assert!(!format!("{error} {error:?}").contains("secret"), "{url}: a password leaked into {error:?}");
            }
        }
    }
    assert!(wrong.is_empty(), "{} wrong message(s):\n{}", wrong.len(), wrong.join("\n"));
}

/// memcached connects on first use, so every key of its row can be checked without a
/// server: the store opens, and `item_size` shows in its capabilities.
#[tokio::test]
async fn memcache_urls_take_every_key() {
    let url = "memcache://127.0.0.1:1,127.0.0.1:2?prefix=p:&ttl=1h&connect_timeout=250ms&timeout=2s&pool_size=4\
               &item_size=2097152&generation_refresh=0s";
    let store = cache::open(url).await.unwrap_or_else(|error| panic!("{url}: {error}"));
    assert_eq!(store.capabilities().max_value_len, Some(2_097_152 - 512), "item_size less memcached's overhead");
    // Nothing listens there: the call fails as the store says, not as a hang or a panic.
    let error = store.get("k").await.expect_err("no server on port 1");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
}

// --- Against the xtask's servers ---------------------------------------------------------

/// The variable the xtask sets for a server; a test without it fails, never passes.
fn server(var: &str, name: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run `cargo xtask test`, or `eval \"$(cargo xtask servers up {name})\"`")
    })
}

/// A name no earlier run used: tables, prefixes and collections never collide.
fn unique(what: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.subsec_nanos());
    format!("{what}{}{nanos}{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The contract's basics through a store opened from a URL: set/get, `add`, `incr`, a
/// bulk call and a `clear` that keeps other prefixes' entries (`other` has another prefix
/// on the same storage).
async fn round_trip(store: &dyn Cache, other: &dyn Cache) {
    other.set("k", Bytes::from_static(b"elsewhere"), Ttl::Never).await.expect("set other");
    store.set("k", Bytes::from_static(b"v"), Ttl::Default).await.expect("set");
    assert_eq!(store.get("k").await.expect("get"), Some(Bytes::from_static(b"v")));
    assert!(!store.add("k", Bytes::from_static(b"w"), Ttl::Default).await.expect("add"), "add kept the entry");
    assert_eq!(store.incr("n", 5).await.expect("incr"), 5);
    assert_eq!(store.incr("n", -2).await.expect("incr"), 3);
    assert_eq!(store.get_as::<i64>("n").await.expect("typed get"), Some(3));
    let got = store.get_many(&["k", "n", "absent"]).await.expect("get_many");
    assert_eq!(got, vec![Some(Bytes::from_static(b"v")), Some(Bytes::from_static(b"3")), None]);
    store.clear().await.expect("clear");
    assert_eq!(store.get("k").await.expect("get after clear"), None);
    assert_eq!(store.get("n").await.expect("get after clear"), None);
    assert_eq!(other.get("k").await.expect("other"), Some(Bytes::from_static(b"elsewhere")), "clear left its prefix");
    other.clear().await.expect("clear other");
}

mod redis {
    use super::*;
    use cache::redis::RedisCache;

    fn url() -> String {
        server("CACHE_TEST_REDIS_URL", "redis")
    }

    #[tokio::test]
    #[ignore = "needs redis: cargo xtask test"]
    async fn redis_urls_round_trip_with_every_key() {
        // Database 7 of the xtask's 1024, so the path is seen to pick it.
        let prefix = unique("t");
        let store = cache::open(&format!(
            "{}/7?prefix={prefix}:&ttl=1h&connect_timeout=2s&timeout=1500ms&clear_flushes_db=false",
            url()
        ))
        .await
        .expect("open redis");
        let other = cache::open(&format!("{}/7?prefix={prefix}-other:", url())).await.expect("open redis");
        store.set("seen", Bytes::from_static(b"in 7"), Ttl::Never).await.expect("set");
        let direct = RedisCache::builder().url(url()).db(7).prefix(format!("{prefix}:")).build().await.expect("direct");
        assert_eq!(direct.get("seen").await.expect("direct get"), Some(Bytes::from_static(b"in 7")), "db and prefix");
        round_trip(&*store, &*other).await;
    }

    #[tokio::test]
    #[ignore = "needs redis: cargo xtask test"]
    async fn clear_without_a_prefix_needs_clear_flushes_db() {
        let refused = cache::open(&format!("{}/8", url())).await.expect("open redis");
        assert!(!refused.capabilities().clear);
        assert_eq!(refused.clear().await.expect_err("no prefix, no flush").kind(), ErrorKind::Unsupported);
        let flushing = cache::open(&format!("{}/8?clear_flushes_db=true", url())).await.expect("open redis");
        flushing.set("k", Bytes::from_static(b"v"), Ttl::Never).await.expect("set");
        flushing.clear().await.expect("FLUSHDB");
        assert_eq!(refused.get("k").await.expect("get"), None);
    }

    #[tokio::test]
    #[ignore = "needs redis: cargo xtask test"]
    async fn redis_unix_urls_reach_the_socket() {
        // The xtask's Redis listens on TCP only; a Redis of this test's own serves a socket.
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("redis.sock");
        let started = std::process::Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--daemonize", "yes", "--save", "", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .arg("--pidfile")
            .arg(dir.path().join("redis.pid"))
            .status()
            .expect("redis-server (installed by the xtask) runs");
        assert!(started.success(), "redis-server did not start");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !socket.exists() {
            assert!(std::time::Instant::now() < deadline, "no socket at {}", socket.display());
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let base = format!("redis+unix://{}", socket.display());
        let store = cache::open(&format!("{base}?db=3&prefix=u:&timeout=1s&connect_timeout=1s")).await;
        let other = cache::open(&format!("{base}?db=3&prefix=w:")).await;
        let direct = RedisCache::builder().url(format!("redis+unix://{}?db=3", socket.display())).build().await;
        let result = async {
            let (store, other, direct) = (store?, other?, direct?);
            store.set("in3", Bytes::from_static(b"yes"), Ttl::Never).await?;
            assert_eq!(direct.get("u:in3").await?, Some(Bytes::from_static(b"yes")), "db=3 was used");
            round_trip(&*store, &*other).await;
            Ok::<(), cache::Error>(())
        }
        .await;
        let _ = std::process::Command::new("redis-cli").arg("-s").arg(&socket).args(["shutdown", "nosave"]).status();
        result.expect("redis+unix round trip");
    }

    #[tokio::test]
    #[ignore = "needs redis-cluster: cargo xtask test"]
    async fn redis_cluster_urls_list_the_nodes() {
        let nodes = server("CACHE_TEST_REDIS_CLUSTER_URLS", "redis-cluster");
        let hosts: Vec<&str> = nodes.split(',').map(|node| node.trim_start_matches("redis://")).collect();
        let prefix = unique("c");
        let base = format!("redis+cluster://{}", hosts.join(","));
        let store = cache::open(&format!("{base}?prefix={prefix}:&timeout=2s")).await.expect("open cluster");
        let other = cache::open(&format!("{base}?prefix={prefix}-other:")).await.expect("open cluster");
        round_trip(&*store, &*other).await;
        // One node is enough: the client finds the others.
        let one = cache::open(&format!("redis+cluster://{}?prefix={prefix}:", hosts[0])).await.expect("one node");
        store.set("k", Bytes::from_static(b"v"), Ttl::Never).await.expect("set");
        assert_eq!(one.get("k").await.expect("get"), Some(Bytes::from_static(b"v")));
        store.clear().await.expect("clear");
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_unavailable_naming_the_address() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let error = cache::open(&format!("redis://:secret@127.0.0.1:{port}/0?connect_timeout=500ms"))
            .await
            .expect_err("nothing listens");
        assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
        assert!(error.to_string().contains(&format!("127.0.0.1:{port}")), "{error}");
        assert!(!format!("{error} {error:?}").contains("secret"), "{error:?}");
    }
}

mod memcached {
    use super::*;

    #[tokio::test]
    #[ignore = "needs memcached: cargo xtask test"]
    async fn memcache_urls_round_trip() {
        let addr = server("CACHE_TEST_MEMCACHED_ADDR", "memcached");
        let prefix = unique("m");
        let store = cache::open(&format!("memcache://{addr}?prefix={prefix}:&ttl=1h&timeout=1s&pool_size=4"))
            .await
            .expect("open memcache");
        let other = cache::open(&format!("memcache://{addr}?prefix={prefix}-other:")).await.expect("open memcache");
        round_trip(&*store, &*other).await;
    }

    #[tokio::test]
    #[ignore = "needs memcached-ring: cargo xtask test"]
    async fn memcache_urls_spread_over_a_ring() {
        let ring = server("CACHE_TEST_MEMCACHED_RING_ADDRS", "memcached-ring");
        let prefix = unique("r");
        let store = cache::open(&format!("memcache://{ring}?prefix={prefix}:")).await.expect("open ring");
        let other = cache::open(&format!("memcache://{ring}?prefix={prefix}-other:")).await.expect("open ring");
        round_trip(&*store, &*other).await;
        // The same ring named in another order is the same store (servers are hashed by address).
        let mut reversed: Vec<&str> = ring.split(',').collect();
        reversed.reverse();
        let again = cache::open(&format!("memcache://{}?prefix={prefix}:", reversed.join(","))).await.expect("open");
        store.set("k", Bytes::from_static(b"v"), Ttl::Never).await.expect("set");
        assert_eq!(again.get("k").await.expect("get"), Some(Bytes::from_static(b"v")));
    }
}

mod dynamo {
    use super::*;
    use cache::dynamo::DynamoCache;

    #[tokio::test]
    #[ignore = "needs dynamodb: cargo xtask test"]
    async fn dynamodb_urls_round_trip_with_every_key() {
        let endpoint = server("CACHE_TEST_DYNAMO_ENDPOINT", "dynamodb");
        let table = unique("wire");
        let settings = "region=us-east-1&create_table=true&namespace=test-&consistent_reads=true\
                        &connect_timeout=2s&attempt_timeout=3s&timeout=10s&max_attempts=2&batch_deadline=5s\
                        &max_value_len=100000&key_attribute=k&value_attribute=v&expiry_attribute=x";
        let base = format!("dynamodb://moto:moto@{table}?{settings}&endpoint={endpoint}");
        let store = cache::open(&format!("{base}&prefix=a:&ttl=1h")).await.expect("open dynamodb");
        let other = cache::open(&format!("{base}&prefix=b:")).await.expect("open dynamodb");
        assert_eq!(store.capabilities().max_value_len, Some(100_000));
        let too_large = Bytes::from(vec![0_u8; 100_001]);
        assert_eq!(store.set("big", too_large, Ttl::Never).await.expect_err("over").kind(), ErrorKind::ValueTooLarge);
        // The namespace, table and attribute names took effect: the SDK-level builder finds the entry.
        store.set("seen", Bytes::from_static(b"here"), Ttl::Never).await.expect("set");
        let direct = DynamoCache::builder(table.as_str())
            .namespace("test-")
            .region("us-east-1")
            .endpoint_url(&endpoint)
            .credentials("moto", "moto")
            .key_attribute("k")
            .value_attribute("v")
            .expiry_attribute("x")
            .prefix("a:")
            .build()
            .await
            .expect("direct");
        assert_eq!(direct.get("seen").await.expect("direct get"), Some(Bytes::from_static(b"here")));
        round_trip(&*store, &*other).await;
    }

    #[tokio::test]
    #[ignore = "needs dynamodb: cargo xtask test"]
    async fn a_missing_table_is_invalid_config_without_create_table() {
        let endpoint = server("CACHE_TEST_DYNAMO_ENDPOINT", "dynamodb");
        let url = format!("dynamodb://moto:secret@{}?region=us-east-1&endpoint={endpoint}", unique("absent"));
        let error = cache::open(&url).await.expect_err("no such table");
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{error}");
        assert!(!format!("{error} {error:?}").contains("secret"), "{error:?}");
    }
}

mod mongo {
    use super::*;
    use cache::mongo::MongoCache;

    #[tokio::test]
    #[ignore = "needs mongodb: cargo xtask test"]
    async fn mongodb_urls_round_trip_with_every_key() {
        let base = server("CACHE_TEST_MONGO_URL", "mongodb");
        let database = unique("db");
        let settings = "collection=entries&connect_timeout=2s&server_selection_timeout=2s&timeout=5s\
                        &max_pool_size=8&directConnection=true&appName=cache%20tests";
        let store = cache::open(&format!("{base}/{database}?{settings}&prefix=a:&ttl=1h")).await.expect("open mongodb");
        let other = cache::open(&format!("{base}/{database}?collection=entries&prefix=b:")).await.expect("open");
        store.set("seen", Bytes::from_static(b"here"), Ttl::Never).await.expect("set");
        let direct = MongoCache::builder()
            .uri(base.as_str())
            .database(database.as_str())
            .collection("entries")
            .prefix("a:")
            .build()
            .await
            .expect("direct");
        assert_eq!(direct.get("seen").await.expect("direct get"), Some(Bytes::from_static(b"here")), "db, collection");
        round_trip(&*store, &*other).await;
    }
}
