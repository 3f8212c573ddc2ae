//! Every error this crate returns is built here: the client's failures are mapped onto
//! [`cache_core::ErrorKind`] in one place, and keys are shown truncated, never values.

use std::borrow::Cow;
use std::time::Duration;

use cache_core::{Error, ErrorKind};
use redis::{RedisError, ServerErrorKind};

pub(crate) const BACKEND: &str = "redis";

/// Redis's own reply when `INCRBY` finds a value that is not a decimal `i64`
/// (`shared.err` "value is not an integer or out of range" in Redis's `object.c`).
const NOT_AN_INTEGER: &str = "value is not an integer or out of range";
/// Redis's own reply when `INCRBY` would leave `i64` (`incrDecrCommand` in `t_string.c`).
const OVERFLOW: &str = "increment or decrement would overflow";

/// An error of `kind` from `operation`, naming `key` when there is one (cache-core
/// shows it quoted and truncated, never the value). The one constructor of the crate.
pub(crate) fn error(
    kind: ErrorKind,
    operation: &'static str,
    key: Option<&str>,
    context: impl Into<Cow<'static, str>>,
) -> Error {
    let error = Error::new(kind, BACKEND, operation).with_context(context);
    match key {
        Some(key) => error.with_key(key),
        None => error,
    }
}

/// No answer within the operation timeout (our own bound around every round trip).
pub(crate) fn timed_out(operation: &'static str, key: Option<&str>, timeout: Duration) -> Error {
    error(ErrorKind::Timeout, operation, key, format!("no answer within {timeout:?}"))
}

/// A value over Redis's limit, refused before anything is sent.
pub(crate) fn too_large(operation: &'static str, key: &str, len: usize, limit: usize) -> Error {
    error(ErrorKind::ValueTooLarge, operation, Some(key), format!("{len} bytes, the limit is {limit}"))
}

/// A builder setting or URL that cannot work. The caller passes text that holds no secret.
pub(crate) fn config(operation: &'static str, context: impl Into<Cow<'static, str>>) -> Error {
    error(ErrorKind::InvalidConfig, operation, None, context)
}

/// Maps a failure of the `redis` client onto our kinds:
///
/// - a TLS certificate the client does not trust (unknown issuer, wrong host name,
///   expired): `InvalidConfig`, since retrying cannot help; another TLS handshake failure:
///   `Unavailable`; both say what rustls found;
/// - refused, reset, closed connections and a cluster without a connection to the node:
///   `Unavailable`; so are the server's own "not now" replies (`LOADING`, `TRYAGAIN`,
///   `CLUSTERDOWN`, `MASTERDOWN`, `READONLY` during a failover): a retry may succeed;
/// - the client's I/O timeouts: `Timeout`;
/// - `INCRBY`'s two integer errors, recognised by Redis's own message: `NotAnInteger`
///   and `IntegerOverflow`;
/// - wrong credentials, missing permissions and settings the client rejects: `InvalidConfig`;
/// - any other server error reply: `Unexpected`, with the server's message as context.
///
/// The `RedisError` is kept as the source. It never holds the password: the client does
/// not put credentials in its messages, and server replies do not echo them.
pub(crate) fn from_redis(source: RedisError, operation: &'static str, key: Option<&str>) -> Error {
    let (kind, context): (ErrorKind, Cow<'static, str>) = classify(&source);
    error(kind, operation, key, context).with_source(source)
}

fn classify(source: &RedisError) -> (ErrorKind, Cow<'static, str>) {
    use redis::ErrorKind as Client;
    if source.is_timeout() {
        return (ErrorKind::Timeout, "the connection timed out".into());
    }
    if let Some(tls) = tls_failure(source) {
        return tls;
    }
    if source.is_connection_refusal() {
        return (ErrorKind::Unavailable, "connection refused".into());
    }
    if source.is_connection_dropped() || source.is_io_error() {
        return (ErrorKind::Unavailable, "the connection failed or was closed".into());
    }
    match source.kind() {
        Client::ClusterConnectionNotFound => (ErrorKind::Unavailable, "no connection to the cluster node".into()),
        Client::AuthenticationFailed => (ErrorKind::InvalidConfig, "the server refused the credentials".into()),
        Client::InvalidClientConfig => (ErrorKind::InvalidConfig, "the client rejected the settings".into()),
        Client::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask,
        ) => (ErrorKind::Unavailable, server_message(source).into()),
        Client::Server(ServerErrorKind::NoPerm) => (ErrorKind::InvalidConfig, server_message(source).into()),
        Client::Server(ServerErrorKind::ResponseError) => match reply(source).1.as_deref() {
            Some(NOT_AN_INTEGER) => (ErrorKind::NotAnInteger, "the stored value is not a decimal i64".into()),
            Some(OVERFLOW) => (ErrorKind::IntegerOverflow, "the result does not fit an i64".into()),
            _ => (ErrorKind::Unexpected, server_message(source).into()),
        },
        Client::Server(_) | Client::Extension => {
            // `WRONGPASS` and `NOAUTH` are replies to the handshake: wrong or missing credentials.
            match reply(source).0.as_deref() {
                Some("WRONGPASS" | "NOAUTH") => (ErrorKind::InvalidConfig, server_message(source).into()),
                _ => (ErrorKind::Unexpected, server_message(source).into()),
            }
        }
        _ => (ErrorKind::Unexpected, format!("client error: {}", source.category()).into()),
    }
}

