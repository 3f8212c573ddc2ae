//! `cache::open(url)`: every scheme, every option and every error, table-driven with the
//! exact messages.

use std::time::Duration;

use cache::{Bytes, Cache, CacheExt, ErrorKind, OpenOptions, Ttl};

/// Every error `open` can give before a store is built, with its exact `Display`.
const ERRORS: &[(&str, &str)] = &[
    // Malformed URLs point at the bad part.
    (
        "",
        "cache open: invalid configuration: malformed URL \"\": no scheme; start with one such as memory:// or file:///",
    ),
    (
        "localhost:6379",
        "cache open: invalid configuration: unknown scheme \"localhost\"; known schemes: memory://, file://, redis://, \
         rediss://, redis+unix://, redis+cluster://, memcache://, dynamodb://, mongodb://, mongodb+srv://",
    ),
    (
        "//user:secret@host",
        "cache open: invalid configuration: malformed URL: no scheme; start with one such as memory:// or file:///",
    ),
    (
        "memory://localhost:99999",
        "memory open: invalid configuration: malformed memory:// URL: the port: invalid port number",
    ),
    (
        "file://[::1/tmp",
        "file open: invalid configuration: malformed file:// URL: the host address: invalid IPv6 address",
    ),
    (
        "mem ory://",
        "cache open: invalid configuration: malformed URL \"mem ory://\": no scheme; start with one such as memory:// \
         or file:///",
    ),
    (
        "mem://",
        "cache open: invalid configuration: unknown scheme \"mem\"; known schemes: memory://, file://, redis://, \
         rediss://, redis+unix://, redis+cluster://, memcache://, dynamodb://, mongodb://, mongodb+srv://",
    ),
    // Unknown, repeated and badly valued query keys.
    (
        "memory://?max_capacty=10",
        "memory open: invalid configuration: unknown query key \"max_capacty\"; valid keys for memory:// are prefix, \
         ttl, max_capacity, policy",
    ),
    (
        "file:///tmp?max_capacity=10",
        "file open: invalid configuration: unknown query key \"max_capacity\"; valid keys for file:// are prefix, ttl, \
         max_entries, max_bytes, durability, create",
    ),
    ("memory://?prefix=a&prefix=b", "memory open: invalid configuration: query key prefix is given twice"),
    (
        "memory://?max_capacity=ten",
        "memory open: invalid configuration: query key max_capacity=\"ten\": expected a positive integer",
    ),
    (
        "memory://?max_capacity=0",
        "memory open: invalid configuration: query key max_capacity=\"0\": expected a positive integer",
    ),
    (
        "memory://?policy=clock",
        "memory open: invalid configuration: query key policy=\"clock\": expected one of s3fifo, lru, lfu, fifo, random",
    ),
    (
        "memory://?ttl=soon",
        "memory open: invalid configuration: query key ttl=\"soon\": expected a duration such as 30s, 5m or 1h30m \
         (expected number at 0)",
    ),
    (
        "memory://?ttl=0s",
        "memory open: invalid configuration: query key ttl=\"0s\": a zero lifetime would expire every entry at once; \
         leave ttl out for no expiry",
    ),
    ("memory://#top", "memory open: invalid configuration: a URL fragment (#top) means nothing here; remove it"),
    (
        "memory://somewhere",
        "memory open: invalid configuration: memory:// takes no host, port or path: write memory:// or \
         memory://?max_capacity=...",
    ),
    ("memory://user:secret@", "memory open: invalid configuration: malformed memory:// URL: the host: empty host"),
    ("memory://user:secret@localhost", "memory open: invalid configuration: memory:// takes no user name or password"),
    (
        "memory://a:1,b:2",
        "memory open: invalid configuration: memory:// takes no host, port or path: write memory:// or \
         memory://?max_capacity=...",
    ),
    ("memory://a:1,,b:2", "memory open: invalid configuration: host number 2 of the host list is empty"),
    (
        "memory://a:1,b:99999",
        "memory open: invalid configuration: host number 2 (\"b:99999\") of the host list: invalid port number",
    ),
    ("file://a,b/tmp", "file open: invalid configuration: file:// URLs take one absolute path, not a host list"),
    (
        "file://relative/dir",
        "file open: invalid configuration: file:// URLs need an absolute path after three slashes, as in \
         file:///var/cache/app; \"relative\" was read as a host",
    ),
    (
        "file:///tmp?durability=always",
        "file open: invalid configuration: query key durability=\"always\": expected one of none, sync_data, sync_all",
    ),
    ("file:///tmp?create=yes", "file open: invalid configuration: query key create=\"yes\": expected true or false"),
    (
        "file:///tmp?max_bytes=1GB",
        "file open: invalid configuration: query key max_bytes=\"1GB\": expected a positive number of bytes",
    ),
];

