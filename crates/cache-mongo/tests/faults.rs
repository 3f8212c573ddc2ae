//! The cache-core fault suite on `MongoCache`: latency, resets and black holes injected by
//! a loopback proxy in front of the test server. Every call must return within its
//! operation timeout (plus a margin) with a temporary error or a right value, and the same
//! cache must recover by itself.

use std::net::SocketAddr;
use std::time::Duration;

use cache_core::testkit::fault::FaultHarness;
use cache_mongo::MongoCache;

mod support;

struct MongoFaults;

impl FaultHarness for MongoFaults {
    type Cache = MongoCache;

    fn upstream() -> SocketAddr {
        support::socket_addr()
    }

    async fn open(addr: SocketAddr, prefix: &str, timeout: Duration) -> MongoCache {
        // A direct connection: the proxy's address is the only one the driver may use
        // (the server's `hello` names its real port, which would bypass the proxy).
        MongoCache::builder()
            .uri(format!("mongodb://{addr}/?directConnection=true"))
            .database(support::DATABASE)
            .collection(support::unique_collection())
            .prefix(prefix)
            .connect_timeout(timeout)
            .server_selection_timeout(timeout)
            .operation_timeout(timeout)
            .build()
            .await
            .expect("building a MongoCache through the fault proxy")
    }
}

cache_core::fault_tests!(MongoFaults, #[ignore = "needs mongodb: cargo xtask test"]);
