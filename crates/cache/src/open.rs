//! Any store from a URL: [`open`], [`open_with`] and [`from_env`].
//!
//! The URL's scheme picks the store (see the table in [`schemes`](crate::schemes)), its
//! query holds the settings. Two keys work on every scheme:
//!
//! - `prefix`: the namespace of every key (`?prefix=app:`), empty by default;
//! - `ttl`: the lifetime of entries written with [`Ttl::Default`](crate::Ttl::Default), as a
//!   humane duration (`30s`, `5m`, `1h30m`, `2days`); without it they never expire.
//!
//! Nothing is silently dropped: an unknown query key, a key given twice, a user name,
//! password, host, port, path or fragment the scheme has no use for are each an
//! [`ErrorKind::InvalidConfig`] error that names the part. A password in the URL never
//! appears in an error or in `Debug` output.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::schemes::{SCHEMES, Scheme};
use crate::{Cache, Error, ErrorKind, Result};

/// The environment variable [`from_env`] reads.
pub const CACHE_URL: &str = "CACHE_URL";

/// The query keys every scheme accepts.
pub const COMMON_KEYS: [&str; 2] = ["prefix", "ttl"];

/// A store opening: what a scheme's entry in the table returns.
pub type OpenFuture = Pin<Box<dyn Future<Output = Result<Arc<dyn Cache>>> + Send>>;

/// Opens the store `url` names.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(async {
/// use cache::{CacheExt, Ttl};
///
/// let cache = cache::open("memory://?max_capacity=1000&policy=lru&prefix=app:&ttl=5m").await?;
/// cache.set_as("answer", &42, Ttl::Default).await?;
/// assert_eq!(cache.get_as::<i32>("answer").await?, Some(42));
///
/// let error = cache::open("memory://?max_capacty=1000").await.unwrap_err();
/// assert_eq!(error.kind(), cache::ErrorKind::InvalidConfig);
/// # Ok::<(), cache::Error>(())
/// # }).expect("example");
/// ```
///
/// # Errors
/// [`ErrorKind::InvalidConfig`] for a malformed URL, an unknown scheme, a scheme whose
/// cargo feature is off, an unknown or repeated query key or a value the store cannot
/// use; otherwise whatever building the store returns (for example
/// [`ErrorKind::Unavailable`] when a server cannot be reached).
pub async fn open(url: &str) -> Result<Arc<dyn Cache>> {
    open_with(url, OpenOptions::new()).await
}

/// Opens the store `url` names, with settings given in code as well.
///
/// A setting may come from the URL or from `options`, not both: giving it twice is an
/// error rather than one silently winning.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(async {
/// use std::time::Duration;
/// use cache::OpenOptions;
///
/// let options = OpenOptions::new().prefix("sessions:").default_ttl(Duration::from_secs(60));
/// let sessions = cache::open_with("memory://", options).await?;
/// assert!(sessions.get("nobody").await?.is_none());
/// # Ok::<(), cache::Error>(())
/// # }).expect("example");
/// ```
///
/// # Errors
/// As [`open`], and [`ErrorKind::InvalidConfig`] when a setting is in both.
pub async fn open_with(url: &str, options: OpenOptions) -> Result<Arc<dyn Cache>> {
    let (scheme, store_url) = parse(url, options)?;
    match scheme.open {
        Some(open) => open(store_url).await,
        None => Err(feature_off(scheme)),
    }
}

/// Opens the store named by the `CACHE_URL` environment variable, for twelve-factor apps.
///
/// # Errors
/// [`ErrorKind::InvalidConfig`] when `CACHE_URL` is not set or not UTF-8, and as [`open`].
pub async fn from_env() -> Result<Arc<dyn Cache>> {
    let url = std::env::var(CACHE_URL)
        .map_err(|error| invalid("cache", format!("{CACHE_URL} must hold a cache URL such as memory:// ({error})")))?;
    open(&url).await
}

