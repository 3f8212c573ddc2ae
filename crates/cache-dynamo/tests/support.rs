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
}

/// A fresh table, created by the cache, and the first cache on it.
pub async fn fresh(prefix: &str) -> DynamoCache {
    builder(&unique_table()).prefix(prefix).create_table_if_missing(true).build().await.expect("creating a table")
}
