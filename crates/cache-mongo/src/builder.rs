//! `MongoCacheBuilder`: where the cache lives and how long it waits.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cache_core::{Error, Result};
use mongodb::bson::{Document, doc};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, IndexModel};

use crate::document::EXPIRES_AT;
use crate::error::{Failure, Secrets, is_index_conflict};
use crate::{Inner, MongoCache};

/// Database used when none is set.
pub const DEFAULT_DATABASE: &str = "cache";
/// Collection used when none is set.
pub const DEFAULT_COLLECTION: &str = "cache";

/// How long opening a TCP (and TLS) connection may take. A reachable server answers in
/// milliseconds on a LAN and well under a second across regions; the driver's own
/// default (10 s) would hold a caller's request that long when a host is black-holed.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an operation waits for a usable server. The driver's default (30 s) suits a
/// database; a cache on a request path is better off failing fast and treating the
/// call as a miss. Shorter than the operation timeout, so a server that is down
/// reports `Unavailable` (its real state) rather than `Timeout`.
pub const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(2);
/// The most any one call may take, from start to answer, including waiting for a pooled
/// connection and the driver's single retry. A 16 MiB value crosses a slow link in
/// well under that; an answer later than this is worth less than a miss.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(3);

/// How often the driver checks each server's health (unless the URI says
/// `heartbeatFrequencyMS`). The driver's default of 10 s means a server that stops
/// answering is noticed only after the connect timeout plus 10 s, and until then every call
/// waits for its own timeout; and a stall noticed that late can clear the connection pool
/// after the network has already come back. A check is one small `hello` per server.
pub const DEFAULT_HEARTBEAT_FREQUENCY: Duration = Duration::from_secs(2);

/// How many connections the client may open to each server. The Rust driver's own
/// default is 10, which queues a busy service's cache calls behind each other (and, on a
/// slow link, behind each other's round trips); MongoDB's other official drivers default
/// to 100, and a cache's requests are small and many.
pub const DEFAULT_MAX_POOL_SIZE: u32 = 100;
/// How many connections the client may be opening at once. The driver's default of 2
/// spreads a burst's connection storm thin; a cache in a burst needs its connections
/// now, or every call waits out the handshakes of the ones before it.
pub const DEFAULT_MAX_CONNECTING: u32 = 16;

/// Environment variables read by [`MongoCacheBuilder::from_env`].
pub const ENV_URL: &str = "CACHE_MONGO_URL";
/// See [`ENV_URL`].
pub const ENV_DATABASE: &str = "CACHE_MONGO_DATABASE";
/// See [`ENV_URL`].
pub const ENV_COLLECTION: &str = "CACHE_MONGO_COLLECTION";
/// See [`ENV_URL`].
pub const ENV_PREFIX: &str = "CACHE_MONGO_PREFIX";
/// See [`ENV_URL`]: the default lifetime in whole seconds.
pub const ENV_DEFAULT_TTL_SECS: &str = "CACHE_MONGO_DEFAULT_TTL_SECS";

#[derive(Clone)]
enum Connection {
    None,
    Uri(String),
    Client(Client),
}

/// Settings for a [`MongoCache`]; see [`MongoCache::builder`].
///
/// `Debug` shows the URI's scheme and hosts only: user, password and options (which
/// may hold key-file passwords) are left out.
#[derive(Clone)]
#[must_use]
pub struct MongoCacheBuilder {
    connection: Connection,
    database: String,
    collection: String,
    prefix: String,
    default_ttl: Option<Duration>,
    connect_timeout: Option<Duration>,
    server_selection_timeout: Option<Duration>,
    operation_timeout: Duration,
    max_pool_size: Option<u32>,
}

impl Default for MongoCacheBuilder {
    fn default() -> Self {
        MongoCacheBuilder::new()
    }
}