/// What rustls refused, when the failure was the TLS handshake. redis-rs keeps the
/// `io::Error` tokio-rustls returned (behind an `Arc<dyn Error>`), which wraps the
/// `rustls::Error`; `io::Error::source` skips the wrapped error itself, so each link of the
/// chain is unwrapped by hand.
fn tls_failure(source: &RedisError) -> Option<(ErrorKind, Cow<'static, str>)> {
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    let mut link = std::error::Error::source(source);
    let tls = loop {
        let current = link?;
        let current = current.downcast_ref::<Shared>().map_or(current, |shared| &**shared as &dyn std::error::Error);
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            break tls;
        }
        if let Some(tls) = current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            break tls;
        }
        link = current.source();
    };
    Some(match tls {
        rustls::Error::InvalidCertificate(_) => (
            ErrorKind::InvalidConfig,
            format!("the server's TLS certificate is not trusted ({tls}): give its CA to tls_ca_file, or check the host name").into(),
        ),
        _ => (ErrorKind::Unavailable, format!("the TLS handshake failed ({tls})").into()),
    })
}

/// The code and text of the server's error reply. A failed command inside a pipeline or
/// transaction carries its reply in a list (`into_server_errors`), not in `detail()`.
fn reply(source: &RedisError) -> (Option<String>, Option<String>) {
    let first = source.clone().into_server_errors().and_then(|errors| {
        errors.first().map(|(_, error)| (Some(error.code().to_owned()), error.details().map(str::to_owned)))
    });
    first.unwrap_or_else(|| (source.code().map(str::to_owned), source.detail().map(str::to_owned)))
}

/// The server's reply as it sent it: `ERR something`, `WRONGTYPE ...`.
fn server_message(source: &RedisError) -> String {
    match reply(source) {
        (Some(code), Some(detail)) => format!("the server answered {code} {detail}"),
        (Some(code), None) => format!("the server answered {code}"),
        (None, Some(detail)) => format!("the server answered {detail}"),
        (None, None) => "the server answered with an error".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_operation_and_key() {
        let refused = error(ErrorKind::Unavailable, "get", Some("user:7"), "connection refused");
        assert_eq!(refused.to_string(), "redis get \"user:7\": store unavailable: connection refused");
        let long = error(ErrorKind::Timeout, "set", Some(&"k".repeat(10 * 1024)), "no answer");
        assert!(long.to_string().len() < 200, "a 10 KiB key must be cut: {long}");
    }

    #[test]
    fn integer_replies_map_to_their_kinds() {
        let reply = |detail: &str| {
            RedisError::from((
                redis::ErrorKind::Server(ServerErrorKind::ResponseError),
                "server error",
                detail.to_owned(),
            ))
        };
        assert_eq!(classify(&reply(NOT_AN_INTEGER)).0, ErrorKind::NotAnInteger);
        assert_eq!(classify(&reply(OVERFLOW)).0, ErrorKind::IntegerOverflow);
        let (kind, context) = classify(&reply("unknown command 'FOO'"));
        assert_eq!(kind, ErrorKind::Unexpected);
        assert!(context.contains("unknown command 'FOO'"), "{context}");
    }

    #[test]
    fn refusals_are_temporary() {
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(classify(&refused).0, ErrorKind::Unavailable);
        let timed_out = RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert_eq!(classify(&timed_out).0, ErrorKind::Timeout);
    }
}