/// Settings for [`open_with`] that apply to every scheme.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
#[must_use]
pub struct OpenOptions {
    prefix: Option<String>,
    default_ttl: Option<Duration>,
}

impl OpenOptions {
    /// No settings: everything comes from the URL.
    pub fn new() -> Self {
        Self::default()
    }

    /// The namespace of every key, as the URL's `prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// The lifetime of entries written with [`Ttl::Default`](crate::Ttl::Default), as the
    /// URL's `ttl`.
    pub fn default_ttl(mut self, lifetime: Duration) -> Self {
        self.default_ttl = Some(lifetime);
        self
    }
}

/// A parsed, checked cache URL as a scheme's opener receives it.
///
/// The common settings are parsed already; the scheme's own query keys are checked
/// against its table entry and read with [`take`](Self::take) or
/// [`take_parsed`](Self::take_parsed).
pub struct StoreUrl {
    scheme: &'static str,
    url: Url,
    hosts: Vec<String>,
    prefix: String,
    default_ttl: Option<Duration>,
    params: BTreeMap<String, String>,
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreUrl")
            .field("url", &redacted(&self.url))
            .field("hosts", &self.hosts)
            .field("prefix", &self.prefix)
            .field("default_ttl", &self.default_ttl)
            .field("params", &self.params)
            .finish()
    }
}

impl StoreUrl {
    /// Parses and checks `url` as [`open`] does, without building the store.
    ///
    /// # Errors
    /// As [`open`] before the store is built.
    pub fn parse(url: &str) -> Result<StoreUrl> {
        parse(url, OpenOptions::new()).map(|(_, store_url)| store_url)
    }

    /// The scheme, such as `"memory"` or `"redis+cluster"`.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// The URL without its query (credentials included, for the store's own client).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Every `host:port` of a multi-host URL (`redis+cluster://h1:7000,h2:7001`), in the
    /// order given; [`url`](Self::url) holds the first. Empty for a URL with one host or none.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The namespace of every key (`""` = none).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The lifetime of entries written with `Ttl::Default`; `None` = never expire.
    pub fn default_ttl(&self) -> Option<Duration> {
        self.default_ttl
    }

    /// Removes and returns the scheme's own query setting `key`.
    pub fn take(&mut self, key: &str) -> Option<String> {
        self.params.remove(key)
    }

    /// Removes and parses the scheme's own query setting `key`; `what` says what it
    /// should be, for the error (`"a positive integer"`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`] naming the key and the value when it does not parse.
    pub fn take_parsed<T: FromStr>(&mut self, key: &str, what: &str) -> Result<Option<T>> {
        match self.take(key) {
            None => Ok(None),
            Some(value) => value.parse().map(Some).map_err(|_| self.bad_value(key, &value, what)),
        }
    }

    /// The error for a query setting whose value the store cannot use.
    pub fn bad_value(&self, key: &str, value: &str, what: &str) -> Error {
        invalid(self.scheme, format!("query key {key}={value:?}: expected {what}"))
    }

    /// An error about this URL that is not about one query key (a missing host, ...).
    pub fn invalid(&self, why: impl Into<String>) -> Error {
        invalid(self.scheme, why.into())
    }

    /// Fails if a query setting was left unread: the table listed a key the opener did
    /// not use, which would drop it silently.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`] naming the keys left.
    pub fn finish(&self) -> Result<()> {
        if self.params.is_empty() {
            return Ok(());
        }
        let left: Vec<&str> = self.params.keys().map(String::as_str).collect();
        Err(invalid(self.scheme, format!("query keys not supported by this build: {}", left.join(", "))))
    }
}

