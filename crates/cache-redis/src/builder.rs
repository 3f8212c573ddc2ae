//! `RedisCacheBuilder`: where the cache connects, its namespace and its timeouts.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cache_core::Result;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, TlsCertificates};

use crate::conn::Conn;
use crate::error::{self, config};
use crate::{RedisCache, Shared};

/// The variable [`RedisCacheBuilder::from_env`] reads: a URL as [`RedisCacheBuilder::url`]
/// takes it.
pub const ENV_URL: &str = "CACHE_REDIS_URL";

/// How long `build` and a reconnection wait for a TCP connection and the handshake
/// (`AUTH`, `SELECT`). Two seconds outlast one lost SYN (Linux retransmits it after 1 s)
/// without letting a dead host stall a request path for long.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one round trip may take before the call returns `Timeout`. A healthy Redis
/// answers in well under a millisecond; a cache answer later than a second is usually
/// worth less than recomputing the value, and a second still rides out a fork or a
/// slow command on the server. Waiting for a reconnection counts against it too.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(1);

/// Settings for a [`RedisCache`]; see [`RedisCache::builder`].
///
/// Where it connects is a URL ([`url`](Self::url)), a list of cluster nodes
/// ([`cluster_nodes`](Self::cluster_nodes)), or host, port and database; credentials and
/// the database given here override the URL's. `Debug` never shows the password.
///
/// ```no_run
/// use std::time::Duration;
/// use cache_redis::{RedisCache, RedisCacheBuilder};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cache_core::Result<()> {
/// // A single node, from parts, with tighter timeouts than the defaults.
/// let sessions = RedisCache::builder()
///     .host("10.0.0.5")
///     .port(6380)
///     .db(2)
///     .password("from-a-secret-store")
///     .prefix("sessions:")
///     .operation_timeout(Duration::from_millis(250))
///     .build()
///     .await?;
/// // A Redis Cluster, given two of its nodes.
/// let shared = RedisCache::builder()
///     .url("redis+cluster://10.0.0.7:7000,10.0.0.8:7000")
///     .prefix("app:")
///     .build()
///     .await?;
/// // Whatever CACHE_REDIS_URL says, for a cache of its own that may FLUSHDB on clear().
/// let scratch = RedisCacheBuilder::from_env()?.clear_flushes_db(true).build().await?;
/// # let _ = (sessions, shared, scratch);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct RedisCacheBuilder {
    url: Option<String>,
    cluster_nodes: Vec<String>,
    host: Option<String>,
    port: Option<u16>,
    db: Option<i64>,
    username: Option<String>,
    password: Option<String>,
    prefix: String,
    default_ttl: Option<Duration>,
    connect_timeout: Option<Duration>,
    operation_timeout: Option<Duration>,
    clear_flushes_db: bool,
    tls_ca: Option<CaSource>,
}

/// Where the private CA that `rediss://` servers are checked against comes from.
#[derive(Clone, Debug)]
enum CaSource {
    File(PathBuf),
    Pem(Vec<u8>),
}

impl fmt::Debug for RedisCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCacheBuilder")
            .field("url", &self.url.as_deref().map(redacted))
            .field("cluster_nodes", &self.cluster_nodes.iter().map(|node| redacted(node)).collect::<Vec<_>>())
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("prefix", &self.prefix)
            .field("default_ttl", &self.default_ttl)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("clear_flushes_db", &self.clear_flushes_db)
            .field(
                "tls_ca",
                &self.tls_ca.as_ref().map(|ca| match ca {
                    CaSource::File(path) => format!("file {}", path.display()),
                    CaSource::Pem(pem) => format!("{} bytes of PEM", pem.len()),
                }),
            )
            .finish()
    }
}

/// `url` with any password replaced, for `Debug`: `redis://user:<hidden>@host/0`.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "<unparsed>".to_owned() };
    // The userinfo ends at the last `@` before the path; a password may itself hold `@` or `/`.
    let authority_end = rest.rfind('@');
    match authority_end {
        Some(at) => {
            let (userinfo, host) = rest.split_at(at);
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:<hidden>{host}")
        }
        None => url.to_owned(),
    }
}

