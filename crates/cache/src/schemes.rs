//! The one table of URL schemes [`open`](crate::open) knows, and the openers of the
//! stores in this crate.
//!
//! # Adding a store
//!
//! A store joins with one cargo feature, one re-export and one row here:
//!
//! 1. In `crates/cache/Cargo.toml`: `redis = ["dep:cache-redis"]` under `[features]`, and
//!    `cache-redis = { workspace = true, optional = true }` under `[dependencies]`.
//! 2. In `src/lib.rs`, beside the others:
//!    `#[cfg(feature = "redis")] #[cfg_attr(docsrs, doc(cfg(feature = "redis")))] #[doc(inline)] pub use cache_redis as redis;`
//! 3. Here: an opener, `#[cfg(feature = "redis")] async fn redis(mut url: StoreUrl) -> Result<Arc<dyn Cache>>`,
//!    that reads the row's query keys with [`StoreUrl::take`]/[`StoreUrl::take_parsed`],
//!    calls [`StoreUrl::finish`] (so no listed key goes unused), applies
//!    [`StoreUrl::prefix`] and [`StoreUrl::default_ttl`], and builds the store; then in
//!    the store's row replace `open: None` by `open: opener!("redis", redis)`.
//!
//! Every scheme already has its row, so with its feature off (or before it is wired)
//! `open` answers "the redis:// scheme needs the cargo feature "redis"", never
//! "unknown scheme". `prefix` and `ttl` are parsed for every row; `keys` lists only the
//! scheme's own query keys, and any other key is an error that lists the valid ones.

// Used by the openers of whichever features are on.
#[allow(unused_imports)]
use std::sync::Arc;

#[allow(unused_imports)]
use std::time::Duration;

use crate::open::{OpenFuture, StoreUrl};
#[allow(unused_imports)]
use crate::{Cache, Result};

/// One URL scheme: its name, the cargo feature that brings its store, its own query
/// keys, and the function from a parsed URL to the store (`None` when the feature is off).
#[derive(Debug)]
pub(crate) struct Scheme {
    pub(crate) name: &'static str,
    pub(crate) feature: &'static str,
    pub(crate) keys: &'static [&'static str],
    pub(crate) open: Option<fn(StoreUrl) -> OpenFuture>,
}

/// `Some(opener)` when `$feature` is on, else `None`; the opener is not even compiled
/// without its feature.
macro_rules! opener {
    ($feature:literal, $function:ident) => {{
        #[cfg(feature = $feature)]
        const OPEN: Option<fn(StoreUrl) -> OpenFuture> = Some(|url| Box::pin($function(url)));
        #[cfg(not(feature = $feature))]
        const OPEN: Option<fn(StoreUrl) -> OpenFuture> = None;
        OPEN
    }};
}

/// The query keys of `redis://`, `rediss://` and `redis+cluster://` (`redis+unix://` adds `db`,
/// which the others take as the URL's path).
const REDIS_KEYS: &[&str] = &["connect_timeout", "timeout", "clear_flushes_db", "tls_ca_file"];

/// The query keys of `mongodb://` and `mongodb+srv://`: the store's own settings first, then
/// the driver's connection-string options that are passed on to it as written. The driver's
/// timeout options (`connectTimeoutMS`, ...) are left out on purpose: the humane
/// `connect_timeout`, `server_selection_timeout` and `timeout` set the same things, and two
/// spellings of one setting would let one silently win. Options that carry secrets
/// (`authMechanismProperties`, `tlsCertificateKeyFilePassword`) are left out too, so no
/// secret sits in the query, where messages might show it.
const MONGO_KEYS: &[&str] = &[
    "collection",
    "connect_timeout",
    "server_selection_timeout",
    "timeout",
    "max_pool_size",
    // Passed on to the driver from here on.
    "authSource",
    "authMechanism",
    "replicaSet",
    "tls",
    "tlsCAFile",
    "tlsCertificateKeyFile",
    "directConnection",
    "readPreference",
    "appName",
];