impl fmt::Debug for MongoCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let connection = match &self.connection {
            Connection::None => "none".to_owned(),
            Connection::Uri(uri) => redacted(uri),
            Connection::Client(_) => "an existing client".to_owned(),
        };
        f.debug_struct("MongoCacheBuilder")
            .field("connection", &connection)
            .field("database", &self.database)
            .field("collection", &self.collection)
            .field("prefix", &self.prefix)
            .field("default_ttl", &self.default_ttl)
            .field("connect_timeout", &self.connect_timeout)
            .field("server_selection_timeout", &self.server_selection_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("max_pool_size", &self.max_pool_size)
            .finish()
    }
}

impl MongoCacheBuilder {
    /// A builder with no connection yet: set one with [`uri`](Self::uri) or
    /// [`client`](Self::client).
    pub fn new() -> Self {
        MongoCacheBuilder {
            connection: Connection::None,
            database: DEFAULT_DATABASE.to_owned(),
            collection: DEFAULT_COLLECTION.to_owned(),
            prefix: String::new(),
            default_ttl: None,
            connect_timeout: None,
            server_selection_timeout: None,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            max_pool_size: None,
        }
    }

    /// A builder from the environment: `CACHE_MONGO_URL` (required), and optionally
    /// `CACHE_MONGO_DATABASE`, `CACHE_MONGO_COLLECTION`, `CACHE_MONGO_PREFIX` and
    /// `CACHE_MONGO_DEFAULT_TTL_SECS`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`](cache_core::ErrorKind::InvalidConfig) when the URL is
    /// missing or a variable is not valid Unicode or not a number where one is expected.
    pub fn from_env() -> Result<Self> {
        let var = |name: &'static str| match std::env::var(name) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(config(format!("{name} is not valid Unicode"))),
        };
        let url = var(ENV_URL)?.ok_or_else(|| config(format!("{ENV_URL} is not set")))?;
        let mut builder = MongoCacheBuilder::new().uri(url);
        if let Some(database) = var(ENV_DATABASE)? {
            builder = builder.database(database);
        }
        if let Some(collection) = var(ENV_COLLECTION)? {
            builder = builder.collection(collection);
        }
        if let Some(prefix) = var(ENV_PREFIX)? {
            builder = builder.prefix(prefix);
        }
        if let Some(secs) = var(ENV_DEFAULT_TTL_SECS)? {
            let secs: u64 = secs
                .trim()
                .parse()
                .map_err(|_| config(format!("{ENV_DEFAULT_TTL_SECS} is not a whole number of seconds: {secs:?}")))?;
            builder = builder.default_ttl(Duration::from_secs(secs));
        }
        Ok(builder)
    }

    /// Connect with a connection string (`mongodb://` or `mongodb+srv://`); options in
    /// it (`connectTimeoutMS`, `serverSelectionTimeoutMS`, TLS, credentials, ...) apply
    /// unless a setter here overrides them.
    pub fn uri(mut self, uri: impl Into<String>) -> Self {
        self.connection = Connection::Uri(uri.into());
        self
    }

    /// Use an existing client (and its pool, credentials and timeouts): the connect and
    /// server-selection timeouts set here are then ignored, the operation timeout applies.
    pub fn client(mut self, client: Client) -> Self {
        self.connection = Connection::Client(client);
        self
    }

    /// The database (default `cache`).
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = database.into();
        self
    }

    /// The collection (default `cache`). One collection can hold many caches, each
    /// under its own prefix.
    pub fn collection(mut self, collection: impl Into<String>) -> Self {
        self.collection = collection.into();
        self
    }

    /// The namespace of this cache's keys: a key `k` is the document `_id` `prefix + k`
    /// (default: none).
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

    /// How long opening a connection may take (default
    /// [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long an operation waits for a reachable server (default
    /// [`DEFAULT_SERVER_SELECTION_TIMEOUT`]).
    pub fn server_selection_timeout(mut self, timeout: Duration) -> Self {
        self.server_selection_timeout = Some(timeout);
        self
    }

    /// The most one call may take before it fails with
    /// [`ErrorKind::Timeout`](cache_core::ErrorKind::Timeout) (default
    /// [`DEFAULT_OPERATION_TIMEOUT`]); `build` is bounded by it too.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// The most connections the client opens to each server (default
    /// [`DEFAULT_MAX_POOL_SIZE`], or the URI's `maxPoolSize`); ignored with an existing
    /// client.
    pub fn max_pool_size(mut self, connections: u32) -> Self {
        self.max_pool_size = Some(connections);
        self
    }

    /// Connects, creates the TTL index on `expires_at` (`expireAfterSeconds: 0`) if it is
    /// not there, and returns the cache. Building again on the same collection is fine.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`](cache_core::ErrorKind::InvalidConfig) for no or a bad
    /// URI, empty names, refused credentials, or an `expires_at` index with other
    /// options; [`ErrorKind::Unavailable`](cache_core::ErrorKind::Unavailable) or
    /// [`ErrorKind::Timeout`](cache_core::ErrorKind::Timeout) when the server cannot be
    /// reached in time.
    pub async fn build(self) -> Result<MongoCache> {
        let secrets = match &self.connection {
            Connection::Uri(uri) => Secrets::new(uri_secrets(uri)),
            _ => Secrets::default(),
        };
        let timeout = self.operation_timeout;
        let built = tokio::time::timeout(timeout, self.connect(secrets.clone())).await;
        match built {
            Ok(Ok(cache)) => Ok(cache),
            Ok(Err(failure)) => Err(failure.into_core("build", None, &secrets)),
            Err(_) => Err(Failure::Elapsed(timeout).into_core("build", None, &secrets)),
        }
    }

    async fn connect(self, secrets: Secrets) -> std::result::Result<MongoCache, Failure> {
        if self.database.is_empty() || self.collection.is_empty() {
            return Err(Failure::Config("the database and collection names must not be empty".to_owned()));
        }
        let (client, location) = match self.connection {
            Connection::None => {
                return Err(Failure::Config("no connection: set a URI or an existing client".to_owned()));
            }
            Connection::Client(client) => (client, "an existing client".to_owned()),
            Connection::Uri(uri) => {
                let mut options = ClientOptions::parse(&uri).await?;
                options.connect_timeout =
                    self.connect_timeout.or(options.connect_timeout).or(Some(DEFAULT_CONNECT_TIMEOUT));
                options.server_selection_timeout = self
                    .server_selection_timeout
                    .or(options.server_selection_timeout)
                    .or(Some(DEFAULT_SERVER_SELECTION_TIMEOUT));
                options.max_pool_size = self.max_pool_size.or(options.max_pool_size).or(Some(DEFAULT_MAX_POOL_SIZE));
                options.max_connecting = options.max_connecting.or(Some(DEFAULT_MAX_CONNECTING));
                options.heartbeat_freq = options.heartbeat_freq.or(Some(DEFAULT_HEARTBEAT_FREQUENCY));
                options.app_name.get_or_insert_with(|| "cache-mongo".to_owned());
                (Client::with_options(options)?, redacted(&uri))
            }
        };
        let collection = client.database(&self.database).collection::<Document>(&self.collection);
        let index = IndexModel::builder()
            .keys(doc! { EXPIRES_AT: 1 })
            .options(IndexOptions::builder().expire_after(Duration::ZERO).build())
            .build();
        if let Err(error) = collection.create_index(index).await {
            if is_index_conflict(&error) {
                return Err(Failure::Config(format!(
                    "collection {}.{} already has an index on {EXPIRES_AT} with other options; \
                     this cache needs {{{EXPIRES_AT}: 1}} with expireAfterSeconds 0",
                    self.database, self.collection
                )));
            }
            return Err(error.into());
        }
        Ok(MongoCache {
            inner: Arc::new(Inner {
                collection,
                database: self.database,
                location,
                prefix: self.prefix,
                default_ttl: self.default_ttl,
                operation_timeout: self.operation_timeout,
                secrets,
            }),
        })
    }
}