impl RedisCacheBuilder {
    /// A builder for `redis://127.0.0.1:6379/0` until told otherwise.
    pub fn new() -> Self {
        RedisCacheBuilder::default()
    }

    /// A builder from the URL in the `CACHE_REDIS_URL` variable ([`ENV_URL`]).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`](cache_core::ErrorKind::InvalidConfig) when the variable
    /// is unset or not UTF-8. The URL itself is checked by [`build`](Self::build).
    pub fn from_env() -> Result<Self> {
        match std::env::var(ENV_URL) {
            Ok(url) => Ok(RedisCacheBuilder::new().url(url)),
            Err(std::env::VarError::NotPresent) => Err(config("from_env", format!("{ENV_URL} is not set"))),
            Err(std::env::VarError::NotUnicode(_)) => Err(config("from_env", format!("{ENV_URL} is not UTF-8"))),
        }
    }

    /// Where to connect, as a URL:
    ///
    /// - `redis://[username:password@]host[:port][/db]` (TCP; port 6379, db 0 by default);
    /// - `rediss://...` (TLS, port 6379 by default: the server's certificate must be issued
    ///   for the host named in the URL by a CA the system trusts or one given to
    ///   [`tls_ca_file`](Self::tls_ca_file) / [`tls_ca_pem`](Self::tls_ca_pem));
    /// - `redis+unix:///path/to/redis.sock[?db=N&user=U&pass=P]` (a Unix socket);
    /// - `redis+cluster://[username:password@]host1:port1,host2:port2` (a Redis Cluster,
    ///   given any of its nodes; the same as [`cluster_nodes`](Self::cluster_nodes)), and
    ///   `rediss+cluster://...`, the same over TLS (every node is checked as above).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Connect to a Redis Cluster through these nodes (`redis://host:port` URLs or
    /// `host:port`); the client discovers the rest of the cluster from them. `rediss://`
    /// nodes connect over TLS; all nodes must then be `rediss://`.
    pub fn cluster_nodes<I, S>(mut self, nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.cluster_nodes = nodes.into_iter().map(Into::into).collect();
        self
    }

    /// The server's host name or address (default `127.0.0.1`).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// The server's port (default 6379).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The database number (default 0; a Redis Cluster has only database 0).
    pub fn db(mut self, db: i64) -> Self {
        self.db = Some(db);
        self
    }

    /// The ACL user name (Redis 6 and later).
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The password (`requirepass`, or the ACL user's). Never shown by `Debug`, `Display`
    /// or any error.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// The literal prefix of every key this cache writes (default: none). `clear` removes
    /// every key that starts with it.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The lifetime of entries written with [`Ttl::Default`](cache_core::Ttl::Default)
    /// (default: never expire).
    pub fn default_ttl(mut self, lifetime: Duration) -> Self {
        self.default_ttl = Some(lifetime);
        self
    }

    /// How long connecting (and reconnecting) may take; see [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long one round trip may take, waiting for a reconnection included; see
    /// [`DEFAULT_OPERATION_TIMEOUT`].
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = Some(timeout);
        self
    }

    /// Whether `clear` on a cache *without* a prefix may empty the whole database with
    /// `FLUSHDB` (on a cluster: every primary). Off by default: such a cache reports
    /// `clear: false` and `clear` is `Unsupported`, so a database other programs share is
    /// never wiped by accident. A prefixed cache always clears only its own keys.
    pub fn clear_flushes_db(mut self, flush: bool) -> Self {
        self.clear_flushes_db = flush;
        self
    }