/// How many of [`MONGO_KEYS`] are the store's own; the rest go to the driver.
#[cfg(feature = "mongo")]
const MONGO_OWN_KEYS: usize = 5;

/// Every scheme, in the order error messages list them.
pub(crate) static SCHEMES: &[Scheme] = &[
    Scheme { name: "memory", feature: "memory", keys: &["max_capacity", "policy"], open: opener!("memory", memory) },
    Scheme {
        name: "file",
        feature: "fs",
        keys: &["max_entries", "max_bytes", "durability", "create"],
        open: opener!("fs", file),
    },
    Scheme { name: "redis", feature: "redis", keys: REDIS_KEYS, open: opener!("redis", redis) },
    Scheme { name: "rediss", feature: "redis", keys: REDIS_KEYS, open: opener!("redis", redis) },
    Scheme {
        name: "redis+unix",
        feature: "redis",
        keys: &["db", "connect_timeout", "timeout", "clear_flushes_db"],
        open: opener!("redis", redis),
    },
    Scheme { name: "redis+cluster", feature: "redis", keys: REDIS_KEYS, open: opener!("redis", redis) },
    Scheme {
        name: "memcache",
        feature: "memcached",
        keys: &["connect_timeout", "timeout", "pool_size", "item_size", "generation_refresh"],
        open: opener!("memcached", memcached),
    },
    Scheme {
        name: "dynamodb",
        feature: "dynamo",
        keys: &[
            "region",
            "endpoint",
            "create_table",
            "namespace",
            "consistent_reads",
            "connect_timeout",
            "attempt_timeout",
            "timeout",
            "max_attempts",
            "batch_deadline",
            "max_value_len",
            "key_attribute",
            "value_attribute",
            "expiry_attribute",
        ],
        open: opener!("dynamo", dynamo),
    },
    Scheme { name: "mongodb", feature: "mongo", keys: MONGO_KEYS, open: opener!("mongo", mongo) },
    Scheme { name: "mongodb+srv", feature: "mongo", keys: MONGO_KEYS, open: opener!("mongo", mongo) },
];

/// `memory://?max_capacity=10000&policy=s3fifo|lru|lfu|fifo|random`: a fresh, private
/// `MemoryCache` (two `open` calls are two stores).
#[cfg(feature = "memory")]
async fn memory(mut url: StoreUrl) -> Result<Arc<dyn Cache>> {
    use crate::memory::{EvictionPolicy, MemoryCache};

    if !url.url().username().is_empty() || url.url().password().is_some() {
        return Err(url.invalid("memory:// takes no user name or password"));
    }
    let has_path = !matches!(url.url().path(), "" | "/");
    let has_host = url.url().host_str().is_some_and(|host| !host.is_empty()) || !url.hosts().is_empty();
    if has_host || has_path || url.url().port().is_some() {
        return Err(url.invalid("memory:// takes no host, port or path: write memory:// or memory://?max_capacity=..."));
    }
    let mut builder = MemoryCache::builder().prefix(url.prefix());
    if let Some(capacity) = url.take_parsed::<u64>("max_capacity", "a positive integer")? {
        if capacity == 0 {
            return Err(url.bad_value("max_capacity", "0", "a positive integer"));
        }
        builder = builder.max_capacity(capacity);
    }
    if let Some(policy) = url.take("policy") {
        let policy = match &*policy {
            "s3fifo" => EvictionPolicy::S3Fifo,
            "lru" => EvictionPolicy::Lru,
            "lfu" => EvictionPolicy::Lfu,
            "fifo" => EvictionPolicy::Fifo,
            "random" => EvictionPolicy::Random,
            other => return Err(url.bad_value("policy", other, "one of s3fifo, lru, lfu, fifo, random")),
        };
        builder = builder.eviction_policy(policy);
    }
    if let Some(lifetime) = url.default_ttl() {
        builder = builder.time_to_live(lifetime);
    }
    url.finish()?;
    Ok(Arc::new(builder.build()?))
}

