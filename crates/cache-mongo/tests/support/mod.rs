//! What the tests against the server share: its address and fresh collection names.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// The database every test collection lives in.
pub const DATABASE: &str = "cache_mongo_tests";

/// The operation timeout of caches in tests that check behaviour, not timing: the test
/// server is one Python process shared by every test running at once on a machine other
/// builds load too, and a call queued behind hundreds of others can take seconds there.
/// The fault suite checks the timeouts themselves, with its own.
pub const PATIENT: std::time::Duration = std::time::Duration::from_secs(30);

/// The server's URL from `cargo xtask test` (or `cargo xtask servers up mongodb`).
///
/// # Panics
/// When the variable is missing: a test that needs the server must fail, never pass
/// without it.
pub fn url() -> String {
    std::env::var("CACHE_TEST_MONGO_URL").unwrap_or_else(|_| {
        panic!(
            "CACHE_TEST_MONGO_URL is not set: run `cargo xtask test`, or `eval \"$(cargo xtask servers up mongodb)\"`"
        )
    })
}

/// A driver client for the test server.
pub async fn client() -> mongodb::Client {
    mongodb::Client::with_uri_str(url()).await.expect("a client for CACHE_TEST_MONGO_URL")
}

/// A collection name no other test in any process uses.
pub fn unique_collection() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_nanos());
    format!("t{:x}_{nanos:x}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The test server's address, for a proxy in front of it.
pub fn socket_addr() -> std::net::SocketAddr {
    let url = url();
    let host_port = url.trim_start_matches("mongodb://").split(['/', '?']).next().unwrap_or_default();
    host_port.parse().unwrap_or_else(|_| panic!("CACHE_TEST_MONGO_URL is not mongodb://<ip>:<port>: {url}"))
}