/// The schemes whose store is not in this build name the feature to turn on. (This crate's
/// tests turn every store on through `cli`; the rows run in a build without it.)
fn feature_off_errors() -> Vec<(&'static str, &'static str)> {
    #[allow(unused_mut)]
    let mut rows = Vec::new();
    #[cfg(not(feature = "redis"))]
    rows.extend([
        (
            "redis://127.0.0.1:6379/0",
            "redis open: invalid configuration: the redis:// scheme needs the cargo feature \"redis\" of the cache crate, \
             which is off in this build (cache = { features = [\"redis\"] })",
        ),
        (
            "rediss://:secret@127.0.0.1:6380",
            "rediss open: invalid configuration: the rediss:// scheme needs the cargo feature \"redis\" of the cache \
             crate, which is off in this build (cache = { features = [\"redis\"] })",
        ),
        (
            "redis+unix:///run/redis.sock",
            "redis+unix open: invalid configuration: the redis+unix:// scheme needs the cargo feature \"redis\" of the \
             cache crate, which is off in this build (cache = { features = [\"redis\"] })",
        ),
        (
            "redis+cluster://h1:7000,h2:7001",
            "redis+cluster open: invalid configuration: the redis+cluster:// scheme needs the cargo feature \"redis\" of \
             the cache crate, which is off in this build (cache = { features = [\"redis\"] })",
        ),
    ]);
    #[cfg(not(feature = "memcached"))]
    rows.extend([(
        "memcache://h1:11211,h2:11211",
        "memcache open: invalid configuration: the memcache:// scheme needs the cargo feature \"memcached\" of the \
             cache crate, which is off in this build (cache = { features = [\"memcached\"] })",
    )]);
    #[cfg(not(feature = "dynamo"))]
    rows.extend([(
        "dynamodb://table?region=us-east-1",
        "dynamodb open: invalid configuration: the dynamodb:// scheme needs the cargo feature \"dynamo\" of the cache \
             crate, which is off in this build (cache = { features = [\"dynamo\"] })",
    )]);
    #[cfg(not(feature = "mongo"))]
    rows.extend([
        (
            "mongodb://127.0.0.1:27017/db?collection=c",
            "mongodb open: invalid configuration: the mongodb:// scheme needs the cargo feature \"mongo\" of the cache \
             crate, which is off in this build (cache = { features = [\"mongo\"] })",
        ),
        (
            "mongodb+srv://cluster.example/db",
            "mongodb+srv open: invalid configuration: the mongodb+srv:// scheme needs the cargo feature \"mongo\" of the \
             cache crate, which is off in this build (cache = { features = [\"mongo\"] })",
        ),
    ]);
    rows
}

#[tokio::test]
async fn every_error_names_the_bad_part() {
    let mut wrong = Vec::new();
    for (url, expected) in ERRORS.iter().copied().chain(feature_off_errors()) {
        match cache::open(url).await {
            Ok(store) => wrong.push(format!("{url}: opened {store:?}, expected an error")),
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{url}: {error}");
                if error.to_string() != expected {
                    wrong.push(format!("{url}:\n   got: {error}\n  want: {expected}"));
                }
                assert!(!error.to_string().contains("secret"), "{url}: a password leaked into {error}");
            }
        }
    }
    assert!(wrong.is_empty(), "{} wrong message(s):\n{}", wrong.len(), wrong.join("\n"));
}

#[tokio::test]
async fn options_and_url_may_not_both_set_one_thing() {
    let both = cache::open_with("memory://?prefix=a:", OpenOptions::new().prefix("b:")).await;
    let error = both.expect_err("prefix twice");
    assert_eq!(
        error.to_string(),
        "memory open: invalid configuration: prefix is set both in the URL and in OpenOptions; set it in one place"
    );
    let both = cache::open_with("memory://?ttl=5m", OpenOptions::new().default_ttl(Duration::from_secs(1))).await;
    assert_eq!(
        both.expect_err("ttl twice").to_string(),
        "memory open: invalid configuration: ttl is set both in the URL and in OpenOptions; set it in one place"
    );
}