/// `file:///abs/path?max_entries=..&max_bytes=..&durability=none|sync_data|sync_all&create=true`:
/// an `FsCache` in that directory (which must exist unless `create=true`).
#[cfg(feature = "fs")]
async fn file(mut url: StoreUrl) -> Result<Arc<dyn Cache>> {
    use crate::fs::{Durability, FsCache};

    if !url.hosts().is_empty() {
        return Err(url.invalid("file:// URLs take one absolute path, not a host list"));
    }
    if let Some(host) = url.url().host_str().filter(|host| !host.is_empty() && *host != "localhost") {
        return Err(url.invalid(format!(
            "file:// URLs need an absolute path after three slashes, as in file:///var/cache/app; \
             {host:?} was read as a host"
        )));
    }
    let directory = url
        .url()
        .to_file_path()
        .map_err(|()| url.invalid("file:// URLs need an absolute path, as in file:///var/cache/app"))?;
    let mut builder = FsCache::builder(directory).prefix(url.prefix());
    if let Some(max_entries) = url.take_parsed::<u64>("max_entries", "a positive integer")? {
        builder = builder.max_entries(max_entries);
    }
    if let Some(max_bytes) = url.take_parsed::<u64>("max_bytes", "a positive number of bytes")? {
        builder = builder.max_bytes(max_bytes);
    }
    if let Some(durability) = url.take("durability") {
        let durability = match &*durability {
            "none" => Durability::None,
            "sync_data" => Durability::SyncData,
            "sync_all" => Durability::SyncAll,
            other => return Err(url.bad_value("durability", other, "one of none, sync_data, sync_all")),
        };
        builder = builder.durability(durability);
    }
    // cache-fs creates a missing directory by default; a URL must not: a typo in a path
    // would silently start an empty cache somewhere else.
    let create = url.take_parsed::<bool>("create", "true or false")?.unwrap_or(false);
    builder = builder.create_directory(create);
    if let Some(lifetime) = url.default_ttl() {
        builder = builder.default_ttl(lifetime);
    }
    url.finish()?;
    Ok(Arc::new(builder.build().await?))
}

// The helpers below are used by the openers of whichever network features are on.

/// Reads the duration setting `key` (`500ms`, `2s`, `1m`); zero only where `zero` says it
/// means something.
#[allow(dead_code)]
fn take_duration(url: &mut StoreUrl, key: &str, zero: bool) -> Result<Option<Duration>> {
    let Some(text) = url.take(key) else { return Ok(None) };
    match humantime::parse_duration(&text) {
        Ok(duration) if zero || !duration.is_zero() => Ok(Some(duration)),
        Ok(_) => Err(url.bad_value(key, &text, "a duration longer than zero, such as 500ms, 2s or 1m")),
        Err(_) if zero => Err(url.bad_value(key, &text, "a duration such as 0s, 500ms, 2s or 1m")),
        Err(_) => Err(url.bad_value(key, &text, "a duration longer than zero, such as 500ms, 2s or 1m")),
    }
}

/// The URL's `user:password@` as written (still percent-encoded), or `""`.
#[allow(dead_code)]
fn userinfo(url: &url::Url) -> String {
    match (url.username(), url.password()) {
        ("", None) => String::new(),
        (user, None) => format!("{user}@"),
        (user, Some(password)) => format!("{user}:{password}@"),
    }
}

