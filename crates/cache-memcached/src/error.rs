//! This crate's failures, mapped onto [`cache_core::Error`] in one place.

use std::fmt;
use std::io;

use cache_core::{Error, ErrorKind};
use memcache::exp::Error as ClientError;

pub(crate) const BACKEND: &str = "memcached";

/// What went wrong inside an operation, before it is given its operation name and key.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The client failed talking to `server`.
    Client {
        server: String,
        source: ClientError,
    },
    /// The value is larger than the configured item size allows.
    TooLarge {
        len: usize,
        limit: usize,
    },
    NotAnInteger,
    Overflow,
    /// An `incr` lost compare-and-swap races until its deadline.
    Contended,
    /// The server answered something this crate does not expect.
    Unexpected {
        server: String,
        what: String,
    },
    /// The blocking task running the operation panicked or was cancelled.
    Task(tokio::task::JoinError),
    /// A builder setting that cannot work.
    Config(String),
}

impl Failure {
    pub(crate) fn client(server: &str, source: ClientError) -> Failure {
        Failure::Client { server: server.to_owned(), source }
    }

    pub(crate) fn unexpected(server: &str, what: impl Into<String>) -> Failure {
        Failure::Unexpected { server: server.to_owned(), what: what.into() }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Failure::Client { source, .. } => client_kind(source),
            Failure::TooLarge { .. } => ErrorKind::ValueTooLarge,
            Failure::NotAnInteger => ErrorKind::NotAnInteger,
            Failure::Overflow => ErrorKind::IntegerOverflow,
            Failure::Contended => ErrorKind::Timeout,
            Failure::Unexpected { .. } | Failure::Task(_) => ErrorKind::Unexpected,
            Failure::Config(_) => ErrorKind::InvalidConfig,
        }
    }

    /// The core error for `operation`, naming `key` (cut to a readable length) when there
    /// is one.
    pub(crate) fn into_core(self, operation: &'static str, key: Option<&str>) -> Error {
        let mut error = Error::new(self.kind(), BACKEND, operation);
        if let Some(key) = key {
            error = error.with_key(key);
        }
        let error = error.with_context(self.to_string());
        match self {
            Failure::Client { source, .. } => error.with_source(source),
            Failure::Task(source) => error.with_source(source),
            _ => error,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Client { server, source } => match source {
                ClientError::Ambiguous { .. } => write!(f, "server {server}; the request may have been applied"),
                _ => write!(f, "server {server}"),
            },
            Failure::TooLarge { len, limit } => write!(f, "{len} bytes, the limit is {limit}"),
            Failure::NotAnInteger => f.write_str("the stored value is not a decimal i64"),
            Failure::Overflow => f.write_str("the result does not fit an i64"),
            Failure::Contended => f.write_str("kept losing compare-and-swap races to other writers"),
            Failure::Unexpected { server, what } => write!(f, "server {server}: {what}"),
            Failure::Task(_) => f.write_str("the blocking task did not finish"),
            Failure::Config(what) => f.write_str(what),
        }
    }
}

/// What the caller can do about a client error: a connection that failed or a server that
/// is out of memory may come back (temporary); a deadline is a timeout; a server that says
/// the item is too large means the configured item size is larger than the server's.
fn client_kind(error: &ClientError) -> ErrorKind {
    match error {
        ClientError::Io(error) => match error.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ErrorKind::Timeout,
            _ => ErrorKind::Unavailable,
        },
        ClientError::Timeout { .. } => ErrorKind::Timeout,
        ClientError::Ambiguous { source, .. } => client_kind(source),
        ClientError::Server(message) if message.contains("too large") => ErrorKind::ValueTooLarge,
        ClientError::Server(message) if message.contains("out of memory") => ErrorKind::Unavailable,
        _ => ErrorKind::Unexpected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_operation_the_key_and_the_server() {
        let refused = ClientError::Io(io::Error::from(io::ErrorKind::ConnectionRefused));
        let error = Failure::client("127.0.0.1:1", refused).into_core("get", Some("user:7"));
        assert_eq!(error.kind(), ErrorKind::Unavailable);
        assert_eq!(error.to_string(), "memcached get \"user:7\": store unavailable: server 127.0.0.1:1");
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn long_keys_are_cut() {
        let error = Failure::NotAnInteger.into_core("incr", Some(&"k".repeat(10_000)));
        let text = error.to_string();
        assert!(text.len() < 200, "{text}");
        assert!(text.contains("(10000 bytes)"), "{text}");
    }

    #[test]
    fn timeouts_and_ambiguous_writes_keep_their_kind() {
        let slow = ClientError::Io(io::Error::from(io::ErrorKind::TimedOut));
        assert_eq!(client_kind(&slow), ErrorKind::Timeout);
        let ambiguous = ClientError::Ambiguous {
            key: b"k".to_vec(),
            source: Box::new(ClientError::Timeout { key: b"k".to_vec() }),
        };
        assert_eq!(client_kind(&ambiguous), ErrorKind::Timeout);
        assert_eq!(client_kind(&ClientError::Server("object too large for cache".into())), ErrorKind::ValueTooLarge);
        assert_eq!(client_kind(&ClientError::Protocol("garbage".into())), ErrorKind::Unexpected);
    }
}
