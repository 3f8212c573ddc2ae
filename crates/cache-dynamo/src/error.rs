//! Every error this crate returns is made here: the one place that maps the SDK's
//! failures onto [`ErrorKind`]s and names the operation, the key and the table.

use std::error::Error as StdError;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use cache_core::{Error, ErrorKind};

pub(crate) const BACKEND: &str = "dynamo";

/// An error of `kind` from `operation`, naming `key` when the operation has one. The
/// only constructor of this crate's errors.
pub(crate) fn error(kind: ErrorKind, operation: &'static str, key: Option<&str>, what: impl Into<String>) -> Error {
    let error = Error::new(kind, BACKEND, operation).with_context(what.into());
    match key {
        Some(key) => error.with_key(key),
        None => error,
    }
}

/// Where requests go, for messages that must say which table, region or endpoint is wrong.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) table: String,
    pub(crate) region: String,
    pub(crate) endpoint: Option<String>,
}

impl Target {
    fn describe(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("table `{}` in region `{}` at {endpoint}", self.table, self.region),
            None => format!("table `{}` in region `{}`", self.table, self.region),
        }
    }
}

/// Error codes AWS documents as throttling or a passing server fault: worth a retry.
const TEMPORARY_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "LimitExceededException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "TransactionConflictException",
];

/// Error codes that mean the credentials are missing, wrong or not allowed here.
const CREDENTIAL_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "InvalidClientTokenId",
    "ExpiredTokenException",
    "AccessDeniedException",
    "SignatureDoesNotMatch",
];

/// Maps a failed SDK call onto the contract's kinds, keeping the SDK error as `source()`.
pub(crate) fn sdk<E>(
    target: &Target,
    operation: &'static str,
    key: Option<&str>,
    failure: SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let (kind, what) = classify(target, &failure);
    error(kind, operation, key, what).with_source(failure)
}

fn classify<E: ProvideErrorMetadata>(target: &Target, failure: &SdkError<E, HttpResponse>) -> (ErrorKind, String) {
    let place = target.describe();
    match failure {
        SdkError::TimeoutError(_) => (ErrorKind::Timeout, format!("no answer in time from {place}")),
        SdkError::DispatchFailure(dispatch) if dispatch.is_timeout() => {
            (ErrorKind::Timeout, format!("no answer in time from {place}"))
        }
        SdkError::DispatchFailure(dispatch) if dispatch.is_user() => {
            (ErrorKind::InvalidConfig, format!("the request to {place} could not be sent as configured"))
        }
        SdkError::DispatchFailure(_) => (ErrorKind::Unavailable, format!("could not reach {place}")),
        // Raised before anything is sent, most often when no credentials were found.
        SdkError::ConstructionFailure(_) => {
            (ErrorKind::InvalidConfig, format!("could not build a request for {place} (are credentials configured?)"))
        }
        SdkError::ResponseError(_) => (ErrorKind::Unavailable, format!("unreadable answer from {place}")),
        SdkError::ServiceError(service) => {
            let code = failure.code().unwrap_or("");
            let status = service.raw().status().as_u16();
            if code == "ResourceNotFoundException" {
                (ErrorKind::InvalidConfig, format!("{place} does not exist (wrong table, namespace or region?)"))
            } else if CREDENTIAL_CODES.contains(&code) {
                (ErrorKind::InvalidConfig, format!("{place} refused the credentials ({code})"))
            } else if TEMPORARY_CODES.contains(&code) || status >= 500 || status == 429 {
                (ErrorKind::Unavailable, format!("{place} is throttling or failing ({code}, HTTP {status})"))
            } else {
                let message = failure.message().unwrap_or("");
                (ErrorKind::Unexpected, format!("{place} refused the request: {code}: {message}"))
            }
        }
        _ => (ErrorKind::Unexpected, format!("the request to {place} failed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_operation_and_the_key() {
        let error = error(ErrorKind::NotAnInteger, "incr", Some(&"k".repeat(10_000)), "not a number");
        let shown = error.to_string();
        assert!(shown.len() < 200, "{shown}");
        assert!(shown.starts_with("dynamo incr \"kkk"), "{shown}");
        assert!(shown.ends_with("value is not an integer: not a number"), "{shown}");
    }
}