/// `host[:port]` of a URL with one host, or `""` without a host.
#[allow(dead_code)]
fn authority(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Every `host[:port]` the URL names: its host list, or its one host.
#[allow(dead_code)]
fn hosts(url: &StoreUrl) -> Vec<String> {
    if url.hosts().is_empty() {
        Some(authority(url.url())).filter(|host| !host.is_empty()).into_iter().collect()
    } else {
        url.hosts().to_vec()
    }
}

/// Percent-decoded URL text (a user name, a password, a table or database name).
#[allow(dead_code)]
fn decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// `redis://[user:password@]host[:port][/db]`, `rediss://` (the same over TLS),
/// `redis+unix://[user:password@localhost]/path/to/redis.sock?db=N` and
/// `redis+cluster://[user:password@]h1:p1,h2:p2`; `connect_timeout=2s`, `timeout=1s` (each
/// round trip), `clear_flushes_db=true` (let `clear` without a prefix `FLUSHDB`),
/// `tls_ca_file=/path/ca.pem` (with `rediss://`: trust this CA instead of the system's).
#[cfg(feature = "redis")]
async fn redis(mut url: StoreUrl) -> Result<Arc<dyn Cache>> {
    use crate::redis::RedisCache;

    let mut builder = RedisCache::builder().prefix(url.prefix());
    let path = url.url().path().to_owned();
    match url.scheme() {
        "redis+unix" => {
            let host = url.url().host_str().unwrap_or_default();
            if !url.hosts().is_empty() || !matches!(host, "" | "localhost") || url.url().port().is_some() {
                return Err(url.invalid(
                    "redis+unix:// takes the socket's path after three slashes, as in redis+unix:///run/redis.sock",
                ));
            }
            if matches!(path.as_str(), "" | "/") {
                return Err(url.invalid("redis+unix:// needs the socket's path, as in redis+unix:///run/redis.sock"));
            }
            // The client reads only the path; credentials and database go through the builder.
            builder = builder.url(format!("redis+unix://{path}"));
            if !url.url().username().is_empty() {
                builder = builder.username(decoded(url.url().username()));
            }
            if let Some(password) = url.url().password() {
                builder = builder.password(decoded(password));
            }
            if let Some(db) = url.take_parsed::<u32>("db", "a database number (0, 1, ...)")? {
                builder = builder.db(i64::from(db));
            }
        }
        scheme => {
            let nodes = hosts(&url);
            if nodes.is_empty() {
                let example = if scheme == "redis+cluster" { "h1:7000,h2:7001" } else { "127.0.0.1:6379/0" };
                return Err(url.invalid(format!("{scheme}:// needs a host, as in {scheme}://{example}")));
            }
            let db = path.trim_start_matches('/');
            if !db.is_empty() && db.parse::<u32>().is_err() {
                return Err(url.invalid(format!(
                    "the path of a {scheme}:// URL is the database number, as in {scheme}://127.0.0.1:6379/2; \
                     {:?} is not one",
                    decoded(db)
                )));
            }
            if scheme == "redis+cluster" {
                // Credentials and database apply to every node; cache-redis refuses a
                // database other than 0 on a cluster.
                let userinfo = userinfo(url.url());
                builder = builder.cluster_nodes(nodes.iter().map(|node| format!("redis://{userinfo}{node}{path}")));
            } else if nodes.len() > 1 {
                return Err(url.invalid(format!(
                    "{scheme}:// takes one host; for a Redis Cluster write redis+cluster://h1:p1,h2:p2"
                )));
            } else {
                builder = builder.url(url.url().as_str());
            }
        }
    }
    if let Some(timeout) = take_duration(&mut url, "connect_timeout", false)? {
        builder = builder.connect_timeout(timeout);
    }
    if let Some(timeout) = take_duration(&mut url, "timeout", false)? {
        builder = builder.operation_timeout(timeout);
    }
    if let Some(flush) = url.take_parsed::<bool>("clear_flushes_db", "true or false")? {
        builder = builder.clear_flushes_db(flush);
    }
    if let Some(path) = url.take("tls_ca_file") {
        builder = builder.tls_ca_file(path.to_string());
    }
    if let Some(lifetime) = url.default_ttl() {
        builder = builder.default_ttl(lifetime);
    }
    url.finish()?;
    Ok(Arc::new(builder.build().await?))
}

/// `memcache://h1[:11211],h2[:11211]`: one server or a ring; `connect_timeout=1s`,
/// `timeout=1s` (each round trip), `pool_size=32` (connections per server),
/// `item_size=1048576` (the servers' `-I`, in bytes), `generation_refresh=1s` (how soon
/// another process's `clear` is seen; `0s` = on every call).
#[cfg(feature = "memcached")]
async fn memcached(mut url: StoreUrl) -> Result<Arc<dyn Cache>> {
    use crate::memcached::MemcachedCache;

    if !url.url().username().is_empty() || url.url().password().is_some() {
        return Err(url.invalid("memcached has no authentication: remove the user name and password from the URL"));
    }
    if !matches!(url.url().path(), "" | "/") {
        return Err(url.invalid("memcache:// takes servers only, no path, as in memcache://h1:11211,h2:11211"));
    }
    let servers = hosts(&url);
    if servers.is_empty() {
        return Err(url.invalid("memcache:// needs at least one server, as in memcache://127.0.0.1:11211"));
    }
    let mut builder = MemcachedCache::builder().servers(servers.iter().map(String::as_str)).prefix(url.prefix());
    if let Some(timeout) = take_duration(&mut url, "connect_timeout", false)? {
        builder = builder.connect_timeout(timeout);
    }
    if let Some(timeout) = take_duration(&mut url, "timeout", false)? {
        builder = builder.timeout(timeout);
    }
    if let Some(connections) = url.take_parsed::<usize>("pool_size", "a positive integer")? {
        builder = builder.pool_size(connections);
    }
    if let Some(bytes) = url.take_parsed::<usize>("item_size", "a number of bytes")? {
        builder = builder.item_size(bytes);
    }
    if let Some(refresh) = take_duration(&mut url, "generation_refresh", true)? {
        builder = builder.generation_refresh(refresh);
    }
    if let Some(lifetime) = url.default_ttl() {
        builder = builder.default_ttl(lifetime);
    }
    url.finish()?;
    Ok(Arc::new(builder.build().await?))
}

/// `dynamodb://[ACCESS_KEY_ID:SECRET_ACCESS_KEY@]TABLE?region=us-east-1&endpoint=http://..&create_table=true`
/// and the builder's other settings (see the row). Without credentials in the URL the
/// standard AWS chain applies (environment, profile, instance role).
#[cfg(feature = "dynamo")]
async fn dynamo(mut url: StoreUrl) -> Result<Arc<dyn Cache>> {
    use crate::dynamo::DynamoCache;

    let table = url.url().host_str().map(decoded).unwrap_or_default();
    if !url.hosts().is_empty() || url.url().port().is_some() || !matches!(url.url().path(), "" | "/") {
        return Err(url.invalid(
            "dynamodb:// takes one table name and nothing more before the query, as in \
             dynamodb://cache?region=us-east-1",
        ));
    }
    if table.is_empty() {
        return Err(url.invalid("dynamodb:// needs a table name, as in dynamodb://cache?region=us-east-1"));
    }
    let mut builder = DynamoCache::builder(table).prefix(url.prefix());
    match (url.url().username(), url.url().password()) {
        ("", None) => {}
        (id, Some(secret)) if !id.is_empty() && !secret.is_empty() => {
            builder = builder.credentials(decoded(id), decoded(secret));
        }
        _ => {
            return Err(url.invalid(
                "credentials in a dynamodb:// URL need both parts: dynamodb://ACCESS_KEY_ID:SECRET_ACCESS_KEY@table",
            ));
        }
    }
    if let Some(region) = url.take("region") {
        builder = builder.region(region);
    }
    if let Some(endpoint) = url.take("endpoint") {
        builder = builder.endpoint_url(endpoint);
    }
    if let Some(create) = url.take_parsed::<bool>("create_table", "true or false")? {
        builder = builder.create_table_if_missing(create);
    }
    if let Some(namespace) = url.take("namespace") {
        builder = builder.namespace(namespace);
    }
    if let Some(consistent) = url.take_parsed::<bool>("consistent_reads", "true or false")? {
        builder = builder.consistent_reads(consistent);
    }
    if let Some(timeout) = take_duration(&mut url, "connect_timeout", false)? {
        builder = builder.connect_timeout(timeout);
    }
    if let Some(timeout) = take_duration(&mut url, "attempt_timeout", false)? {
        builder = builder.attempt_timeout(timeout);
    }
    if let Some(timeout) = take_duration(&mut url, "timeout", false)? {
        builder = builder.operation_timeout(timeout);
    }
    if let Some(attempts) = url.take_parsed::<u32>("max_attempts", "a positive integer")? {
        builder = builder.max_attempts(attempts);
    }
    if let Some(deadline) = take_duration(&mut url, "batch_deadline", false)? {
        builder = builder.batch_deadline(deadline);
    }
    if let Some(bytes) = url.take_parsed::<usize>("max_value_len", "a number of bytes")? {
        builder = builder.max_value_len(bytes);
    }
    if let Some(name) = url.take("key_attribute") {
        builder = builder.key_attribute(name);
    }
    if let Some(name) = url.take("value_attribute") {
        builder = builder.value_attribute(name);
    }
    if let Some(name) = url.take("expiry_attribute") {
        builder = builder.expiry_attribute(name);
    }
    if let Some(lifetime) = url.default_ttl() {
        builder = builder.default_ttl(lifetime);
    }
    url.finish()?;
    Ok(Arc::new(builder.build().await?))
}

/// `mongodb://[user:password@]h1[:27017][,h2..]/[database]?collection=..` and
/// `mongodb+srv://[user:password@]cluster.example.net/[database]`: the database (default
/// `cache`) is the path, which the driver also takes as the default `authSource`, as in any
/// MongoDB connection string; `collection` (default `cache`), `connect_timeout=2s`,
/// `server_selection_timeout=2s`, `timeout=3s` (each call), `max_pool_size=100`, and the
/// driver options in [`MONGO_KEYS`], passed on as written.
#[cfg(feature = "mongo")]
async fn mongo(mut url: StoreUrl) -> Result<Arc<dyn Cache>> {
    use crate::mongo::MongoCache;

    let scheme = url.scheme();
    let hosts = hosts(&url);
    if hosts.is_empty() {
        return Err(url.invalid(format!("{scheme}:// needs a host, as in mongodb://127.0.0.1:27017/app")));
    }
    let database = url.url().path().trim_start_matches('/').to_owned();
    if database.contains('/') {
        return Err(url.invalid(format!(
            "the path of a {scheme}:// URL is one database name, as in mongodb://127.0.0.1:27017/app"
        )));
    }
    let mut builder = MongoCache::builder().prefix(url.prefix());
    if !database.is_empty() {
        builder = builder.database(decoded(&database));
    }
    if let Some(collection) = url.take("collection") {
        builder = builder.collection(collection);
    }
    if let Some(timeout) = take_duration(&mut url, "connect_timeout", false)? {
        builder = builder.connect_timeout(timeout);
    }
    if let Some(timeout) = take_duration(&mut url, "server_selection_timeout", false)? {
        builder = builder.server_selection_timeout(timeout);
    }
    if let Some(timeout) = take_duration(&mut url, "timeout", false)? {
        builder = builder.operation_timeout(timeout);
    }
    if let Some(connections) = url.take_parsed::<u32>("max_pool_size", "a positive integer")? {
        if connections == 0 {
            return Err(url.bad_value("max_pool_size", "0", "a positive integer"));
        }
        builder = builder.max_pool_size(connections);
    }
    let mut options = Vec::new();
    for key in &MONGO_KEYS[MONGO_OWN_KEYS..] {
        if let Some(value) = url.take(key) {
            // The driver percent-decodes option values.
            options.push(format!("{key}={}", percent_encoding::utf8_percent_encode(&value, OPTION_VALUE)));
        }
    }
    if let Some(lifetime) = url.default_ttl() {
        builder = builder.default_ttl(lifetime);
    }
    url.finish()?;
    let query = if options.is_empty() { String::new() } else { format!("?{}", options.join("&")) };
    let uri = format!("{scheme}://{}{}/{database}{query}", userinfo(url.url()), hosts.join(","));
    Ok(Arc::new(builder.uri(uri).build().await?))
}

/// What a driver option's value keeps unencoded: RFC 3986's unreserved characters.
#[cfg(feature = "mongo")]
const OPTION_VALUE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
