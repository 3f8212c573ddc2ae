//! The cache-core conformance suite on `MongoCache`, against the MongoDB-wire server that
//! `cargo xtask test` starts. Each harness is a collection of its own, so tests never see
//! each other's documents; caches opened on it share one client, as handles of one
//! application would.

use cache_core::testkit::Harness;
use cache_mongo::MongoCache;

mod support;

struct MongoHarness {
    client: mongodb::Client,
    collection: String,
}

impl Harness for MongoHarness {
    type Cache = MongoCache;

    async fn isolated() -> Self {
        MongoHarness { client: support::client().await, collection: support::unique_collection() }
    }

    async fn open(&self, prefix: &str) -> MongoCache {
        MongoCache::builder()
            .client(self.client.clone())
            .database(support::DATABASE)
            .collection(&self.collection)
            .prefix(prefix)
            .operation_timeout(support::PATIENT)
            .build()
            .await
            .expect("building a MongoCache")
    }
}

cache_core::conformance_tests!(MongoHarness, #[ignore = "needs mongodb: cargo xtask test"]);