/// Parses and checks `text` up to the point where the store is built.
pub(crate) fn parse(text: &str, options: OpenOptions) -> Result<(&'static Scheme, StoreUrl)> {
    // The scheme first: a typo in it, or a store not in this build, deserves its own
    // message before anything the scheme would have checked.
    let scheme_text = text.split_once(':').map_or(text, |(scheme, _)| scheme).to_ascii_lowercase();
    let scheme = match SCHEMES.iter().find(|scheme| scheme.name == scheme_text) {
        Some(scheme) => scheme,
        None => {
            // Parsing names what is wrong when it is not only the scheme.
            Url::parse(text).map_err(|error| malformed(None, text, error))?;
            let known: Vec<String> = SCHEMES.iter().map(|scheme| format!("{}://", scheme.name)).collect();
            return Err(invalid(
                "cache",
                format!("unknown scheme {scheme_text:?}; known schemes: {}", known.join(", ")),
            ));
        }
    };
    if scheme.open.is_none() {
        return Err(feature_off(scheme));
    }
    let (single, hosts) = split_hosts(scheme, text)?;
    let url = Url::parse(&single).map_err(|error| malformed(Some(scheme.name), text, error))?;
    if let Some(fragment) = url.fragment() {
        return Err(invalid(scheme.name, format!("a URL fragment (#{fragment}) means nothing here; remove it")));
    }

    let mut prefix = None;
    let mut default_ttl = None;
    let mut params = BTreeMap::new();
    let mut seen = Vec::new();
    for (key, value) in url.query_pairs() {
        if seen.contains(&key) {
            return Err(invalid(scheme.name, format!("query key {key} is given twice")));
        }
        seen.push(key.clone());
        match &*key {
            "prefix" => prefix = Some(value.into_owned()),
            "ttl" => default_ttl = Some(parse_ttl(scheme.name, &value)?),
            other if scheme.keys.contains(&other) => {
                params.insert(key.into_owned(), value.into_owned());
            }
            other => {
                let valid: Vec<&str> = COMMON_KEYS.iter().chain(scheme.keys).copied().collect();
                return Err(invalid(
                    scheme.name,
                    format!("unknown query key {other:?}; valid keys for {}:// are {}", scheme.name, valid.join(", ")),
                ));
            }
        }
    }
    let prefix = merge(scheme.name, "prefix", prefix, options.prefix)?.unwrap_or_default();
    let default_ttl = merge(scheme.name, "ttl", default_ttl, options.default_ttl)?;

    let mut url = url;
    url.set_query(None);
    Ok((scheme, StoreUrl { scheme: scheme.name, url, hosts, prefix, default_ttl, params }))
}

/// One setting from the URL or from the options, never both.
fn merge<T>(scheme: &'static str, key: &str, from_url: Option<T>, from_options: Option<T>) -> Result<Option<T>> {
    match (from_url, from_options) {
        (Some(_), Some(_)) => {
            Err(invalid(scheme, format!("{key} is set both in the URL and in OpenOptions; set it in one place")))
        }
        (from_url, from_options) => Ok(from_url.or(from_options)),
    }
}

/// A humane, positive duration: `30s`, `5m`, `1h30m`, `250ms`, `2days`.
fn parse_ttl(scheme: &'static str, value: &str) -> Result<Duration> {
    let bad = |why: String| invalid(scheme, format!("query key ttl={value:?}: {why}"));
    let lifetime = humantime::parse_duration(value)
        .map_err(|error| bad(format!("expected a duration such as 30s, 5m or 1h30m ({error})")))?;
    if lifetime.is_zero() {
        return Err(bad("a zero lifetime would expire every entry at once; leave ttl out for no expiry".into()));
    }
    Ok(lifetime)
}

