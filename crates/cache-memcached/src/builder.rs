//! Settings for a [`MemcachedCache`] and the URL form of them.

use std::sync::Arc;
use std::time::Duration;

use cache_core::Result;
use memcache::exp::MetaClient;

use crate::MemcachedCache;
use crate::error::Failure;
use crate::store::{ITEM_OVERHEAD, Node, Settings, Shared};

/// The variable [`MemcachedCacheBuilder::from_env`] reads.
pub const ENV_URL: &str = "CACHE_MEMCACHED_URL";

/// A memcached server on the LAN accepts a connection in well under a millisecond; one
/// that has not within a second is down or dropping packets, and a cache that waits longer
/// than that usually costs more than the work it saves.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// memcached answers in microseconds and 1 MiB crosses a 1 Gbit/s link in about 8 ms: a
/// second covers a loaded server and a full batch of large values, and a stalled server
/// fails the call instead of hanging it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Connections kept and used at most per server. A call holds one connection for its round
/// trips, and a caller that finds all of them busy waits at most the connect timeout: when
/// the server slows down, calls hold connections longer, so the pool must cover the calls in
/// flight at once (32 tasks under 100 ms of latency need 32). memcached serves thousands of
/// connections; the bound is there so a stalled server cannot make a client open more.
pub const DEFAULT_POOL_SIZE: usize = 32;

/// memcached's default item size (`-I 1m`).
pub const DEFAULT_ITEM_SIZE: usize = 1 << 20;

/// How long a handle trusts the generation of its prefix before reading it again: a `clear`
/// made by another process or another built cache is seen within this time. Handles made
/// with [`MemcachedCache::with_prefix`] and clones share what they know and see each
/// other's clears at once.
pub const DEFAULT_GENERATION_REFRESH: Duration = Duration::from_secs(1);

/// Settings for a [`MemcachedCache`]; see [`MemcachedCache::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct MemcachedCacheBuilder {
    servers: Vec<String>,
    prefix: String,
    default_ttl: Option<Duration>,
    connect_timeout: Duration,
    timeout: Duration,
    pool_size: usize,
    item_size: usize,
    generation_refresh: Duration,
}

impl Default for MemcachedCacheBuilder {
    fn default() -> Self {
        MemcachedCacheBuilder {
            servers: Vec::new(),
            prefix: String::new(),
            default_ttl: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            pool_size: DEFAULT_POOL_SIZE,
            item_size: DEFAULT_ITEM_SIZE,
            generation_refresh: DEFAULT_GENERATION_REFRESH,
        }
    }
}

fn config(what: impl Into<String>) -> cache_core::Error {
    Failure::Config(what.into()).into_core("build", None)
}

impl MemcachedCacheBuilder {
    /// No servers yet, no prefix, the defaults above.
    pub fn new() -> Self {
        Self::default()
    }

    /// Settings from a URL: `memcache://host:port[,host:port...][?key=value&...]`
    /// (`memcached://` too). A missing port is 11211. Query keys: `prefix`,
    /// `default_ttl_secs`, `connect_timeout_ms`, `timeout_ms`, `pool_size`, `item_size`,
    /// `generation_refresh_ms`; any other key is an error naming it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`](cache_core::ErrorKind::InvalidConfig) for another scheme,
    /// a user or password (memcached's meta protocol has no authentication), a path, an
    /// unknown query key or a value that is not a number.
    pub fn from_url(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("memcache://")
            .or_else(|| url.strip_prefix("memcached://"))
            .ok_or_else(|| config("the URL must start with memcache:// or memcached://"))?;
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        if authority.contains('@') {
            // Never echo it: the part before '@' may be a password.
            return Err(config("memcached has no authentication: remove the user and password from the URL"));
        }
        if authority.contains('/') {
            return Err(config("a memcached URL has no path"));
        }
        let mut builder = Self::new();
        for server in authority.split(',') {
            builder = builder.server(server);
        }
        if !query.is_empty() {
            // Percent-decoding by the `url` crate the memcache client already depends on.
            let parsed = memcache::Url::parse(&format!("memcache://query/?{query}"))
                .map_err(|error| config(format!("the URL's query cannot be read: {error}")))?;
            for (name, value) in parsed.query_pairs() {
                let number = || {
                    value.parse::<u64>().map_err(|_| config(format!("URL setting {name}={value}: not a whole number")))
                };
                builder = match name.as_ref() {
                    "prefix" => builder.prefix(value.as_ref()),
                    "default_ttl_secs" => builder.default_ttl(Duration::from_secs(number()?)),
                    "connect_timeout_ms" => builder.connect_timeout(Duration::from_millis(number()?)),
                    "timeout_ms" => builder.timeout(Duration::from_millis(number()?)),
                    "pool_size" => builder.pool_size(usize::try_from(number()?).unwrap_or(usize::MAX)),
                    "item_size" => builder.item_size(usize::try_from(number()?).unwrap_or(usize::MAX)),
                    "generation_refresh_ms" => builder.generation_refresh(Duration::from_millis(number()?)),
                    other => return Err(config(format!("unknown URL setting {other:?}"))),
                };
            }
        }
        Ok(builder)
    }