/// Humane durations as the `ttl` of every scheme.
#[test]
fn ttl_accepts_humane_durations() {
    for (text, expected) in [
        ("30s", Duration::from_secs(30)),
        ("5m", Duration::from_secs(300)),
        ("1h30m", Duration::from_secs(5400)),
        ("250ms", Duration::from_millis(250)),
        ("2days", Duration::from_secs(2 * 86_400)),
    ] {
        let url = format!("memory://?ttl={text}");
        let store_url = cache::StoreUrl::parse(&url).unwrap_or_else(|error| panic!("{url}: {error}"));
        assert_eq!(store_url.default_ttl(), Some(expected), "{url}");
    }
}

#[tokio::test]
async fn memory_urls_open_working_stores_with_every_option() {
    for policy in ["s3fifo", "lru", "lfu", "fifo", "random"] {
        let store = cache::open(&format!("memory://?max_capacity=100&policy={policy}&prefix=p:&ttl=1h"))
            .await
            .unwrap_or_else(|error| panic!("{policy}: {error}"));
        store.set("k", Bytes::from_static(b"v"), Ttl::Default).await.expect("set");
        assert_eq!(store.get("k").await.expect("get"), Some(Bytes::from_static(b"v")), "{policy}");
    }
    // `memory:`, `memory://` and `memory:///` are the same empty address.
    for url in ["memory:", "memory://", "memory:///"] {
        let store = cache::open(url).await.unwrap_or_else(|error| panic!("{url}: {error}"));
        assert_eq!(store.incr("n", 2).await.expect("incr"), 2, "{url}");
    }
}

#[tokio::test]
async fn ttl_in_the_url_is_the_default_lifetime() {
    let store = cache::open("memory://?ttl=300ms").await.expect("open");
    store.set("short", Bytes::from_static(b"x"), Ttl::Default).await.expect("set default");
    store.set("long", Bytes::from_static(b"y"), Ttl::Never).await.expect("set never");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(store.get("short").await.expect("get"), None, "Ttl::Default must take the URL's ttl");
    assert_eq!(store.get("long").await.expect("get"), Some(Bytes::from_static(b"y")));
}

#[tokio::test]
async fn prefix_in_the_url_is_the_namespace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = format!("file://{}", dir.path().display());
    let app = cache::open(&format!("{base}?prefix=app:")).await.expect("open app");
    let other = cache::open(&format!("{base}?prefix=other:")).await.expect("open other");
    app.set_as("user", &1, Ttl::Never).await.expect("set");
    other.set_as("user", &2, Ttl::Never).await.expect("set");
    assert_eq!(app.get_as::<i32>("user").await.expect("get"), Some(1));
    assert_eq!(other.get_as::<i32>("user").await.expect("get"), Some(2));
}

#[tokio::test]
async fn file_urls_open_working_stores_with_every_option() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("made by open");
    // Spaces are percent-encoded in URLs and decoded into the path.
    let url = format!(
        "file://{}?create=true&max_entries=100&max_bytes=1000000&durability=sync_data&ttl=1h&prefix=x:",
        path.display().to_string().replace(' ', "%20")
    );
    let store = cache::open(&url).await.unwrap_or_else(|error| panic!("{url}: {error}"));
    store.set("k", Bytes::from_static(b"v"), Ttl::Default).await.expect("set");
    assert_eq!(store.get("k").await.expect("get"), Some(Bytes::from_static(b"v")));
    assert!(path.is_dir(), "create=true must create {}", path.display());
    for durability in ["none", "sync_all"] {
        let url = format!("file://{}?durability={durability}", dir.path().display());
        let store = cache::open(&url).await.unwrap_or_else(|error| panic!("{url}: {error}"));
        assert!(store.capabilities().shared_between_processes);
    }
}

#[tokio::test]
async fn a_missing_directory_is_an_error_unless_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}/absent", dir.path().display());
    let error = cache::open(&url).await.expect_err("missing directory");
    assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{error}");
    assert!(error.to_string().contains("absent"), "the error must name the path: {error}");
}