/// Splits a multi-host authority (`h1:7000,h2:7001`, which `url` cannot parse) into the
/// URL text with only the first host and the list of all hosts, each checked by `url`.
fn split_hosts(scheme: &'static Scheme, text: &str) -> Result<(String, Vec<String>)> {
    let Some((head, rest)) = text.split_once("://") else { return Ok((text.to_owned(), Vec::new())) };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, host_list) = match authority.rsplit_once('@') {
        Some((userinfo, host_list)) => (Some(userinfo), host_list),
        None => (None, authority),
    };
    if !host_list.contains(',') {
        return Ok((text.to_owned(), Vec::new()));
    }
    let mut hosts = Vec::new();
    for (index, host) in host_list.split(',').enumerate() {
        let number = index + 1;
        if host.is_empty() {
            return Err(invalid(scheme.name, format!("host number {number} of the host list is empty")));
        }
        let parsed = Url::parse(&format!("{}://{host}", scheme.name)).map_err(|error| {
            invalid(scheme.name, format!("host number {number} ({:?}) of the host list: {error}", shorten(host)))
                .with_source(error)
        })?;
        if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
            return Err(invalid(scheme.name, format!("host number {number} ({:?}) is not host:port", shorten(host))));
        }
        hosts.push(host.to_owned());
    }
    let first = userinfo.map_or_else(|| hosts[0].clone(), |userinfo| format!("{userinfo}@{}", hosts[0]));
    Ok((format!("{head}://{first}{tail}"), hosts))
}

fn malformed(scheme: Option<&'static str>, text: &str, error: url::ParseError) -> Error {
    // `url` says what is wrong but not where; name the part it was parsing.
    let part = match error {
        url::ParseError::RelativeUrlWithoutBase => {
            // Echoed only when it cannot hold credentials.
            let shown = if text.contains('@') { String::new() } else { format!(" {:?}", shorten(text)) };
            return invalid(
                "cache",
                format!("malformed URL{shown}: no scheme; start with one such as memory:// or file:///"),
            );
        }
        url::ParseError::InvalidPort => "the port",
        url::ParseError::EmptyHost | url::ParseError::InvalidDomainCharacter | url::ParseError::IdnaError => "the host",
        url::ParseError::InvalidIpv4Address | url::ParseError::InvalidIpv6Address => "the host address",
        _ => "the URL",
    };
    // The text may hold a password: show only the scheme.
    let shown = text.split_once(':').map_or("", |(scheme, _)| scheme);
    invalid(scheme.unwrap_or("cache"), format!("malformed {shown}:// URL: {part}: {error}")).with_source(error)
}

/// The error for a scheme whose cargo feature is off.
fn feature_off(scheme: &Scheme) -> Error {
    invalid(
        scheme.name,
        format!(
            "the {}:// scheme needs the cargo feature {:?} of the cache crate, which is off in this build \
             (cache = {{ features = [{:?}] }})",
            scheme.name, scheme.feature, scheme.feature
        ),
    )
}

pub(crate) fn invalid(backend: &'static str, why: String) -> Error {
    Error::new(ErrorKind::InvalidConfig, backend, "open").with_context(why)
}

/// The URL with any password replaced, for messages.
fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Only fails on URLs that cannot have credentials, which then have none.
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// At most 60 characters of user input, for messages.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheme(name: &str) -> &'static Scheme {
        SCHEMES.iter().find(|scheme| scheme.name == name).expect("a scheme in the table")
    }

    #[test]
    fn host_lists_keep_credentials_and_every_host() {
        let (first, hosts) =
            split_hosts(scheme("redis+cluster"), "redis+cluster://:pw@h1:7000,h2:7001,[::1]:7002/0?prefix=a")
                .expect("split");
        assert_eq!(first, "redis+cluster://:pw@h1:7000/0?prefix=a");
        assert_eq!(hosts, ["h1:7000", "h2:7001", "[::1]:7002"]);
        let (same, none) = split_hosts(scheme("redis"), "redis://h1:7000/0").expect("split");
        assert_eq!((same.as_str(), none.len()), ("redis://h1:7000/0", 0));
    }

    #[test]
    fn a_password_never_reaches_debug() {
        let url = Url::parse("redis://user:hunter2@h:1/0").expect("url");
        let store_url = StoreUrl {
            scheme: "redis",
            url,
            hosts: Vec::new(),
            prefix: String::new(),
            default_ttl: None,
            params: BTreeMap::new(),
        };
        let shown = format!("{store_url:?}");
        assert!(!shown.contains("hunter2") && shown.contains("***"), "{shown}");
    }
}
