//! The cache-core fault suite on `DynamoCache`: latency, resets and black holes injected
//! by a loopback proxy in front of the DynamoDB emulator. Every call must return within
//! its operation timeout (plus a margin) with a temporary error or a right value, and the
//! same cache must recover by itself.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use cache_core::testkit::fault::FaultHarness;
use cache_dynamo::DynamoCache;

struct DynamoFaults;

impl FaultHarness for DynamoFaults {
    type Cache = DynamoCache;

    fn upstream() -> SocketAddr {
        let endpoint = support::endpoint();
        let authority = endpoint.strip_prefix("http://").unwrap_or(&endpoint).trim_end_matches('/');
        authority
            .parse()
            .unwrap_or_else(|error| panic!("CACHE_TEST_DYNAMO_ENDPOINT={endpoint} is not http://<ip>:<port>: {error}"))
    }

    async fn open(addr: SocketAddr, prefix: &str, timeout: Duration) -> DynamoCache {
        // One table per cache: the emulator keeps every table, and a fresh one keeps each
        // behaviour's keys apart from every other test's.
        support::builder(&support::unique_table())
            .endpoint_url(format!("http://{addr}"))
            .prefix(prefix)
            .create_table_if_missing(true)
            .connect_timeout(timeout)
            .attempt_timeout(timeout)
            .operation_timeout(timeout)
            .build()
            .await
            .unwrap_or_else(|error| panic!("building a DynamoCache through the fault proxy at {addr}: {error}"))
    }
}

cache_core::fault_tests!(DynamoFaults, #[ignore = "needs dynamodb: cargo xtask test"]);