    /// Trust the CA certificate(s) in this PEM file for `rediss://` servers *instead of* the
    /// system's roots: for a server whose certificate a private CA issued. The file is read
    /// by [`build`](Self::build). There is deliberately no switch that turns certificate
    /// checks off: give the CA instead.
    pub fn tls_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls_ca = Some(CaSource::File(path.into()));
        self
    }

    /// The same as [`tls_ca_file`](Self::tls_ca_file), with the PEM text itself (for a CA
    /// that comes from a secret store rather than a file).
    pub fn tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_ca = Some(CaSource::Pem(pem.into()));
        self
    }

    /// Checks the settings and connects: on a single node, one multiplexed connection that
    /// reconnects by itself; on a cluster, one to every primary.
    ///
    /// # Errors
    /// - [`ErrorKind::InvalidConfig`](cache_core::ErrorKind::InvalidConfig): a URL that does
    ///   not parse, an unsupported scheme, a zero timeout, a database other than 0 on a
    ///   cluster, credentials the server refuses, a CA file that cannot be read or holds no
    ///   certificate, a CA given for a URL that is not `rediss://`, a mix of TLS and plain
    ///   cluster nodes, or (TLS) a server certificate that is not trusted or not issued for
    ///   the host connected to (the context says what rustls found);
    /// - [`ErrorKind::Unavailable`](cache_core::ErrorKind::Unavailable): the server refused
    ///   or dropped the connection, or another TLS handshake failure;
    /// - [`ErrorKind::Timeout`](cache_core::ErrorKind::Timeout): no connection within the
    ///   connect timeout plus the operation timeout.
    pub async fn build(self) -> Result<RedisCache> {
        const OP: &str = "build";
        let connect_timeout = self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let operation_timeout = self.operation_timeout.unwrap_or(DEFAULT_OPERATION_TIMEOUT);
        if connect_timeout.is_zero() || operation_timeout.is_zero() {
            return Err(config(OP, "timeouts must be longer than zero"));
        }
        let target = self.target()?;
        let endpoint = target.describe();
        let tls = target.is_tls();
        let certificates = self.certificates(tls)?;
        if tls {
            ensure_crypto_provider();
        }
        let connecting = async {
            let conn = match &target {
                Target::Single(info) => {
                    let client = match &certificates {
                        Some(certs) => redis::Client::build_with_tls((**info).clone(), certs.clone()),
                        None => redis::Client::open((**info).clone()),
                    }
                    .map_err(|e| error::from_redis(e, OP, None))?;
                    // One reconnection attempt per failed call, shortly retried once: while the
                    // server is down, calls fail fast with `Unavailable` instead of queueing
                    // behind a long backoff, and the next call tries again.
                    let manager_config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(connect_timeout))
                        .set_response_timeout(Some(operation_timeout))
                        .set_number_of_retries(1)
                        .set_min_delay(Duration::from_millis(50))
                        .set_max_delay(Duration::from_millis(200));
                    ConnectionManager::new_with_config(client, manager_config)
                        .await
                        .map(Conn::Single)
                        .map_err(|e| error::from_redis(e, OP, None))?
                }
                Target::Cluster(nodes) => {
                    let mut builder = ClusterClientBuilder::new(nodes.clone());
                    if let Some(certs) = &certificates {
                        builder = builder.certs(certs.clone());
                    }
                    let client = builder
                        .connection_timeout(connect_timeout)
                        .response_timeout(operation_timeout)
                        // A few quick retries follow MOVED/ASK after a resharding; our own
                        // operation timeout bounds the whole call anyway.
                        .retries(3)
                        .min_retry_wait(10)
                        .max_retry_wait(200)
                        .build()
                        .map_err(|e| error::from_redis(e, OP, None))?;
                    client
                        .get_async_connection()
                        .await
                        .map(Conn::Cluster)
                        .map_err(|e| error::from_redis(e, OP, None))?
                }
            };
            // The handshake does not prove the server takes our commands: one that wants a
            // password we did not give answers NOAUTH only now. Better at build than on
            // the first call.
            conn.query::<String>(&redis::cmd("PING")).await.map_err(|e| error::from_redis(e, OP, None))?;
            Ok::<Conn, cache_core::Error>(conn)
        };
        let bound = connect_timeout + operation_timeout;
        let conn = match tokio::time::timeout(bound, connecting).await {
            Ok(conn) => conn.map_err(|e| {
                let context = format!("{} (connecting to {endpoint})", e.context().unwrap_or("failed"));
                e.with_context(context)
            })?,
            Err(_) => return Err(error::timed_out(OP, None, bound).with_context(format!("connecting to {endpoint}"))),
        };
        let shared = Shared {
            conn,
            endpoint,
            default_ttl: self.default_ttl,
            operation_timeout,
            clear_flushes_db: self.clear_flushes_db,
        };
        Ok(RedisCache { shared: Arc::new(shared), prefix: Arc::from(self.prefix) })
    }

    /// The CA to trust for a TLS target, read now so a bad file is an error of `build`.
    fn certificates(&self, tls: bool) -> Result<Option<TlsCertificates>> {
        const OP: &str = "build";
        let Some(ca) = &self.tls_ca else { return Ok(None) };
        if !tls {
            return Err(config(OP, "a TLS CA was given but the URL is not rediss:// (or rediss+cluster://)"));
        }
        let pem = match ca {
            CaSource::Pem(pem) => pem.clone(),
            CaSource::File(path) => std::fs::read(path).map_err(|source| {
                config(OP, format!("cannot read the TLS CA file {}", path.display())).with_source(source)
            })?,
        };
        // redis-rs parses the PEM only when it connects, and a file with no certificate in
        // it would then silently mean "the system roots only": refuse it here instead.
        if !pem.windows(b"-----BEGIN CERTIFICATE-----".len()).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(config(OP, "the TLS CA holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
        }
        Ok(Some(TlsCertificates { client_tls: None, root_cert: Some(pem) }))
    }

    /// The connection settings, from the URL or the parts, with the overrides applied.
    fn target(&self) -> Result<Target> {
        const OP: &str = "build";
        let mut nodes = self.cluster_nodes.clone();
        let mut url = self.url.clone();
        let cluster_url = url.as_deref().and_then(|url| {
            url.strip_prefix("redis+cluster://")
                .map(|rest| ("redis", rest))
                .or_else(|| url.strip_prefix("rediss+cluster://").map(|rest| ("rediss", rest)))
        });
        if let Some((node_scheme, cluster)) = cluster_url {
            // `redis+cluster://user:pass@h1:p1,h2:p2/`: credentials apply to every node.
            let cluster = cluster.trim_end_matches('/');
            let (userinfo, hosts) = match cluster.rfind('@') {
                Some(at) => (Some(&cluster[..at]), &cluster[at + 1..]),
                None => (None, cluster),
            };
            let userinfo = userinfo.map_or_else(String::new, |userinfo| format!("{userinfo}@"));
            nodes.extend(
                hosts
                    .split(',')
                    .filter(|host| !host.is_empty())
                    .map(|host| format!("{node_scheme}://{userinfo}{host}")),
            );
            if nodes.is_empty() {
                return Err(config(OP, "a redis+cluster:// URL needs at least one host:port"));
            }
            url = None;
        }
        if !nodes.is_empty() {
            if url.is_some() {
                return Err(config(OP, "give either a URL or cluster nodes, not both"));
            }
            if self.db.is_some_and(|db| db != 0) {
                return Err(config(OP, "a Redis Cluster has only database 0"));
            }
            let infos = nodes
                .iter()
                .map(|node| {
                    let node = if node.contains("://") { node.clone() } else { format!("redis://{node}") };
                    self.info(&node)
                })
                .collect::<Result<Vec<_>>>()?;
            if infos.iter().any(|info| info.redis_settings().db() != 0) {
                return Err(config(OP, "a Redis Cluster has only database 0"));
            }
            // The cluster client takes one TLS mode for all nodes (from the first): a mix
            // would silently talk plain TCP to some of them, or TLS to a plain port.
            let tls_nodes = infos.iter().filter(|info| is_tls(info)).count();
            if tls_nodes != 0 && tls_nodes != infos.len() {
                return Err(config(OP, "cluster nodes must be all rediss:// or all redis://, not a mix"));
            }
            return Ok(Target::Cluster(infos));
        }
        let url = match url {
            Some(url) => url,
            None => format!("redis://{}:{}", self.host.as_deref().unwrap_or("127.0.0.1"), self.port.unwrap_or(6379)),
        };
        let mut info = self.info(&url)?;
        if self.url.is_some() && (self.host.is_some() || self.port.is_some()) {
            let addr = match info.addr() {
                ConnectionAddr::Tcp(host, port) => {
                    ConnectionAddr::Tcp(self.host.clone().unwrap_or_else(|| host.clone()), self.port.unwrap_or(*port))
                }
                ConnectionAddr::TcpTls { host, port, insecure, tls_params } => ConnectionAddr::TcpTls {
                    host: self.host.clone().unwrap_or_else(|| host.clone()),
                    port: self.port.unwrap_or(*port),
                    insecure: *insecure,
                    tls_params: tls_params.clone(),
                },
                _ => return Err(config(OP, "host and port cannot be combined with a Unix socket URL")),
            };
            info = info.set_addr(addr);
        }
        Ok(Target::Single(Box::new(info)))
    }

    /// Parses one URL and applies the builder's database and credentials over it.
    fn info(&self, url: &str) -> Result<ConnectionInfo> {
        const OP: &str = "build";
        let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
        if !matches!(scheme, "redis" | "rediss" | "redis+unix" | "unix" | "valkey" | "valkeys") {
            return Err(config(
                OP,
                "the URL must start with redis://, rediss://, redis+unix://, redis+cluster:// or rediss+cluster://",
            ));
        }
        let info = url.into_connection_info().map_err(|source| {
            // The client's parse errors are fixed texts that never quote the URL.
            config(OP, "the Redis URL does not parse").with_source(source)
        })?;
        if !info.addr().is_supported() {
            return Err(config(OP, "this kind of address is not supported by the client"));
        }
        let mut redis = info.redis_settings().clone();
        if let Some(db) = self.db {
            if db < 0 {
                return Err(config(OP, format!("database {db} is negative")));
            }
            redis = redis.set_db(db);
        }
        if let Some(username) = &self.username {
            redis = redis.set_username(username);
        }
        if let Some(password) = &self.password {
            redis = redis.set_password(password);
        }
        Ok(info.set_redis_settings(redis))
    }
}