fn config(what: String) -> Error {
    Failure::Config(what).into_core("build", None, &Secrets::default())
}

/// The URI as it may be shown: scheme and hosts, without user, password, path or options.
pub(crate) fn redacted(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return "<not a mongodb:// URI>".to_owned();
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, hosts)| hosts);
    format!("{scheme}://{hosts}")
}

/// The secrets a URI carries: the password (as written and percent-decoded) and the
/// values of options that hold passwords or mechanism properties.
fn uri_secrets(uri: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        if let Some((_, password)) = userinfo.split_once(':') {
            secrets.push(password.to_owned());
            secrets.push(percent_decoded(password));
        }
    }
    if let Some((_, query)) = rest.split_once('?') {
        for pair in query.split('&') {
            if let Some((name, value)) = pair.split_once('=') {
                let name = name.to_ascii_lowercase();
                if name.contains("password") || name == "authmechanismproperties" {
                    secrets.push(value.to_owned());
                    secrets.push(percent_decoded(value));
                }
            }
        }
    }
    secrets
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes.get(index + 1..index + 3).and_then(|hex| std::str::from_utf8(hex).ok());
        match (bytes[index], hex.and_then(|hex| u8::from_str_radix(hex, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                index += 3;
            }
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_credentials() {
        let builder = MongoCacheBuilder::new()
            .uri("mongodb://ada:s3cr%40t@db1:27017,db2/admin?tlsCertificateKeyFilePassword=pw2&replicaSet=rs");
        let shown = format!("{builder:?}");
        assert!(shown.contains("mongodb://db1:27017,db2"), "{shown}");
        for secret in ["ada", "s3cr", "pw2", "admin"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
    }

    #[test]
    fn secrets_are_found_as_written_and_decoded() {
        let secrets = uri_secrets("mongodb://ada:s3cr%40t@db1/?authMechanismProperties=AWS_SESSION_TOKEN:tok");
        assert!(secrets.contains(&"s3cr%40t".to_owned()));
        assert!(secrets.contains(&"s3cr@t".to_owned()));
        assert!(secrets.contains(&"AWS_SESSION_TOKEN:tok".to_owned()));
        assert!(uri_secrets("mongodb://db1:27017").is_empty());
    }

    #[test]
    fn redaction_keeps_scheme_and_hosts() {
        assert_eq!(
            redacted("mongodb+srv://u:p@cluster0.example.net/?retryWrites=true"),
            "mongodb+srv://cluster0.example.net"
        );
        assert_eq!(redacted("mongodb://h:1"), "mongodb://h:1");
        assert_eq!(redacted("h:1"), "<not a mongodb:// URI>");
    }

    #[test]
    fn percent_decoding_leaves_broken_escapes_alone() {
        assert_eq!(percent_decoded("a%41%zz%"), "aA%zz%");
    }

    #[tokio::test]
    async fn building_without_a_connection_is_invalid_config() {
        let error = MongoCacheBuilder::new().build().await.expect_err("no connection");
        assert_eq!(error.kind(), cache_core::ErrorKind::InvalidConfig);
        assert!(error.to_string().contains("no connection"), "{error}");
        let error =
            MongoCacheBuilder::new().uri("mongodb://127.0.0.1:1").collection("").build().await.expect_err("empty");
        assert_eq!(error.kind(), cache_core::ErrorKind::InvalidConfig);
    }

    #[tokio::test]
    async fn a_bad_uri_is_invalid_config_without_its_password() {
        let error = MongoCacheBuilder::new().uri("mongodb://ada:hunter2@/nohost").build().await.expect_err("bad URI");
        assert_eq!(error.kind(), cache_core::ErrorKind::InvalidConfig);
        let mut chain = format!("{error} {error:?}");
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            chain.push_str(&format!(" {cause} {cause:?}"));
            source = cause.source();
        }
        assert!(!chain.contains("hunter2"), "{chain}");
    }
}