    /// Settings from the URL in `CACHE_MEMCACHED_URL` (see [`from_url`](Self::from_url)).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`](cache_core::ErrorKind::InvalidConfig) when the variable
    /// is missing or its URL is invalid.
    pub fn from_env() -> Result<Self> {
        let url = std::env::var(ENV_URL).map_err(|_| config(format!("{ENV_URL} is not set or not UTF-8")))?;
        Self::from_url(&url)
    }

    /// Adds a server, `host:port` (a missing port is 11211). Keys spread over all servers.
    pub fn server(mut self, address: &str) -> Self {
        let address = address.trim();
        let address =
            if address.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok()) || address.is_empty() {
                address.to_owned()
            } else {
                format!("{address}:11211")
            };
        self.servers.push(address);
        self
    }

    /// Adds several servers.
    pub fn servers<'a>(self, addresses: impl IntoIterator<Item = &'a str>) -> Self {
        addresses.into_iter().fold(self, Self::server)
    }

    /// The namespace: every key of this cache lives under it, and [`clear`](cache_core::Cache::clear)
    /// removes only it.
    pub fn prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.prefix);
        self
    }

    /// The lifetime of entries written with [`Ttl::Default`](cache_core::Ttl::Default);
    /// without it they never expire (memcached may still evict them).
    pub fn default_ttl(mut self, lifetime: Duration) -> Self {
        self.default_ttl = Some(lifetime);
        self
    }

    /// The longest wait for a pooled connection, and for dialing a new one
    /// ([`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The longest one round trip (request written, answer read) may take
    /// ([`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connections per server, kept and in use at most ([`DEFAULT_POOL_SIZE`]).
    pub fn pool_size(mut self, connections: usize) -> Self {
        self.pool_size = connections;
        self
    }

    /// The servers' item size (`memcached -I`, [`DEFAULT_ITEM_SIZE`]); values up to this
    /// less 512 bytes (item header and key) are accepted, larger ones are
    /// [`ValueTooLarge`](cache_core::ErrorKind::ValueTooLarge) before anything is sent.
    pub fn item_size(mut self, bytes: usize) -> Self {
        self.item_size = bytes;
        self
    }

    /// How long a prefix's generation is trusted before it is read again
    /// ([`DEFAULT_GENERATION_REFRESH`]); `Duration::ZERO` reads it on every operation, one
    /// more round trip each.
    pub fn generation_refresh(mut self, refresh: Duration) -> Self {
        self.generation_refresh = refresh;
        self
    }

    /// Checks the settings and sets up a connection pool per server. Connections are made
    /// on first use, so a server that is down now is no error here: its keys fail with
    /// [`Unavailable`](cache_core::ErrorKind::Unavailable) until it is back.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`](cache_core::ErrorKind::InvalidConfig) for no server, a
    /// server named twice, an address that does not resolve, a zero timeout or pool size,
    /// or an item size too small for any value.
    pub async fn build(self) -> Result<MemcachedCache> {
        if self.servers.is_empty() {
            return Err(config("no server given"));
        }
        if let Some(empty) = self.servers.iter().find(|server| server.is_empty() || server.starts_with(':')) {
            return Err(config(format!("server address {empty:?} has no host")));
        }
        for (index, server) in self.servers.iter().enumerate() {
            if self.servers[..index].contains(server) {
                return Err(config(format!("server {server} is given twice")));
            }
        }
        if self.connect_timeout.is_zero() || self.timeout.is_zero() {
            return Err(config("timeouts must be longer than zero"));
        }
        if self.pool_size == 0 {
            return Err(config("pool_size must be at least 1"));
        }
        if self.item_size <= ITEM_OVERHEAD {
            return Err(config(format!("item_size must be larger than {ITEM_OVERHEAD} bytes")));
        }
        let settings = Settings {
            default_ttl: self.default_ttl,
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
            max_value_len: self.item_size - ITEM_OVERHEAD,
            generation_refresh: self.generation_refresh,
        };
        let (servers, pool_size) = (self.servers, self.pool_size);
        let (connect_timeout, timeout) = (self.connect_timeout, self.timeout);
        // Resolving a host name blocks.
        let nodes = crate::start(move || {
            servers
                .into_iter()
                .map(|address| {
                    let client = MetaClient::builder()
                        .connect_timeout(Some(connect_timeout))
                        .io_timeout(Some(timeout))
                        .max_connections(Some(pool_size))
                        .max_idle(pool_size)
                        .connect(address.as_str())
                        .map_err(|error| Failure::Config(format!("server {address}: {error}")))?;
                    Ok(Node { address, client })
                })
                .collect::<Result<Vec<_>, Failure>>()
        })
        .await
        .map_err(|failure| failure.into_core("build", None))?;
        let shared = Arc::new(Shared::new(nodes, settings));
        Ok(MemcachedCache::on(shared, &self.prefix))
    }
}

