//! What every test file against the DynamoDB emulator shares.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use cache_dynamo::{DynamoCache, DynamoCacheBuilder};

/// The emulator's address, exported by `cargo xtask test` (or `servers up dynamodb`).
pub fn endpoint() -> String {
    std::env::var("CACHE_TEST_DYNAMO_ENDPOINT").unwrap_or_else(|_| {
        panic!("CACHE_TEST_DYNAMO_ENDPOINT is not set: run `cargo xtask test`, or `eval \"$(cargo xtask servers up dynamodb)\"`")
    })
}

/// A table name no other test uses.
pub fn unique_table() -> String {
    let unique = cache_core::testkit::unique_prefix();
    format!("cache-test-{}", unique.trim_end_matches(':'))
}

/// A builder pointed at the emulator with dummy credentials. moto answers about 125
/// requests a second, one at a time, so a 50-task race queues for seconds: the
/// timeouts here are generous where the defaults suit a real service.
pub fn builder(table: &str) -> DynamoCacheBuilder {
    DynamoCache::builder(table)
        .endpoint_url(endpoint())
        .region("us-east-1")
        .credentials("test-access-key", "test-secret-key")
        .attempt_timeout(Duration::from_secs(30))
        .operation_timeout(Duration::from_secs(60))
        .batch_deadline(Duration::from_secs(60))
        .max_value_len(MOTO_MAX_VALUE)
}

/// moto caps an item at 405,000 bytes where DynamoDB allows 409,600, so less fits there:
/// 405,000 less the longest key and the names (about 1,100 bytes), rounded down.
pub const MOTO_MAX_VALUE: usize = 403_000;

/// A fresh table, created by the cache, and the first cache on it.
pub async fn fresh(prefix: &str) -> DynamoCache {
    builder(&unique_table()).prefix(prefix).create_table_if_missing(true).build().await.expect("creating a table")
}

/// Counts the HTTP requests a client sends, by DynamoDB operation (`GetItem`,
/// `BatchGetItem`, ...), read from each request's `X-Amz-Target` header.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    sent: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RequestCounter {
    /// The operations sent so far, in order, and forgets them.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.sent.lock().expect("counter lock"))
    }
}

impl aws_sdk_dynamodb::config::Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or("?");
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        self.sent.lock().expect("counter lock").push(operation);
        Ok(())
    }
}

/// A plain SDK client for the emulator, with `counter` watching every request.
pub fn sdk_client(counter: &RequestCounter) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::v2025_08_07())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(Credentials::new("test-access-key", "test-secret-key", None, None, "tests"))
        .interceptor(counter.clone())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}
