//! The cache-core conformance suite on `DynamoCache` against the emulator: each harness
//! is a fresh table, and caches opened on it with different prefixes share it.

mod support;

use cache_core::testkit::Harness;
use cache_dynamo::DynamoCache;

struct DynamoHarness {
    table: String,
}

impl Harness for DynamoHarness {
    type Cache = DynamoCache;

    async fn isolated() -> Self {
        let table = support::unique_table();
        support::builder(&table).create_table_if_missing(true).build().await.expect("creating the harness table");
        DynamoHarness { table }
    }

    async fn open(&self, prefix: &str) -> DynamoCache {
        support::builder(&self.table).prefix(prefix).build().await.expect("opening a DynamoCache")
    }
}

cache_core::conformance_tests!(DynamoHarness, #[ignore = "needs dynamodb: cargo xtask test"]);
