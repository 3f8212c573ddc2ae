//! Exit codes and the one place errors become messages on stderr.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::process::ExitCode;

/// How a command that ran ended. The numbers are the documented interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0: found, or done.
    Done,
    /// 1: a miss for `get` and `has`, like grep finding nothing.
    Miss,
}

impl Exit {
    pub(crate) fn code(self) -> ExitCode {
        match self {
            Exit::Done => ExitCode::SUCCESS,
            Exit::Miss => ExitCode::from(1),
        }
    }
}

/// Usage errors exit 2 (what clap uses for its own), store errors 3, Ctrl-C 130 as shells do.
const USAGE: u8 = 2;
const STORE: u8 = 3;
const INTERRUPTED: u8 = 130;

/// A command that could not do its job: the message for stderr and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// The user asked for something that cannot work as given (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure { code: USAGE, message: message.into() }
    }

    /// Anything else that went wrong outside a store (exit 3).
    pub(crate) fn other(message: impl Into<String>) -> Self {
        Failure { code: STORE, message: message.into() }
    }

    /// Ctrl-C; `what` says what state things were left in.
    pub(crate) fn interrupted(what: impl Into<String>) -> Self {
        Failure { code: INTERRUPTED, message: format!("interrupted: {}", what.into()) }
    }

    /// A store's error during `operation` on the store at `store` (a URL already stripped of
    /// secrets by [`crate::open::describe`]). The store's own `Display` names its backend and
    /// operation; the causes follow from `source()`. A configuration error (bad URL, unknown
    /// option, feature not built in) is a usage error; everything else is a store error.
    pub(crate) fn store(store: &str, operation: &str, error: &cache::Error) -> Self {
        let code = if error.kind() == cache::ErrorKind::InvalidConfig { USAGE } else { STORE };
        Failure { code, message: format!("{operation} on {store}: {}", chain(error)) }
    }

    /// A registry error; the registry's `Display` names its operation.
    pub(crate) fn registry(dir: &std::path::Path, error: &cache::registry::Error) -> Self {
        let code = if error.kind() == cache::registry::ErrorKind::InvalidInput { USAGE } else { STORE };
        Failure { code, message: format!("registry {}: {}", dir.display(), chain(error)) }
    }

    /// Says where this happened, before the message (`batch line 3: ...`).
    #[must_use]
    pub(crate) fn context(mut self, place: &str) -> Self {
        self.message = format!("{place}: {}", self.message);
        self
    }

    /// Prints the message and gives the exit code.
    pub(crate) fn report(self) -> ExitCode {
        eprintln!("cachectl: {}", self.message);
        ExitCode::from(self.code)
    }
}

/// `error` and every cause under it, each said once.
pub(crate) fn chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some wrappers repeat their cause in their own message; say it once.
        if !text.contains(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_error_names_store_operation_and_every_cause() {
        let cause = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let error = cache::Error::new(cache::ErrorKind::Unavailable, "redis", "get")
            .with_context("connecting to 127.0.0.1:1")
            .with_source(cause);
        let failure = Failure::store("redis://127.0.0.1:1", "get", &error);
        assert_eq!(failure.code, STORE);
        assert_eq!(
            failure.message,
            "get on redis://127.0.0.1:1: redis get: store unavailable: connecting to 127.0.0.1:1: connection refused"
        );
    }

    #[test]
    fn a_configuration_error_is_a_usage_error() {
        let error = cache::Error::new(cache::ErrorKind::InvalidConfig, "url", "open");
        assert_eq!(Failure::store("nope://", "open", &error).code, USAGE);
    }
}