#[cfg(test)]
mod tests {
    use cache_core::ErrorKind;

    use super::*;

    #[test]
    fn urls_name_servers_and_settings() {
        let builder = MemcachedCacheBuilder::from_url(
            "memcache://h1:11211,h2?prefix=app%3Av2%3A&default_ttl_secs=60&timeout_ms=250&pool_size=4",
        )
        .expect("a valid URL");
        assert_eq!(builder.servers, ["h1:11211", "h2:11211"]);
        assert_eq!(builder.prefix, "app:v2:");
        assert_eq!(builder.default_ttl, Some(Duration::from_secs(60)));
        assert_eq!(builder.timeout, Duration::from_millis(250));
        assert_eq!(builder.pool_size, 4);
        assert_eq!(builder.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, says) in [
            ("redis://h:1", "memcache://"),
            ("memcache://h:1?colour=blue", "\"colour\""),
            ("memcache://h:1?pool_size=many", "pool_size=many"),
            ("memcache://h:1/db", "no path"),
        ] {
            let error = MemcachedCacheBuilder::from_url(url).expect_err(url);
            assert_eq!(error.kind(), ErrorKind::InvalidConfig);
            assert!(error.to_string().contains(says), "{url}: {error}");
        }
    }

    #[test]
    fn passwords_never_reach_errors() {
        let error = MemcachedCacheBuilder::from_url("memcache://admin:hunter2@h:1").expect_err("userinfo");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(!format!("{error:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn build_rejects_settings_that_cannot_work() {
        for (builder, says) in [
            (MemcachedCacheBuilder::new(), "no server"),
            (MemcachedCacheBuilder::new().server("a:1").server("a:1"), "twice"),
            (MemcachedCacheBuilder::new().server("a:1").pool_size(0), "pool_size"),
            (MemcachedCacheBuilder::new().server("a:1").timeout(Duration::ZERO), "timeouts"),
            (MemcachedCacheBuilder::new().server("a:1").item_size(100), "item_size"),
            (MemcachedCacheBuilder::new().server(":1"), "no host"),
        ] {
            let error = builder.build().await.expect_err(says);
            assert_eq!(error.kind(), ErrorKind::InvalidConfig);
            assert!(error.to_string().contains(says), "{error}");
        }
    }

    #[tokio::test]
    async fn a_server_that_is_down_is_no_build_error() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let cache = MemcachedCacheBuilder::new().server(&format!("127.0.0.1:{port}")).build().await.expect("builds");
        let error = cache_core::Cache::get(&cache, "k").await.expect_err("nothing listens");
        assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    }
}