/// Makes sure rustls has a process-wide default `CryptoProvider` before redis-rs needs one.
///
/// redis-rs (1.2) builds its TLS config with `rustls::ClientConfig::builder()`, which takes
/// the process default and panics when none was installed and more than one provider is
/// compiled in, as happens when this crate is linked beside mongodb (ring) and the AWS SDK
/// (aws-lc-rs); redis-rs offers no way to pass a provider or a ready config. So when no
/// default exists yet we install ring's, once. A provider the application installed first
/// is kept (we never override a user's choice), and losing a race with another installer is
/// fine: the default it set serves us as well.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err only means another thread installed a default in between.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn is_tls(info: &ConnectionInfo) -> bool {
    matches!(info.addr(), ConnectionAddr::TcpTls { .. })
}

enum Target {
    // Boxed: TLS settings make a `ConnectionInfo` ten times the size of the cluster's `Vec`.
    Single(Box<ConnectionInfo>),
    Cluster(Vec<ConnectionInfo>),
}

impl Target {
    fn is_tls(&self) -> bool {
        match self {
            Target::Single(info) => is_tls(info),
            Target::Cluster(nodes) => nodes.iter().any(is_tls),
        }
    }

    /// Where we connect, without credentials, for `Debug` and error messages.
    fn describe(&self) -> String {
        fn addr(info: &ConnectionInfo) -> String {
            match info.addr() {
                ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
                ConnectionAddr::TcpTls { host, port, .. } => format!("tls {host}:{port}"),
                ConnectionAddr::Unix(path) => format!("unix {}", path.display()),
                _ => "an unknown address".to_owned(),
            }
        }
        match self {
            Target::Single(info) => format!("redis {}/{}", addr(info), info.redis_settings().db()),
            Target::Cluster(nodes) => {
                format!("redis cluster {}", nodes.iter().map(addr).collect::<Vec<_>>().join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let builder = RedisCacheBuilder::new()
            .url("redis://ada:s3cr3t-p@ss@example.invalid:6379/2")
            .cluster_nodes(["redis://:s3cr3t-p@ss@n1:7000"])
            .password("s3cr3t-p@ss");
        let shown = format!("{builder:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("redis://ada:<hidden>@example.invalid:6379/2"), "{shown}");
    }

    #[test]
    fn overrides_apply_over_the_url() {
        let builder = RedisCacheBuilder::new().url("redis://u:p@127.0.0.1:7777/3").db(5).password("other");
        let Ok(Target::Single(info)) = builder.target() else { panic!("a single node") };
        assert_eq!(info.redis_settings().db(), 5);
        assert_eq!(info.redis_settings().password(), Some("other"));
        assert_eq!(info.redis_settings().username(), Some("u"));
        assert_eq!(info.addr(), &ConnectionAddr::Tcp("127.0.0.1".into(), 7777));
    }

    #[test]
    fn cluster_urls_list_every_node() {
        let builder = RedisCacheBuilder::new().url("redis+cluster://:pw@127.0.0.1:7000,127.0.0.1:7001/");
        let Ok(Target::Cluster(nodes)) = builder.target() else { panic!("a cluster") };
        assert_eq!(nodes.len(), 2);
        assert!(nodes.iter().all(|node| node.redis_settings().password() == Some("pw")));
        assert!(builder.clone().db(1).target().is_err(), "a cluster has only database 0");
    }

    #[test]
    fn tls_urls_parse_and_a_ca_needs_tls() {
        let builder = RedisCacheBuilder::new().url("rediss://127.0.0.1:6380/1");
        let Ok(target) = builder.target() else { panic!("rediss:// parses") };
        assert!(target.is_tls());
        let builder = RedisCacheBuilder::new().url("rediss+cluster://:pw@127.0.0.1:7000,127.0.0.1:7001");
        let Ok(Target::Cluster(nodes)) = builder.target() else { panic!("a TLS cluster") };
        assert!(nodes.iter().all(is_tls));
        let mixed = RedisCacheBuilder::new().cluster_nodes(["rediss://127.0.0.1:7000", "redis://127.0.0.1:7001"]);
        assert_eq!(mixed.target().err().map(|e| e.kind()), Some(cache_core::ErrorKind::InvalidConfig));
        let plain = RedisCacheBuilder::new().url("redis://127.0.0.1").tls_ca_pem("-----BEGIN CERTIFICATE-----");
        assert_eq!(plain.certificates(false).err().map(|e| e.kind()), Some(cache_core::ErrorKind::InvalidConfig));
        let not_pem = RedisCacheBuilder::new().tls_ca_pem("nothing here");
        assert_eq!(not_pem.certificates(true).err().map(|e| e.kind()), Some(cache_core::ErrorKind::InvalidConfig));
        let missing = RedisCacheBuilder::new().tls_ca_file("/nonexistent/ca.pem");
        let error = missing.certificates(true).err();
        assert_eq!(error.as_ref().map(|e| e.kind()), Some(cache_core::ErrorKind::InvalidConfig));
        assert!(error.is_some_and(|e| e.to_string().contains("/nonexistent/ca.pem")));
    }

    #[test]
    fn bad_settings_are_invalid_config() {
        for url in ["http://127.0.0.1", "redis://", "not a url", "redis://127.0.0.1/notanumber", "redis+cluster://"] {
            let error = RedisCacheBuilder::new().url(url).target().err().map(|error| error.kind());
            assert_eq!(error, Some(cache_core::ErrorKind::InvalidConfig), "{url}");
        }
    }
}
